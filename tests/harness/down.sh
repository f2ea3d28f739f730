#!/usr/bin/env bash
# Stop what tests/harness/up.sh started in STATE_DIR. Safe to run repeatedly.
# Processes are stopped by their recorded PIDs only (SIGTERM, up to 10 s, then
# SIGKILL); PostgreSQL with `pg_ctl stop -m fast`. Logs and data are kept.
#
# Usage: tests/harness/down.sh STATE_DIR
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

[[ $# -eq 1 && -n "$1" ]] || { echo "usage: $0 STATE_DIR" >&2; exit 2; }
if [[ ! -d "$1" ]]; then
  log "$1 does not exist; nothing to stop"
  exit 0
fi
STATE="$(cd "$1" && pwd)"
PIDS="$STATE/pids"

# Stop one component by its pid file, if that PID is still ours. The pid file
# is removed once the process is gone (or was never/no longer ours).
stop_component() {
  local name="$1" sig="${2:-}" pidfile="$PIDS/$1.pid" pid
  [[ -f "$pidfile" ]] || return 0
  pid="$(live_pid "$STATE" "$name")"
  if [[ -n "$pid" ]]; then
    log "stopping $name (pid $pid${sig:+, SIG$sig})"
    stop_pid "$pid" "$name" "${sig:-TERM}"
  fi
  [[ -n "$(live_pid "$STATE" "$name")" ]] || rm -f "$pidfile"
}

# PostgreSQL first (independent of the rest): pg_ctl, then the PID as fallback.
if [[ -f "$STATE/pgdata/postmaster.pid" ]]; then
  pid="$(live_pid "$STATE" postgres)"
  if [[ -n "$pid" ]]; then
    log "stopping postgres (pid $pid)"
    PG_BIN="$(pg_bin_dir)"
    if as_pg "$PG_BIN/pg_ctl" -D "$STATE/pgdata" -m fast -w -t 10 stop >/dev/null 2>&1; then
      wait_gone "$pid" 5 || true # pg_ctl returns as the postmaster removes its pid file
    else
      log "pg_ctl stop failed; falling back to signals"
    fi
  fi
fi
stop_component postgres INT # SIGINT is PostgreSQL's "fast" shutdown

# Controller-manager and apiserver together, then etcd once its clients are gone.
pids_to_wait=()
for name in kube-controller-manager kube-apiserver; do
  pid="$(live_pid "$STATE" "$name")"
  if [[ -n "$pid" ]]; then
    log "stopping $name (pid $pid)"
    kill -TERM "$pid" 2>/dev/null || true
    pids_to_wait+=("$name:$pid")
  fi
done
for entry in ${pids_to_wait[@]+"${pids_to_wait[@]}"}; do
  name="${entry%%:*}"
  pid="${entry##*:}"
  if ! wait_gone "$pid" 10 && pid_is "$pid" "$name"; then
    log "$name (pid $pid) did not stop after 10s, sending SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
    wait_gone "$pid" 5 || log "warning: $name (pid $pid) still alive after SIGKILL"
  fi
done
stop_component kube-controller-manager
stop_component kube-apiserver
stop_component etcd

# Anything still alive from our pid files is worth a loud message.
left=()
for c in "${COMPONENTS[@]}"; do
  pid="$(live_pid "$STATE" "$c")"
  [[ -z "$pid" ]] || left+=("$c (pid $pid)")
done
if [[ ${#left[@]} -gt 0 ]]; then
  log "error: still running: ${left[*]}"
  exit 1
fi
log "stopped (state kept in $STATE)"
