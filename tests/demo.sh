#!/usr/bin/env bash
# The local demo, data flowing end to end on loopback: a real control plane
# and PostgreSQL, the Tracksolid simulator, the operator binary reconciling
# examples/fleetpipeline.yaml (pointed at the simulator and the demo's
# PostgreSQL, every job each minute), and fleet-local-runner — a dev tool
# standing in for the kubelet this machine lacks — running the CronJobs and
# the webhook Deployment the operator made as local processes. A few pushes
# go to the webhook; after about two minutes it shows `kubectl get
# fleetpipeline` (Ready, INGEST Healthy) and the rows that arrived.
#
# Usage: tests/demo.sh           run, show the result, stop everything
#        tests/demo.sh --keep    leave it all running (the last lines say how to stop it)
#
# Env: FP_DEMO_STATE_DIR (default /tmp/fleetpipeline/demo-state),
#      FP_DEMO_MIN_SECONDS (default 125: how long data flows before the summary),
#      FP_DEMO_TIMEOUT (default 300: fail if INGEST is not Healthy by then),
#      ports FP_DEMO_OPERATOR_PORT=18080 FP_DEMO_SIM_PORT=18089 FP_DEMO_WEBHOOK_PORT=18081
#      and the harness's FP_*_PORT (below). See the README for what differs
#      from a real cluster.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO"
TARGET="${CARGO_TARGET_DIR:-$REPO/target}"
BIN="$TARGET/debug"
STATE="${FP_DEMO_STATE_DIR:-/tmp/fleetpipeline/demo-state}"
# Ports apart from the test suite's, so both can run at once.
export FP_ETCD_PORT="${FP_ETCD_PORT:-22379}" FP_ETCD_PEER_PORT="${FP_ETCD_PEER_PORT:-22380}"
export FP_APISERVER_PORT="${FP_APISERVER_PORT:-26443}" FP_KCM_PORT="${FP_KCM_PORT:-30257}"
export FP_PG_PORT="${FP_PG_PORT:-57432}"
OPERATOR_ADDR="127.0.0.1:${FP_DEMO_OPERATOR_PORT:-18080}"
SIM_ADDR="127.0.0.1:${FP_DEMO_SIM_PORT:-18089}"
WEBHOOK_PORT="${FP_DEMO_WEBHOOK_PORT:-18081}"
WEBHOOK="http://127.0.0.1:$WEBHOOK_PORT"
MIN_SECONDS="${FP_DEMO_MIN_SECONDS:-125}"
TIMEOUT="${FP_DEMO_TIMEOUT:-300}"
NS=fleet
FP=kenya-fleet
# The simulator's account; the Secret tracksolid-hk holds the same.
SIM_ACCOUNT=(demo-app-key demo-app-secret demo demo-password)
keep=0
[[ "${1:-}" == --keep ]] && keep=1

step() { printf '\n==> %s\n' "$*"; }
now() { date +%s; }
now_ms() { date +%s%3N; }
secs() { awk -v ms="$1" 'BEGIN { printf "%.1f", ms / 1000 }'; } # MS -> "1.2"
wait_http() { # URL SECONDS
  for _ in $(seq 1 $(($2 * 2))); do
    curl -fsS "$1" >/dev/null 2>&1 && return 0
    sleep 0.5
  done
  return 1
}

step "install and build what is missing (first run builds the control plane and the binaries: several minutes)"
tests/harness/install-deps.sh
cargo build --locked -p fleet-operator -p fleet-workloads -p tracksolid-sim -p fleet-e2e --bins

step "start etcd, kube-apiserver, kube-controller-manager and PostgreSQL"
tests/harness/down.sh "$STATE" >/dev/null 2>&1 || true
tests/harness/up.sh "$STATE"
# shellcheck disable=SC1091
source "$STATE/env"
export KUBECONFIG
LOGS="$STATE/logs"
RUNNER_DIR="$STATE/runner"
rm -rf "$RUNNER_DIR"

