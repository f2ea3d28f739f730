#!/usr/bin/env bash
# Start a local test control plane (etcd, kube-apiserver, kube-controller-manager)
# and a PostgreSQL server, all on 127.0.0.1, with their state in STATE_DIR.
#
# Usage: tests/harness/up.sh STATE_DIR
#
# Ports (env, defaults): FP_ETCD_PORT=2379 FP_ETCD_PEER_PORT=2380
#   FP_APISERVER_PORT=6443 FP_KCM_PORT=10257 FP_PG_PORT=55432
# Timeouts: FP_UP_TIMEOUT=60 (seconds, per wait)
# Extra flags (space-separated): FP_APISERVER_ARGS, FP_KCM_ARGS
#   e.g. FP_APISERVER_ARGS="--feature-gates=SomeGate=true"
# FP_KEEP_ON_FAILURE=1 leaves already-started processes running if up.sh fails.
#
# Writes STATE_DIR/env (source it): KUBECONFIG, FP_ADMIN_TOKEN, FP_APISERVER_URL,
# DATABASE_URL, FP_STATE_DIR, FP_AUDIT_LOG, FP_CA_FILE, FP_ETCD_URL.
# Stop everything with tests/harness/down.sh STATE_DIR.
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

[[ $# -eq 1 && -n "$1" ]] || { echo "usage: $0 STATE_DIR" >&2; exit 2; }

ETCD_PORT="${FP_ETCD_PORT:-2379}"
ETCD_PEER_PORT="${FP_ETCD_PEER_PORT:-2380}"
APISERVER_PORT="${FP_APISERVER_PORT:-6443}"
KCM_PORT="${FP_KCM_PORT:-10257}"
PG_PORT="${FP_PG_PORT:-55432}"
TIMEOUT="${FP_UP_TIMEOUT:-60}"
read -r -a APISERVER_ARGS <<<"${FP_APISERVER_ARGS:-}"
read -r -a KCM_ARGS <<<"${FP_KCM_ARGS:-}"

mkdir -p "$1"
STATE="$(cd "$1" && pwd)"
[[ "$STATE" != *"'"* ]] || die "STATE_DIR must not contain a single quote: $STATE"
PKI="$STATE/pki"
LOGS="$STATE/logs"
PIDS="$STATE/pids"
KUBECONFIG_FILE="$STATE/kubeconfig"
AUDIT_LOG="$STATE/audit.log"
APISERVER_URL="https://127.0.0.1:$APISERVER_PORT"

t_start=$(now_ms)

# ---------------------------------------------------------------------------
# Refuse to start over a running instance.
# ---------------------------------------------------------------------------
running=()
for c in "${COMPONENTS[@]}"; do
  pid="$(live_pid "$STATE" "$c")"
  [[ -z "$pid" ]] || running+=("$c (pid $pid)")
done
if [[ ${#running[@]} -gt 0 ]]; then
  die "already running in $STATE: ${running[*]}; stop it first with: $HARNESS_DIR/down.sh $STATE"
fi

# Ports must be free (something answering on one means another instance).
for port in "$ETCD_PORT" "$ETCD_PEER_PORT" "$APISERVER_PORT" "$KCM_PORT" "$PG_PORT"; do
  if ! [[ "$port" =~ ^[0-9]+$ ]] || ((port < 1 || port > 65535)); then
    die "invalid port: '$port'"
  fi
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
    die "port 127.0.0.1:$port is already in use (set FP_*_PORT to use other ports)"
  fi
done

# ---------------------------------------------------------------------------
# Binaries: build.sh is a fast no-op when its stamp matches.
# ---------------------------------------------------------------------------
if command -v go >/dev/null; then
  "$REPO/tests/control-plane/build.sh"
fi
for b in etcd kube-apiserver kube-controller-manager; do
  [[ -x "$CP_BIN/$b" ]] || die "$CP_BIN/$b missing and Go is not installed to build it (tests/control-plane/build.sh)"
done
PG_BIN="$(pg_bin_dir)"

# On failure: show what we know, then stop whatever was started.
started=0
pg_job=""
on_exit() {
  local rc=$?
  # Let a background postgres start finish first, so down.sh can see it.
  [[ -z "$pg_job" ]] || wait "$pg_job" 2>/dev/null || true
  if [[ $rc -ne 0 && $started -eq 1 && "${FP_KEEP_ON_FAILURE:-0}" != 1 ]]; then
    log "startup failed; stopping started processes (logs kept in $LOGS)"
    "$HARNESS_DIR/down.sh" "$STATE" || true
  fi
}
trap on_exit EXIT

# ---------------------------------------------------------------------------
# Fresh state: everything below is recreated on each start.
# ---------------------------------------------------------------------------
rm -rf "$PKI" "$LOGS" "$PIDS" "$STATE/etcd" "$STATE/pgdata" "$STATE/pgsock" \
  "$STATE/env" "$KUBECONFIG_FILE" "$AUDIT_LOG" "$STATE/audit-policy.yaml" \
  "$STATE/pg-password"
mkdir -p "$PKI" "$LOGS" "$PIDS"
chmod 700 "$PKI"

# ---------------------------------------------------------------------------
# PKI (openssl): CA, apiserver serving cert, service-account key pair, token.
# ---------------------------------------------------------------------------
t=$(now_ms)
cat >"$PKI/openssl.cnf" <<'EOF'
[req]
distinguished_name = dn
prompt = no
[dn]
CN = placeholder
[ca]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign, digitalSignature
subjectKeyIdentifier = hash
[apiserver]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = @sans
authorityKeyIdentifier = keyid
[sans]
IP.1 = 127.0.0.1
IP.2 = 10.0.0.1
DNS.1 = kubernetes
DNS.2 = kubernetes.default
DNS.3 = kubernetes.default.svc
DNS.4 = kubernetes.default.svc.cluster.local
DNS.5 = localhost
EOF
ossl() { openssl "$@" 2>>"$LOGS/openssl.log"; }
# CA (also signs certificates for the controller-manager's CSR signer).
ossl req -x509 -new -nodes -newkey rsa:2048 -sha256 -days 3650 \
  -config "$PKI/openssl.cnf" -extensions ca -subj "/CN=fleetpipeline-test-ca" \
  -keyout "$PKI/ca.key" -out "$PKI/ca.crt"
# apiserver serving certificate.
ossl req -new -nodes -newkey rsa:2048 -sha256 -config "$PKI/openssl.cnf" \
  -subj "/CN=kube-apiserver" -keyout "$PKI/apiserver.key" -out "$PKI/apiserver.csr"
ossl x509 -req -in "$PKI/apiserver.csr" -CA "$PKI/ca.crt" -CAkey "$PKI/ca.key" \
  -CAcreateserial -days 3650 -sha256 -extfile "$PKI/openssl.cnf" -extensions apiserver \
  -out "$PKI/apiserver.crt"
# Service-account token signing key pair.
ossl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$PKI/sa.key"
ossl pkey -in "$PKI/sa.key" -pubout -out "$PKI/sa.pub"

# Static tokens (format: token,user,uid,"groups"): the admin in system:masters,
# and the controller-manager under its own name (bound by the bootstrap RBAC
# policy), so audit-log writes by "admin" are only the tests' own.
ADMIN_TOKEN="$(openssl rand -hex 32)"
KCM_TOKEN="$(openssl rand -hex 32)"
{
  printf '%s,admin,admin,"system:masters"\n' "$ADMIN_TOKEN"
  printf '%s,system:kube-controller-manager,kube-controller-manager\n' "$KCM_TOKEN"
} >"$PKI/tokens.csv"

# write_kubeconfig FILE USER TOKEN: token auth, embedded CA.
write_kubeconfig() {
  (
    umask 077
    cat >"$1" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: fleetpipeline-test
  cluster:
    server: $APISERVER_URL
    certificate-authority-data: $(base64 -w0 <"$PKI/ca.crt")
users:
- name: $2
  user:
    token: $3
contexts:
- name: $2@fleetpipeline-test
  context:
    cluster: fleetpipeline-test
    user: $2
    namespace: default
current-context: $2@fleetpipeline-test
EOF
  )
}
write_kubeconfig "$KUBECONFIG_FILE" admin "$ADMIN_TOKEN"
write_kubeconfig "$PKI/kube-controller-manager.kubeconfig" kube-controller-manager "$KCM_TOKEN"

# Audit: one Metadata line per write request (ResponseComplete), nothing else.
cat >"$STATE/audit-policy.yaml" <<'EOF'
apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: ["RequestReceived"]
rules:
  - level: Metadata
    verbs: ["create", "update", "patch", "delete", "deletecollection"]
  - level: None
EOF
log "pki, kubeconfig and audit policy ready in $(($(now_ms) - t)) ms"

# ---------------------------------------------------------------------------
# Process helpers.
# ---------------------------------------------------------------------------
# start NAME ARGS... : run in background, log to logs/NAME.log, pid to pids/NAME.pid
start() {
  local name="$1"
  shift
  # Keep the command line so tests/harness/restart.sh can start it again.
  printf '%q ' "$@" >"$PIDS/$name.cmd"
  "$@" </dev/null >"$LOGS/$name.log" 2>&1 &
  echo $! >"$PIDS/$name.pid"
  started=1
}

# wait_for NAME DESCRIPTION CHECK-COMMAND... : poll until CHECK succeeds, the
# process dies, or the timeout passes.
wait_for() {
  local name="$1" what="$2" pid deadline
  shift 2
  pid="$(cat "$PIDS/$name.pid")"
  deadline=$(($(date +%s) + TIMEOUT))
  until "$@" >/dev/null 2>&1; do
    if ! alive "$pid"; then
      log "$name (pid $pid) exited while waiting for $what"
      show_log_tail "$LOGS/$name.log"
      exit 1
    fi
    if (($(date +%s) >= deadline)); then
      log "timed out after ${TIMEOUT}s waiting for $what"
      show_log_tail "$LOGS/$name.log"
      exit 1
    fi
    sleep 0.2
  done
}

# curl against the apiserver as admin, verifying its certificate with our CA.
api_get() {
  curl -sS --fail --max-time 5 --cacert "$PKI/ca.crt" \
    -H "Authorization: Bearer $ADMIN_TOKEN" "$APISERVER_URL$1"
}
readyz_ok() { [[ "$(api_get /readyz)" == ok ]]; }

# ---------------------------------------------------------------------------
# PostgreSQL: initdb (scram-sha-256 everywhere), loopback TCP + socket in STATE.
# Runs in the background (start_postgres &) while the control plane starts.
# ---------------------------------------------------------------------------
PGDATA_DIR="$STATE/pgdata"
PG_SOCK="$STATE/pgsock"
start_postgres() {
  local t pwfile password
  t=$(now_ms)
  ((${#PG_SOCK} + 20 < 108)) ||
    die "socket path $PG_SOCK/.s.PGSQL.$PG_PORT is too long for a unix socket; use a shorter STATE_DIR"
  mkdir -p "$PGDATA_DIR" "$PG_SOCK"
  chmod 700 "$PGDATA_DIR"
  touch "$LOGS/postgres.log"
  password="$(openssl rand -hex 24)"
  pwfile="$STATE/pgdata.pwfile"
  (umask 077 && printf '%s\n' "$password" >"$pwfile")
  if [[ $(id -u) -eq 0 ]]; then
    id postgres >/dev/null 2>&1 || die "running as root needs the 'postgres' system user (install postgresql-15)"
    chown postgres: "$PGDATA_DIR" "$PG_SOCK" "$LOGS/postgres.log" "$pwfile"
    runuser -u postgres -- test -x "$STATE" ||
      die "user 'postgres' cannot enter $STATE (a parent directory is not world-searchable); use a STATE_DIR such as /tmp/fp-cp"
  fi
  if ! as_pg "$PG_BIN/initdb" -D "$PGDATA_DIR" -U postgres --pwfile="$pwfile" \
    --auth=scram-sha-256 --encoding=UTF8 --locale=C --no-sync >"$LOGS/initdb.log" 2>&1; then
    rm -f "$pwfile"
    show_log_tail "$LOGS/initdb.log"
    die "initdb failed"
  fi
  rm -f "$pwfile"
  cat >>"$PGDATA_DIR/postgresql.conf" <<EOF

# --- FleetPipeline test harness (tests/harness/up.sh) ---
listen_addresses = '127.0.0.1'
port = $PG_PORT
unix_socket_directories = '$PG_SOCK'
max_connections = 200
# Throw-away data: trade durability for speed.
fsync = off
synchronous_commit = off
full_page_writes = off
EOF
  if ! as_pg "$PG_BIN/pg_ctl" -D "$PGDATA_DIR" -l "$LOGS/postgres.log" -w -t "$TIMEOUT" start \
    >"$LOGS/pg_ctl.log" 2>&1; then
    show_log_tail "$LOGS/pg_ctl.log" 10
    show_log_tail "$LOGS/postgres.log"
    die "postgres did not start"
  fi
  head -n1 "$PGDATA_DIR/postmaster.pid" >"$PIDS/postgres.pid"
  wait_for postgres "pg_isready" "$PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$PG_PORT" -t 2
  # Only now publish the password: its presence means "postgres is up".
  (umask 077 && printf '%s\n' "$password" >"$STATE/pg-password")
  log "postgres ready in $(($(now_ms) - t)) ms (127.0.0.1:$PG_PORT)"
}
started=1
start_postgres &
pg_job=$!

# ---------------------------------------------------------------------------
# etcd (fresh data dir each time).
# ---------------------------------------------------------------------------
t=$(now_ms)
start etcd "$CP_BIN/etcd" --data-dir "$STATE/etcd" \
  --port "$ETCD_PORT" --peer-port "$ETCD_PEER_PORT"
wait_for etcd "etcd health" \
  bash -c "curl -sS --max-time 2 http://127.0.0.1:$ETCD_PORT/health | grep -q '\"health\":\"true\"'"
log "etcd ready in $(($(now_ms) - t)) ms (127.0.0.1:$ETCD_PORT)"

# ---------------------------------------------------------------------------
# kube-apiserver.
# ---------------------------------------------------------------------------
t=$(now_ms)
start kube-apiserver "$CP_BIN/kube-apiserver" \
  --etcd-servers="http://127.0.0.1:$ETCD_PORT" \
  --bind-address=127.0.0.1 \
  --advertise-address=127.0.0.1 \
  --secure-port="$APISERVER_PORT" \
  --tls-cert-file="$PKI/apiserver.crt" \
  --tls-private-key-file="$PKI/apiserver.key" \
  --client-ca-file="$PKI/ca.crt" \
  --token-auth-file="$PKI/tokens.csv" \
  --authorization-mode=RBAC \
  --service-cluster-ip-range=10.0.0.0/16 \
  --service-account-issuer=https://kubernetes.default.svc.cluster.local \
  --service-account-key-file="$PKI/sa.pub" \
  --service-account-signing-key-file="$PKI/sa.key" \
  --allow-privileged=true \
  --endpoint-reconciler-type=none \
  --audit-policy-file="$STATE/audit-policy.yaml" \
  --audit-log-path="$AUDIT_LOG" \
  --audit-log-mode=blocking \
  --audit-log-maxsize=4096 \
  --cert-dir="$PKI/apiserver-generated" \
  ${APISERVER_ARGS[@]+"${APISERVER_ARGS[@]}"}
wait_for kube-apiserver "apiserver /readyz" readyz_ok
log "kube-apiserver ready in $(($(now_ms) - t)) ms ($APISERVER_URL)"

# ---------------------------------------------------------------------------
# kube-controller-manager.
# ---------------------------------------------------------------------------
t=$(now_ms)
start kube-controller-manager "$CP_BIN/kube-controller-manager" \
  --kubeconfig="$PKI/kube-controller-manager.kubeconfig" \
  --bind-address=127.0.0.1 \
  --secure-port="$KCM_PORT" \
  --leader-elect=false \
  --service-account-private-key-file="$PKI/sa.key" \
  --root-ca-file="$PKI/ca.crt" \
  --cluster-signing-cert-file="$PKI/ca.crt" \
  --cluster-signing-key-file="$PKI/ca.key" \
  --use-service-account-credentials=true \
  --kube-api-qps=100 \
  --kube-api-burst=200 \
  --controllers='*' \
  ${KCM_ARGS[@]+"${KCM_ARGS[@]}"}
# (The default client rate limit, 20 qps, makes its start-up ~70 requests for
# per-controller ServiceAccounts/tokens take ~5 s; 100/200 brings that to <1 s.)
# Its own cert is self-signed in memory, hence -k (loopback only).
wait_for kube-controller-manager "controller-manager /healthz" \
  bash -c "[[ \$(curl -sSk --max-time 2 https://127.0.0.1:$KCM_PORT/healthz) == ok ]]"
log "kube-controller-manager healthy in $(($(now_ms) - t)) ms (127.0.0.1:$KCM_PORT)"
# The 'default' ServiceAccount is created by its serviceaccount controller.
wait_for kube-controller-manager "ServiceAccount default/default" \
  api_get /api/v1/namespaces/default/serviceaccounts/default
log "ServiceAccount default/default exists after $(($(now_ms) - t)) ms"

# PostgreSQL has been starting in the background since before etcd.
if ! wait "$pg_job"; then
  pg_job=""
  die "postgres failed to start (see messages above and $LOGS/postgres.log)"
fi
pg_job=""
PG_PASSWORD="$(cat "$STATE/pg-password")"

# ---------------------------------------------------------------------------
# STATE_DIR/env: `source` it (or parse it as a dotenv file).
# ---------------------------------------------------------------------------
cat >"$STATE/env" <<EOF
# Written by tests/harness/up.sh; stop with tests/harness/down.sh '$STATE'
export KUBECONFIG='$KUBECONFIG_FILE'
export FP_ADMIN_TOKEN='$ADMIN_TOKEN'
export FP_APISERVER_URL='$APISERVER_URL'
export DATABASE_URL='postgres://postgres:$PG_PASSWORD@127.0.0.1:$PG_PORT/postgres'
export FP_STATE_DIR='$STATE'
export FP_AUDIT_LOG='$AUDIT_LOG'
export FP_CA_FILE='$PKI/ca.crt'
export FP_ETCD_URL='http://127.0.0.1:$ETCD_PORT'
EOF
chmod 600 "$STATE/env"

log "control plane and postgres up in $(($(now_ms) - t_start)) ms; source $STATE/env"
