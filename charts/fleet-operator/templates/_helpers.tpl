{{/* Chart name, truncated to a DNS label. */}}
{{- define "fleet-operator.name" -}}
{{- .Chart.Name | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Fully qualified app name: the release name when it already contains the chart
name, else <release>-<chart>; at most 63 characters.
*/}}
{{- define "fleet-operator.fullname" -}}
{{- if contains .Chart.Name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}

{{- define "fleet-operator.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels on every object. */}}
{{- define "fleet-operator.labels" -}}
helm.sh/chart: {{ include "fleet-operator.chart" . }}
{{ include "fleet-operator.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: fleet-pipeline
{{- end }}

{{/* Labels that select the operator's pods (also given to --operator-pod-labels). */}}
{{- define "fleet-operator.selectorLabels" -}}
app.kubernetes.io/name: {{ include "fleet-operator.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/* The same, as k=v,k=v for --operator-pod-labels. */}}
{{- define "fleet-operator.selectorLabelsArg" -}}
{{- $pairs := list }}
{{- range $k, $v := include "fleet-operator.selectorLabels" . | fromYaml }}
{{- $pairs = append $pairs (printf "%s=%s" $k $v) }}
{{- end }}
{{- join "," $pairs }}
{{- end }}

{{- define "fleet-operator.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "fleet-operator.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "fleet-operator.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{- define "fleet-operator.workloadImage" -}}
{{- default (printf "ghcr.io/fleetops/fleet-workloads:%s" .Chart.AppVersion) .Values.workloadImage }}
{{- end }}

{{/* "true" when leader election is on: explicitly, or because replicas > 1. */}}
{{- define "fleet-operator.leaderElect" -}}
{{- if kindIs "bool" .Values.leaderElection.enabled }}
{{- .Values.leaderElection.enabled }}
{{- else }}
{{- gt (int .Values.replicas) 1 }}
{{- end }}
{{- end }}

{{- define "fleet-operator.leaseName" -}}
{{- default (printf "%s-leader" (include "fleet-operator.fullname" .)) .Values.leaderElection.leaseName }}
{{- end }}

{{/*
The documents of files/operator-rbac.yaml (a copy of
charts/rbac/operator-rbac.yaml), by kind: {"ClusterRole": {...}, "Role": {...}}.
*/}}
{{- define "fleet-operator.rbacFile" -}}
{{- $byKind := dict }}
{{- range $doc := regexSplit "(?m)^---\\s*$" (.Files.Get "files/operator-rbac.yaml") -1 }}
{{- $obj := fromYaml $doc }}
{{- if $obj.kind }}
{{- $_ := set $byKind $obj.kind $obj }}
{{- end }}
{{- end }}
{{- toJson $byKind }}
{{- end }}
