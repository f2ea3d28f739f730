#!/usr/bin/env bash
# Kill one component of a running harness and start it again with the same
# command line, for fault tests (e.g. the apiserver dying mid-reconcile).
#
# Usage: tests/harness/restart.sh STATE_DIR COMPONENT [DOWN_SECONDS] [SIGNAL]
#   COMPONENT: etcd | kube-apiserver | kube-controller-manager | postgres
#   DOWN_SECONDS: how long it stays down (default 2); SIGNAL: default KILL
# Waits until the component answers again (apiserver: /readyz).
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

[[ $# -ge 2 ]] || { echo "usage: $0 STATE_DIR COMPONENT [DOWN_SECONDS] [SIGNAL]" >&2; exit 2; }
STATE="$(cd "$1" && pwd)"
NAME="$2"
DOWN="${3:-2}"
SIG="${4:-KILL}"
CMD_FILE="$STATE/pids/$NAME.cmd"

if [[ "$NAME" == postgres ]]; then
  # PostgreSQL runs under pg_ctl: an immediate-mode stop (like a crash:
  # connections cut, no checkpoint), then a start on the same data dir.
  PG_BIN="$(pg_bin_dir)"
  log "stopping postgres (-m immediate)"
  as_pg "$PG_BIN/pg_ctl" -D "$STATE/pgdata" -m immediate -w stop >>"$STATE/logs/pg_ctl.log" 2>&1 || true
  sleep "$DOWN"
  as_pg "$PG_BIN/pg_ctl" -D "$STATE/pgdata" -l "$STATE/logs/postgres.log" -w -t 60 start >>"$STATE/logs/pg_ctl.log" 2>&1 ||
    die "postgres did not start again"
  head -n1 "$STATE/pgdata/postmaster.pid" >"$STATE/pids/postgres.pid"
  log "postgres started again"
  exit 0
fi
[[ -f "$CMD_FILE" ]] || die "no recorded command for $NAME in $STATE (started by an older up.sh?)"

pid="$(live_pid "$STATE" "$NAME")"
if [[ -n "$pid" ]]; then
  log "stopping $NAME (pid $pid) with SIG$SIG"
  kill -"$SIG" "$pid" 2>/dev/null || true
  wait_gone "$pid" 10 || die "$NAME (pid $pid) did not stop"
fi
sleep "$DOWN"
# shellcheck disable=SC2046 # the file holds a %q-quoted command line
eval "set -- $(cat "$CMD_FILE")"
"$@" </dev/null >>"$STATE/logs/$NAME.log" 2>&1 &
echo $! >"$STATE/pids/$NAME.pid"
log "started $NAME again (pid $!)"

if [[ "$NAME" == kube-apiserver ]]; then
  # shellcheck disable=SC1091
  source "$STATE/env"
  for _ in $(seq 1 120); do
    if curl -fsS --cacert "$FP_CA_FILE" -H "Authorization: Bearer $FP_ADMIN_TOKEN" "$FP_APISERVER_URL/readyz" >/dev/null 2>&1; then
      log "kube-apiserver ready again"
      exit 0
    fi
    sleep 0.5
  done
  show_log_tail "$STATE/logs/$NAME.log" 2>/dev/null || true
  die "kube-apiserver did not become ready again"
fi
