#!/usr/bin/env bash
# The local demo: a real control plane and PostgreSQL on loopback, the CRD,
# the operator binary, and examples/fleetpipeline.yaml (pointed at the demo's
# PostgreSQL) reconciled into its objects and its database schema. Ends with
# `kubectl get fleetpipeline`.
#
# Usage: tests/demo.sh           run, show the result, stop everything
#        tests/demo.sh --keep    leave it running (stop: tests/harness/down.sh /tmp/fleetpipeline/demo-state)
#
# This machine has no kubelet or scheduler: CronJobs create Jobs and Pods, but
# Pods stay Pending. See the README for what differs from a real cluster.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO"
TARGET="${CARGO_TARGET_DIR:-$REPO/target}"
STATE="${FP_DEMO_STATE_DIR:-/tmp/fleetpipeline/demo-state}"
# Ports apart from the test suite's, so both can run at once.
export FP_ETCD_PORT="${FP_ETCD_PORT:-22379}" FP_ETCD_PEER_PORT="${FP_ETCD_PEER_PORT:-22380}"
export FP_APISERVER_PORT="${FP_APISERVER_PORT:-26443}" FP_KCM_PORT="${FP_KCM_PORT:-30257}"
export FP_PG_PORT="${FP_PG_PORT:-57432}"
OPERATOR_ADDR="127.0.0.1:${FP_DEMO_OPERATOR_PORT:-18080}"
keep=0
[[ "${1:-}" == --keep ]] && keep=1

step() { printf '\n==> %s\n' "$*"; }

step "install and build what is missing (first run builds the control plane: a few minutes)"
tests/harness/install-deps.sh
cargo build --locked -p fleet-operator

step "start etcd, kube-apiserver, kube-controller-manager and PostgreSQL"
tests/harness/down.sh "$STATE" >/dev/null 2>&1 || true
tests/harness/up.sh "$STATE"
# shellcheck disable=SC1091
source "$STATE/env"
export KUBECONFIG

operator_pid=""
cleanup() {
  [[ -n "$operator_pid" ]] && kill "$operator_pid" 2>/dev/null && wait "$operator_pid" 2>/dev/null
  if [[ $keep -eq 0 ]]; then tests/harness/down.sh "$STATE"; fi
}
trap cleanup EXIT

step "install the CRD (fleet-operator crd)"
"$TARGET/debug/fleet-operator" crd | kubectl apply --server-side -f -
kubectl wait --for=condition=Established --timeout=60s crd/fleetpipelines.fleetops.dev

step "start the operator ($OPERATOR_ADDR: /healthz /readyz /metrics; log in $STATE/logs/operator.log)"
"$TARGET/debug/fleet-operator" run --metrics-addr "$OPERATOR_ADDR" \
  --workload-image "fleet-workloads:dev" >"$STATE/logs/operator.log" 2>&1 &
operator_pid=$!
for _ in $(seq 1 60); do
  curl -fsS "http://$OPERATOR_ADDR/readyz" >/dev/null 2>&1 && break
  sleep 0.5
done
curl -fsS "http://$OPERATOR_ADDR/readyz" >/dev/null || { tail -20 "$STATE/logs/operator.log"; exit 1; }

step "apply examples/fleetpipeline.yaml with its Secrets (demo credentials)"
kubectl create namespace fleet
kubectl -n fleet create secret generic tracksolid-hk \
  --from-literal=appKey=demo-app-key --from-literal=appSecret=demo-app-secret \
  --from-literal=userId=demo --from-literal=userPassword=demo-password
kubectl -n fleet create secret generic jimi-push --from-literal=token=demo-push-token
# The database: the demo's own PostgreSQL (its superuser stands in for the
# admin login a real installation would create for the operator).
PG_HOSTPORT="${DATABASE_URL#*@}"; PG_HOSTPORT="${PG_HOSTPORT%%/*}"
PG_PASSWORD="${DATABASE_URL#postgres://postgres:}"; PG_PASSWORD="${PG_PASSWORD%%@*}"
kubectl -n fleet create secret generic fleet-db-admin --type=kubernetes.io/basic-auth \
  --from-literal=username=postgres --from-literal=password="$PG_PASSWORD"
sed -e "s|host: timescaledb.fleet.svc|host: ${PG_HOSTPORT%%:*}|" \
    -e "s|port: 5432|port: ${PG_HOSTPORT##*:}|" \
    -e "s|name: fleet$|name: postgres|" \
    -e "s|sslMode: prefer|sslMode: disable|" \
    examples/fleetpipeline.yaml | kubectl apply -f -
kubectl -n fleet wait --for=condition=Ready --timeout=60s fleetpipeline/kenya-fleet

step "what the operator made"
kubectl -n fleet get cronjobs,deployments,services,poddisruptionbudgets,networkpolicies,configmaps,serviceaccounts -l app.kubernetes.io/instance=kenya-fleet
step "the schema the operator migrated (psql)"
psql "$DATABASE_URL" -c "SELECT endpoint, active, max_age_seconds FROM tracksolid.pipeline_endpoints ORDER BY 1"
step "kubectl get fleetpipeline"
kubectl -n fleet get fleetpipeline
if [[ $keep -eq 1 ]]; then
  operator_pid=""
  printf '\nLeft running. export KUBECONFIG=%s; stop with: tests/harness/down.sh %s (and kill the operator)\n' "$KUBECONFIG" "$STATE"
fi
