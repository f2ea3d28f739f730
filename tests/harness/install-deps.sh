#!/usr/bin/env bash
# Install what tests/harness/up.sh needs on a fresh Debian 12 machine, then
# build the control-plane binaries. Idempotent: apt-get only runs when a
# package is missing, and build.sh is a no-op when its binaries are current.
#
# Needs root (or sudo) only if a package is missing. Go 1.26.x must already be
# installed (Debian 12's golang is too old); the Go module proxy must be reachable.
#
# Usage: tests/harness/install-deps.sh [--no-build]
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"

# Package -> why we need it.
#   postgresql-15  initdb/pg_ctl/postgres/pg_isready (+ psql via postgresql-client-15)
#   openssl        CA, serving cert, service-account keys, random tokens
#   procps         ps/pgrep for inspecting processes when debugging
#   curl           readiness checks
#   util-linux     runuser (essential on Debian; listed for completeness)
#   buildah        builds and checks the container images (tests/images/build.sh)
PACKAGES=(postgresql-15 openssl procps curl util-linux ca-certificates buildah)

log() { printf '[install-deps.sh] %s\n' "$*" >&2; }

installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }

missing=()
for p in "${PACKAGES[@]}"; do
  installed "$p" || missing+=("$p")
done

if [[ ${#missing[@]} -eq 0 ]]; then
  log "all packages present: ${PACKAGES[*]}"
else
  log "missing packages: ${missing[*]}"
  SUDO=()
  if [[ $(id -u) -ne 0 ]]; then
    command -v sudo >/dev/null || { log "error: not root and no sudo; install as root: apt-get install -y ${missing[*]}"; exit 1; }
    SUDO=(sudo)
  fi
  export DEBIAN_FRONTEND=noninteractive
  "${SUDO[@]}" apt-get update -qq
  # We run our own PostgreSQL instance: stop the Debian package from creating and
  # starting a system-wide 'main' cluster on port 5432.
  if [[ " ${missing[*]} " == *" postgresql-15 "* ]]; then
    "${SUDO[@]}" apt-get install -y -qq --no-install-recommends postgresql-common
    conf=/etc/postgresql-common/createcluster.conf
    if [[ -f "$conf" ]] && ! grep -q '^create_main_cluster = false' "$conf"; then
      "${SUDO[@]}" sed -i 's/^#\?\s*create_main_cluster\s*=.*/create_main_cluster = false/' "$conf"
    fi
  fi
  "${SUDO[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

if [[ "${1:-}" == --no-build ]]; then
  exit 0
fi

command -v go >/dev/null || { log "error: Go 1.26.x is required to build the control plane (https://go.dev/dl/)"; exit 1; }
"$REPO/tests/control-plane/build.sh"
"$REPO/tests/helm-tool/build.sh"   # helm, for the chart tests (tests/e2e/tests/helm.rs)
