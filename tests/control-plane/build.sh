#!/usr/bin/env bash
# Build the test control plane (kube-apiserver, kube-controller-manager, etcd)
# into $REPO/target/control-plane/bin/.
#
# Versions are pinned by go.mod/go.sum in this directory. A stamp file records a
# hash of everything that affects the output; if it matches and all binaries
# exist, nothing is rebuilt. Uses the default Go build and module caches
# (~/.cache/go-build, ~/go/pkg/mod), so a rebuild on the same machine is fast.
#
# Usage: tests/control-plane/build.sh [--force]
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
OUT="${CARGO_TARGET_DIR:-$REPO/target}/control-plane/bin"
STAMP="$OUT/.build-stamp"
BINARIES=(kube-apiserver kube-controller-manager etcd)

force=0
case "${1:-}" in
  --force) force=1 ;;
  "") ;;
  *) echo "usage: $0 [--force]" >&2; exit 2 ;;
esac

now() { date +%s; }
log() { printf '[build.sh] %s\n' "$*" >&2; }

command -v go >/dev/null || { log "error: 'go' not found in PATH (need Go 1.26.x)"; exit 1; }
cd "$HERE" # the toolchain Go picks depends on this module's go.mod

# Go 1.27 enables the jsonv2 experiment by default, which breaks the apiserver's
# OpenAPI document (/openapi/v2 answers 503). Turn it off there; 1.26 is fine.
go_version="$(go env GOVERSION)"
case "$go_version" in
  go1.2[0-5]|go1.2[0-5].*|go1.1*)
    log "note: $go_version is older than go.mod's 'go 1.26.0'; GOTOOLCHAIN may fetch go1.26" ;;
  go1.26|go1.26.*) ;;
  *)
    log "warning: $go_version is newer than 1.26; building with GOEXPERIMENT=nojsonv2"
    export GOEXPERIMENT="${GOEXPERIMENT:+$GOEXPERIMENT,}nojsonv2" ;;
esac

# Everything that changes the binaries goes into the stamp.
stamp_value="$(
  {
    echo "go=$go_version goexperiment=${GOEXPERIMENT:-}"
    sha256sum go.mod go.sum build.sh tools.go cmd/etcd/main.go
  } | sha256sum | cut -d' ' -f1
)"

up_to_date() {
  local b
  for b in "${BINARIES[@]}"; do
    [[ -x "$OUT/$b" ]] || return 1
  done
  [[ -f "$STAMP" && "$(cat "$STAMP")" == "$stamp_value" ]]
}
if [[ $force -eq 0 ]] && up_to_date; then
  log "cached: binaries in $OUT are up to date (stamp ${stamp_value:0:12})"
  exit 0
fi

# One build at a time per checkout (several test runs may call this at once);
# whoever waited re-checks the stamp.
mkdir -p "$OUT"
exec 9>"$OUT/.build.lock"
if ! flock -n 9; then
  log "another build.sh is running; waiting for it..."
  flock 9
  if [[ $force -eq 0 ]] && up_to_date; then
    log "cached: binaries in $OUT were just built (stamp ${stamp_value:0:12})"
    exit 0
  fi
fi

rm -f "$STAMP"

# Version info that `kubectl version` / the /version endpoint report.
k8s_version="$(go list -m -f '{{.Version}}' k8s.io/kubernetes)"   # e.g. v1.36.2
k8s_major="${k8s_version#v}"; k8s_major="${k8s_major%%.*}"
k8s_minor="${k8s_version#v*.}"; k8s_minor="${k8s_minor%%.*}"
# The upstream commit of that tag, as recorded by the module proxy (optional).
k8s_commit="$(go mod download -json "k8s.io/kubernetes@$k8s_version" |
  sed -n 's/^[[:space:]]*"Hash": "\([0-9a-f]\{40\}\)".*/\1/p' | head -n1)" || true
ldflags="-s -w"
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  ldflags+=" -X $pkg.gitVersion=$k8s_version -X $pkg.gitMajor=$k8s_major"
  ldflags+=" -X $pkg.gitMinor=$k8s_minor -X $pkg.gitTreeState=clean"
  [[ -z "$k8s_commit" ]] || ldflags+=" -X $pkg.gitCommit=$k8s_commit"
done

# Static, reproducible binaries; no C toolchain needed.
export CGO_ENABLED=0

t_all=$(now)
log "go: $go_version, kubernetes $k8s_version, output $OUT"

t=$(now)
log "downloading modules (no-op when ~/go/pkg/mod is warm)..."
go mod download
log "modules ready in $(( $(now) - t ))s"

build() { # build NAME PACKAGE
  local name="$1" pkg="$2" t
  t=$(now)
  log "building $name ($pkg)..."
  go build -mod=readonly -trimpath -ldflags "$ldflags" -o "$OUT/$name.tmp" "$pkg"
  mv -f "$OUT/$name.tmp" "$OUT/$name" # atomic: running copies keep the old file
  log "built $name in $(( $(now) - t ))s ($(du -h "$OUT/$name" | cut -f1))"
}

build etcd ./cmd/etcd
build kube-apiserver k8s.io/kubernetes/cmd/kube-apiserver
build kube-controller-manager k8s.io/kubernetes/cmd/kube-controller-manager

echo "$stamp_value" > "$STAMP"
log "done in $(( $(now) - t_all ))s"
