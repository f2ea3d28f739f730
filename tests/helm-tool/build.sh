#!/usr/bin/env bash
# Build `helm` from the helm.sh/helm/v3 Go module into
# ${CARGO_TARGET_DIR:-$REPO/target}/control-plane/bin/helm, for the chart tests
# (tests/e2e/tests/helm.rs).
#
# The version is pinned by go.mod/go.sum in this directory (the `tool` line).
# This is its own module, not tests/control-plane's, so helm's k8s.io/*
# requirements never mix with the control plane's k8s.io/kubernetes pins.
# Same caching scheme as tests/control-plane/build.sh: a stamp file records a
# hash of everything that affects the output; if it matches and the binary
# exists, nothing is rebuilt.
#
# Usage: tests/helm-tool/build.sh [--force]
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
OUT="${CARGO_TARGET_DIR:-$REPO/target}/control-plane/bin"
STAMP="$OUT/.helm-build-stamp"

force=0
case "${1:-}" in
  --force) force=1 ;;
  "") ;;
  *) echo "usage: $0 [--force]" >&2; exit 2 ;;
esac

now() { date +%s; }
log() { printf '[helm-tool/build.sh] %s\n' "$*" >&2; }

command -v go >/dev/null || { log "error: 'go' not found in PATH (need Go 1.26.x)"; exit 1; }
cd "$HERE"

go_version="$(go env GOVERSION)"
stamp_value="$(
  {
    echo "go=$go_version goexperiment=${GOEXPERIMENT:-}"
    sha256sum go.mod go.sum build.sh
  } | sha256sum | cut -d' ' -f1
)"

up_to_date() {
  [[ -x "$OUT/helm" && -f "$STAMP" && "$(cat "$STAMP")" == "$stamp_value" ]]
}
if [[ $force -eq 0 ]] && up_to_date; then
  log "cached: $OUT/helm is up to date (stamp ${stamp_value:0:12})"
  exit 0
fi

mkdir -p "$OUT"
exec 9>"$OUT/.helm-build.lock"
if ! flock -n 9; then
  log "another helm build is running; waiting for it..."
  flock 9
  if [[ $force -eq 0 ]] && up_to_date; then
    log "cached: $OUT/helm was just built (stamp ${stamp_value:0:12})"
    exit 0
  fi
fi
rm -f "$STAMP"

# What helm's own Makefile stamps in: its version, and the Kubernetes version
# `helm template`/`lint` assume without a cluster (Capabilities.KubeVersion),
# derived from the k8s.io/client-go it links (v0.36.x -> 1.36), instead of the
# 1.20 default a plain `go build` leaves.
helm_version="$(go list -m -f '{{.Version}}' helm.sh/helm/v3)"      # e.g. v3.21.4
client_go="$(go list -m -f '{{.Version}}' k8s.io/client-go)"        # e.g. v0.36.2
k8s_minor="${client_go#v0.}"; k8s_minor="${k8s_minor%%.*}"
ldflags="-s -w -X helm.sh/helm/v3/internal/version.version=$helm_version"
ldflags+=" -X helm.sh/helm/v3/internal/version.gitTreeState=clean"
for pkg in helm.sh/helm/v3/pkg/chartutil helm.sh/helm/v3/pkg/lint/rules; do
  ldflags+=" -X $pkg.k8sVersionMajor=1 -X $pkg.k8sVersionMinor=$k8s_minor"
done

export CGO_ENABLED=0
t=$(now)
log "go: $go_version, helm $helm_version (k8s.io/client-go $client_go), output $OUT/helm"
go mod download
go build -mod=readonly -trimpath -ldflags "$ldflags" -o "$OUT/helm.tmp" helm.sh/helm/v3/cmd/helm
mv -f "$OUT/helm.tmp" "$OUT/helm"
echo "$stamp_value" > "$STAMP"
log "built helm in $(( $(now) - t ))s ($(du -h "$OUT/helm" | cut -f1))"