pids=()
cleanup() {
  local rc=$?
  if [[ $keep -eq 0 || $rc -ne 0 ]]; then
    # The runner first: it stops the processes it started.
    for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
      kill "${pids[i]}" 2>/dev/null || true
      wait "${pids[i]}" 2>/dev/null || true
    done
    tests/harness/down.sh "$STATE"
  fi
  if [[ $rc -ne 0 ]]; then
    echo "demo failed (exit $rc); logs in $LOGS and $RUNNER_DIR" >&2
  fi
}
trap cleanup EXIT

step "start the Tracksolid simulator on $SIM_ADDR (log: $LOGS/simulator.log)"
"$BIN/tracksolid-sim" --listen "$SIM_ADDR" --devices 25 --seed 7 \
  --account "$(IFS=:; echo "${SIM_ACCOUNT[*]}")" >"$LOGS/simulator.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 40); do (exec 3<>"/dev/tcp/${SIM_ADDR%:*}/${SIM_ADDR#*:}") 2>/dev/null && break; sleep 0.25; done

step "install the CRD (fleet-operator crd)"
"$BIN/fleet-operator" crd | kubectl apply --server-side -f -
for _ in $(seq 1 120); do
  [[ "$(kubectl get crd fleetpipelines.fleetops.dev -o jsonpath='{.status.conditions[?(@.type=="Established")].status}' 2>/dev/null)" == True ]] && break
  sleep 0.5
done

step "start the operator ($OPERATOR_ADDR: /healthz /readyz /metrics; resync every 15 s; log: $LOGS/operator.log)"
"$BIN/fleet-operator" run --metrics-addr "$OPERATOR_ADDR" --resync-seconds 15 \
  --workload-image "fleet-workloads:dev" >"$LOGS/operator.log" 2>&1 &
pids+=($!)
wait_http "http://$OPERATOR_ADDR/readyz" 30 || { tail -20 "$LOGS/operator.log"; exit 1; }

step "Secrets: the simulator's account, the push token, the database admin login"
kubectl create namespace "$NS"
kubectl -n "$NS" create secret generic tracksolid-hk \
  --from-literal=appKey="${SIM_ACCOUNT[0]}" --from-literal=appSecret="${SIM_ACCOUNT[1]}" \
  --from-literal=userId="${SIM_ACCOUNT[2]}" --from-literal=userPassword="${SIM_ACCOUNT[3]}"
kubectl -n "$NS" create secret generic jimi-push --from-literal=token="demo-push-token-$RANDOM$RANDOM"
# The demo's own PostgreSQL: its superuser stands in for the admin login a
# real installation creates for the operator. The workloads get their own
# least-privilege logins from the operator.
PG_HOSTPORT="${DATABASE_URL#*@}"; PG_HOSTPORT="${PG_HOSTPORT%%/*}"
PG_PASSWORD="${DATABASE_URL#postgres://postgres:}"; PG_PASSWORD="${PG_PASSWORD%%@*}"
kubectl -n "$NS" create secret generic fleet-db-admin --type=kubernetes.io/basic-auth \
  --from-literal=username=postgres --from-literal=password="$PG_PASSWORD"

step "apply examples/fleetpipeline.yaml: the simulator as target, the demo PostgreSQL, every job each minute"
# Every job each minute; geocoding is dropped (nothing leaves loopback).
sed_jobs=()
for job in positions track alarms trips parking devices housekeeping; do
  sed_jobs+=(-e "s|^    $job: *{.*}|    $job: {schedule: \"* * * * *\"}|")
done
sed -e "s|host: timescaledb.fleet.svc|host: ${PG_HOSTPORT%%:*}|" \
    -e "s|port: 5432|port: ${PG_HOSTPORT##*:}|" \
    -e "s|name: fleet$|name: postgres|" \
    -e "s|sslMode: prefer|sslMode: disable|" \
    -e "s|endpoint: https://hk-open.tracksolidpro.com/route/rest|endpoint: http://$SIM_ADDR/route/rest|" \
    -e "/^  geocoding:/d" \
    "${sed_jobs[@]}" \
    examples/fleetpipeline.yaml >"$STATE/fleetpipeline.yaml"
grep -E "endpoint:|host:|^    [a-z]+: *\{" "$STATE/fleetpipeline.yaml" | sed 's/^/    /'
t_apply=$(now_ms)
kubectl apply -f "$STATE/fleetpipeline.yaml"
for _ in $(seq 1 120); do
  [[ "$(kubectl -n "$NS" get fp "$FP" -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}')" == True ]] && break
  sleep 0.5
done
t_ready=$(now_ms)
kubectl -n "$NS" get fp "$FP" -o wide

step "start fleet-local-runner, the dev tool standing in for the kubelet (runs: $RUNNER_DIR/runs.log)"
# It runs the operator's CronJobs and webhook Deployment as local processes:
# Secret and ConfigMap volumes written to $RUNNER_DIR/pods/<pod>/, image
# fleet-workloads:dev mapped to $BIN, the webhook's :8080 to :$WEBHOOK_PORT.
# The fallback URL is used only for a pod that mounts no database login
# (the runner logs it if it ever is).
"$BIN/fleet-local-runner" --namespace "$NS" --work-dir "$RUNNER_DIR" \
  --image "fleet-workloads=$BIN" --port "$FP-webhook/8080=$WEBHOOK_PORT" \
  --fallback-database-url "$DATABASE_URL" >"$LOGS/runner.log" 2>&1 &
pids+=($!)
t_runner=$(now_ms)
wait_http "$WEBHOOK/readyz" 60 || { tail -20 "$LOGS/runner.log"; exit 1; }
echo "webhook ready on $WEBHOOK after $(secs $(($(now_ms) - t_runner))) s"

step "post simulated JIMI pushes to the webhook (token from the Secret jimi-push)"
TOKEN="$(kubectl -n "$NS" get secret jimi-push -o jsonpath='{.data.token}' | base64 -d)"
push() { # PATH CURL-ARGS...
  local path=$1; shift
  printf '    POST %-10s -> ' "$path"
  curl -sS -w ' (HTTP %{http_code})\n' -X POST "$WEBHOOK$path" "$@"
}
ts() { date -u -d "@$(($(now) - $1))" '+%Y-%m-%d %H:%M:%S'; }
push /pushgps --data-urlencode "token=$TOKEN" --data-urlencode "data_list=[
  {\"deviceImei\":\"868120246598152\",\"gpsTime\":\"$(ts 60)\",\"lat\":-1.2921,\"lng\":36.8219,\"gpsSpeed\":32,\"gpsMode\":0},
  {\"deviceImei\":\"868120246598152\",\"gpsTime\":\"$(ts 30)\",\"lat\":-1.2901,\"lng\":36.8240,\"gpsSpeed\":41,\"gpsMode\":0},
  {\"deviceImei\":\"868120246598153\",\"gpsTime\":\"$(ts 20)\",\"lat\":-1.3032,\"lng\":36.7073,\"gpsSpeed\":0,\"gpsMode\":0}]"
push /pushalarm -H 'Content-Type: application/json' -d "{\"token\":\"$TOKEN\",\"data_list\":[
  {\"imei\":\"868120246598152\",\"msgClass\":0,\"gateTime\":\"$(ts 10)\",\"msg\":{\"alertType\":212,\"alarmTime\":\"$(ts 12)\",\"lat\":-1.2901,\"lng\":36.8240}}]}"
push /pushhb --data-urlencode "token=$TOKEN" --data-urlencode "data_list=[
  {\"imei\":\"868120246598153\",\"gateTime\":\"$(ts 5)\",\"powerLevel\":5,\"gsmSign\":4,\"acc\":0}]"
push /pushgps --data-urlencode "token=wrong" --data-urlencode 'data_list=[]'

step "data flowing: every job runs each minute; waiting for INGEST Healthy and ${MIN_SECONDS} s of data"
t_healthy=""
while :; do
  elapsed=$((($(now_ms) - t_runner) / 1000))
  ingest="$(kubectl -n "$NS" get fp "$FP" -o jsonpath='{.status.ingest}' 2>/dev/null || true)"
  ready="$(kubectl -n "$NS" get fp "$FP" -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null || true)"
  runs="$(grep -c ' job=.* exit=' "$RUNNER_DIR/runs.log" 2>/dev/null || true)"
  rows="$(psql "$DATABASE_URL" -qAt -c "SELECT count(*) FROM tracksolid.positions" 2>/dev/null || echo '?')"
  printf '    t=%3ss  READY=%s INGEST=%s  job runs=%s  positions=%s\n' "$elapsed" "$ready" "${ingest:-?}" "${runs:-0}" "$rows"
  if [[ -z "$t_healthy" && "$ingest" == Healthy && "$ready" == True ]]; then
    t_healthy=$(now_ms)
  fi
  if [[ -n "$t_healthy" && $elapsed -ge $MIN_SECONDS ]]; then break; fi
  if ((elapsed > TIMEOUT)); then
    echo "INGEST not Healthy after $TIMEOUT s. The runner's last runs, then each job's last error:" >&2
    grep ' job=.* exit=' "$RUNNER_DIR/runs.log" | tail -10 >&2
    psql "$DATABASE_URL" -P pager=off -c \
      "SELECT endpoint, state, last_run::time(0), left(last_error, 120) AS last_error FROM tracksolid.v_ingest_health ORDER BY 1" >&2
    exit 1
  fi
  sleep 10
done

step "the runner's log (each run: job, exit code, duration)"
grep -E ' (job|deployment)=' "$RUNNER_DIR/runs.log" | tail -25

step "what the operator made"
kubectl -n "$NS" get cronjobs,deployments,services,secrets -l app.kubernetes.io/instance="$FP"

step "rows arriving (psql against the demo PostgreSQL)"
psql "$DATABASE_URL" -P pager=off <<'SQL'
\echo positions per minute, by source (poll: the ingest jobs from the simulator; push: the webhook)
SELECT to_char(date_trunc('minute', received_at), 'HH24:MI') AS minute, source, count(*) AS positions
FROM tracksolid.positions GROUP BY 1, 2 ORDER BY 1, 2;
\echo ingestion_log: one row per job run and target (and per webhook batch)
SELECT endpoint, count(*) AS runs, sum(rows_inserted) AS rows_inserted,
       count(*) FILTER (WHERE status = 'failed') AS failed, max(finished_at)::time(0) AS last_run
FROM tracksolid.ingestion_log GROUP BY 1 ORDER BY 1;
\echo v_ingest_health: what the operator reads into status (INGEST)
SELECT endpoint, state, last_run::time(0), last_rows_inserted, last_error FROM tracksolid.v_ingest_health ORDER BY 1;
\echo push_events: every raw push item the webhook stored
SELECT kind, count(*) AS items, count(*) FILTER (WHERE rejected IS NOT NULL) AS rejected
FROM tracksolid.push_events GROUP BY 1 ORDER BY 1;
SELECT (SELECT count(*) FROM tracksolid.devices) AS devices,
       (SELECT count(*) FROM tracksolid.alarms) AS alarms,
       (SELECT count(*) FROM tracksolid.parking) AS parking,
       (SELECT count(*) FROM tracksolid.heartbeats) AS heartbeats;
SQL

step "kubectl get fleetpipeline"
kubectl -n "$NS" get fleetpipeline
printf '\nReady %s s after apply; INGEST Healthy within %s s of the runner starting (%s s after apply; status polled every 10 s).\n' \
  "$(secs $((t_ready - t_apply)))" "$(secs $((t_healthy - t_runner)))" "$(secs $((t_healthy - t_apply)))"

if [[ $keep -eq 1 ]]; then
  printf '\nLeft running: export KUBECONFIG=%s; psql %q\n' "$KUBECONFIG" "$DATABASE_URL"
  rev=""
  for ((i = ${#pids[@]} - 1; i >= 0; i--)); do rev+="${pids[i]} "; done
  printf 'Stop: kill %s(runner, operator, simulator) && tests/harness/down.sh %s\n' "$rev" "$STATE"
fi
