#!/usr/bin/env bash
# Run every check and test of the project: formatting, clippy, unit tests and
# the end-to-end tests against a real kube-apiserver, etcd,
# kube-controller-manager and PostgreSQL on loopback.
#
# Usage: tests/run.sh            (the README's test command; CI runs exactly this)
#
# Builds the control plane on first use (tests/control-plane/build.sh, cached),
# starts it in $FP_STATE_DIR (default /tmp/fleetpipeline/e2e-state) and stops it on exit.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO"
TARGET="${CARGO_TARGET_DIR:-$REPO/target}"
# Under /tmp: when run as root, PostgreSQL runs as the postgres user, which
# cannot enter /root.
export FP_STATE_DIR="${FP_STATE_DIR:-/tmp/fleetpipeline/e2e-state}"

step() { printf '\n==> %s\n' "$*"; }

step "install what the harness needs (packages, Go-built control plane)"
tests/harness/install-deps.sh

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy --all-targets -- -D warnings"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "start the control plane and PostgreSQL ($FP_STATE_DIR)"
tests/harness/down.sh "$FP_STATE_DIR" >/dev/null 2>&1 || true
trap 'tests/harness/down.sh "$FP_STATE_DIR"' EXIT
tests/harness/up.sh "$FP_STATE_DIR"

step "cargo build (binaries the end-to-end tests run)"
cargo build --workspace --bins --locked

step "go test: the Argo CD health check under gopher-lua (tests/argocd)" && (cd tests/argocd && go test ./...)

step "cargo test (unit and end-to-end)"
cargo test --workspace --locked --no-fail-fast

step "container images (buildah, from our release binaries) and their checks"
tests/images/build.sh
