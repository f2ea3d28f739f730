#!/usr/bin/env bash
# Capture real FleetPipeline objects (as `kubectl get -o yaml` shows them, i.e.
# as Argo CD sees them) in every health state, into tests/argocd/testdata/.
# Re-run it whenever the operator's status format changes, then run
# `go test ./...` in tests/argocd and commit the new captures.
#
# Usage: tests/argocd/capture.sh
#
# Uses the test control plane in $FP_STATE_DIR (default
# /tmp/fleetpipeline/argocd-capture-state): an already running one is reused
# and left running; otherwise it is started with tests/harness/up.sh (ports
# from FP_ETCD_PORT, FP_APISERVER_PORT, ... as up.sh documents) and stopped on
# exit. Builds and runs the operator binary (cargo, $CARGO_TARGET_DIR),
# scoped to the namespace argocd-capture, with /metrics on
# 127.0.0.1:${FP_CAPTURE_METRICS_PORT:-18900}.
#
# States captured (one FleetPipeline each, from examples/fleetpipeline.yaml):
#   healthy                      Ready=True Reconciled
#   suspended                    spec.suspend: true -> Ready=True Suspended
#   secret-missing               created referencing a missing Secret: never reconciled
#   broken-by-edit               healthy, then edited to a missing Secret (generation 2 fails)
#   generation-behind            healthy, operator stopped, spec edited (generation 2 unobserved)
#   stale-failure                secret-missing, operator stopped, spec fixed (generation 2 unobserved)
#   no-status                    created while the operator is stopped
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$REPO"
OUT="$REPO/tests/argocd/testdata"
STATE="${FP_STATE_DIR:-/tmp/fleetpipeline/argocd-capture-state}"
TARGET="${CARGO_TARGET_DIR:-$REPO/target}"
METRICS_ADDR="127.0.0.1:${FP_CAPTURE_METRICS_PORT:-18900}"
NS=argocd-capture
EXAMPLE="$REPO/examples/fleetpipeline.yaml"
TIMEOUT=60

