// Tests of the Argo CD health check (docs/argocd/health.lua) under
// gopher-lua, the Lua interpreter Argo CD embeds, against FleetPipelines
// captured from a real kube-apiserver (capture.sh). Run: go test ./...
module fleetpipeline.local/tests/argocd

go 1.26.0

require (
	github.com/yuin/gopher-lua v1.1.1
	sigs.k8s.io/yaml v1.6.0
)

require go.yaml.in/yaml/v2 v2.4.2 // indirect