log() { printf '[capture.sh] %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

started_cp=0
operator_pid=""
cleanup() {
  local rc=$?
  stop_operator
  if [[ -n "${KUBECONFIG:-}" ]]; then
    release_finalizers
    kubectl delete namespace "$NS" --wait=false >/dev/null 2>&1 || true
  fi
  if ((started_cp)); then
    "$REPO/tests/harness/down.sh" "$STATE" >/dev/null 2>&1 || true
  fi
  exit "$rc"
}
trap cleanup EXIT

stop_operator() {
  if [[ -n "$operator_pid" ]]; then
    kill -TERM "$operator_pid" 2>/dev/null || true
    wait "$operator_pid" 2>/dev/null || true
    operator_pid=""
  fi
}

# Pipelines left by an earlier run carry the operator's finalizer and no
# operator runs for them: let them go, or the namespace never would.
release_finalizers() {
  local fp
  for fp in $(kubectl -n "$NS" get fleetpipelines -o name 2>/dev/null); do
    kubectl -n "$NS" patch "$fp" --type=merge -p '{"metadata":{"finalizers":null}}' >/dev/null 2>&1 || true
  done
}

# --- control plane --------------------------------------------------------
# shellcheck source=/dev/null
if [[ -f "$STATE/env" ]] && (source "$STATE/env" && kubectl get --raw /readyz >/dev/null 2>&1); then
  log "reusing the control plane in $STATE"
else
  "$REPO/tests/harness/down.sh" "$STATE" >/dev/null 2>&1 || true
  "$REPO/tests/harness/up.sh" "$STATE"
  started_cp=1
fi
# shellcheck source=/dev/null
source "$STATE/env"
KUBE_VERSION="$(kubectl version -o json | sed -n 's/.*"gitVersion": *"\([^"]*\)".*/\1/p' | tail -1)"

kubectl apply --server-side --force-conflicts -f "$REPO/crds/fleetpipeline.yaml" >/dev/null
kubectl wait --for=condition=Established --timeout=60s crd/fleetpipelines.fleetops.dev >/dev/null

# --- operator -------------------------------------------------------------
log "building the operator"
cargo build -p fleet-operator --bin fleet-operator --locked
OPERATOR="$TARGET/debug/fleet-operator"

start_operator() {
  "$OPERATOR" run --namespace "$NS" --metrics-addr "$METRICS_ADDR" \
    --workload-image registry.invalid/fleet-workloads:capture \
    >>"$STATE/argocd-capture-operator.log" 2>&1 &
  operator_pid=$!
  local deadline=$((SECONDS + TIMEOUT))
  until curl -fsS "http://$METRICS_ADDR/readyz" >/dev/null 2>&1; do
    kill -0 "$operator_pid" 2>/dev/null || die "the operator exited; see $STATE/argocd-capture-operator.log"
    ((SECONDS < deadline)) || die "the operator is not ready after ${TIMEOUT}s"
    sleep 0.5
  done
  log "operator ready (pid $operator_pid)"
}

# --- database -------------------------------------------------------------
# The harness PostgreSQL, in a database of its own; each pipeline gets its
# own schema (a shared one would be refused as SchemaClaimed).
DB=argocd_capture
DB_REST="${DATABASE_URL#postgres://}"
DB_USER="${DB_REST%%:*}"
DB_PASSWORD="${DB_REST#*:}"
DB_PASSWORD="${DB_PASSWORD%%@*}"
DB_HOSTPORT="${DB_REST#*@}"
DB_HOSTPORT="${DB_HOSTPORT%%/*}"
DB_HOST="${DB_HOSTPORT%%:*}"
DB_PORT="${DB_HOSTPORT##*:}"
psql "$DATABASE_URL" -qAtc "SELECT 1 FROM pg_database WHERE datname = '$DB'" | grep -q 1 ||
  psql "$DATABASE_URL" -qc "CREATE DATABASE $DB" >/dev/null

# --- helpers --------------------------------------------------------------
# The example, renamed, moved into $NS and pointed at the harness database;
# extra sed expressions may follow.
manifest() {
  local name="$1"
  shift
  local text
  text="$(sed -e "s/^  name: kenya-fleet\$/  name: $name/" -e "s/^  namespace: fleet\$/  namespace: $NS/" \
    -e "s/^    host: timescaledb.fleet.svc\$/    host: $DB_HOST/" -e "s/^    port: 5432\$/    port: $DB_PORT/" \
    -e "s/^    name: fleet\$/    name: $DB/" -e "s/^    schema: tracksolid\$/    schema: ${name//-/_}/" \
    -e "s/^    sslMode: prefer\$/    sslMode: disable/" "$@" "$EXAMPLE")"
  grep -q "^    host: $DB_HOST\$" <<<"$text" || die "could not point the example at the harness database (spec.database changed?)"
  grep -q "^  name: $name\$" <<<"$text" || die "could not rename the example (metadata.name changed?)"
  grep -q "^  namespace: $NS\$" <<<"$text" || die "could not move the example (metadata.namespace changed?)"
  printf '%s\n' "$text"
}

create() { # NAME [sed args...]: server-side apply, as Argo CD with ServerSideApply=true
  local name="$1"
  shift
  manifest "$name" "$@" | kubectl apply --server-side --field-manager=argocd-controller -f - >/dev/null
}

field() { # NAME JSONPATH
  kubectl -n "$NS" get fleetpipeline "$1" -o "jsonpath=$2"
}

# Wait until the Ready condition has STATUS/REASON at the object's generation.
wait_ready_condition() {
  local name="$1" want_status="$2" want_reason="$3" deadline=$((SECONDS + TIMEOUT)) got gen
  while :; do
    gen="$(field "$name" '{.metadata.generation}')"
    got="$(field "$name" '{.status.conditions[?(@.type=="Ready")].status}/{.status.conditions[?(@.type=="Ready")].reason}/{.status.conditions[?(@.type=="Ready")].observedGeneration}')"
    [[ "$got" == "$want_status/$want_reason/$gen" ]] && return 0
    ((SECONDS < deadline)) || die "$name: Ready is '$got', want '$want_status/$want_reason/$gen'"
    sleep 0.5
  done
}

capture() { # NAME: write testdata/NAME.yaml
  local name="$1" file="$OUT/$1.yaml"
  {
    echo "# Captured by tests/argocd/capture.sh from kube-apiserver $KUBE_VERSION"
    echo "# (kubectl get fleetpipeline $name -o yaml). Do not edit: re-run the script."
    kubectl -n "$NS" get fleetpipeline "$name" -o yaml
  } >"$file"
  log "captured $file"
}

secret() { # NAME KEY=VALUE...
  local name="$1"
  shift
  local args=()
  for kv in "$@"; do args+=("--from-literal=$kv"); done
  kubectl -n "$NS" create secret generic "$name" "${args[@]}" >/dev/null
}

merge_patch() { # NAME JSON
  kubectl -n "$NS" patch fleetpipeline "$1" --type=merge -p "$2" >/dev/null
}

# --- states ---------------------------------------------------------------
release_finalizers
kubectl delete namespace "$NS" --ignore-not-found --wait=true --timeout=120s >/dev/null
kubectl create namespace "$NS" >/dev/null
secret tracksolid-hk appKey=capture-key appSecret=capture-secret userId=capture-user userPassword=capture-password
secret fleet-db-admin "username=$DB_USER" "password=$DB_PASSWORD"
secret jimi-push token=capture-push-token

MISSING_TOKEN=(-e 's/tokenSecretRef: {name: jimi-push, key: token}/tokenSecretRef: {name: jimi-push-missing, key: token}/')

start_operator

create healthy
create suspended -e 's/^  suspend: false$/  suspend: true/'
create secret-missing "${MISSING_TOKEN[@]}"
create broken-by-edit
create generation-behind
create stale-failure "${MISSING_TOKEN[@]}"
field suspended '{.spec.suspend}' | grep -qx true || die "could not set spec.suspend (example changed?)"
field secret-missing '{.spec.webhook.tokenSecretRef.name}' | grep -qx jimi-push-missing ||
  die "could not point spec.webhook.tokenSecretRef at a missing Secret (example changed?)"

wait_ready_condition healthy True Reconciled
wait_ready_condition suspended True Suspended
wait_ready_condition secret-missing False SecretMissing
wait_ready_condition broken-by-edit True Reconciled
wait_ready_condition generation-behind True Reconciled
wait_ready_condition stale-failure False SecretMissing

merge_patch broken-by-edit '{"spec":{"webhook":{"tokenSecretRef":{"name":"jimi-push-missing"}}}}'
wait_ready_condition broken-by-edit False SecretMissing

stop_operator
log "operator stopped"

merge_patch generation-behind '{"spec":{"jobs":{"positions":{"schedule":"*/3 * * * *"}}}}'
merge_patch stale-failure '{"spec":{"webhook":{"tokenSecretRef":{"name":"jimi-push"}}}}'
create no-status

mkdir -p "$OUT"
for name in healthy suspended secret-missing broken-by-edit generation-behind stale-failure no-status; do
  capture "$name"
done
log "done; now: (cd tests/argocd && go test ./...)"
