# shellcheck shell=bash
# Helpers shared by up.sh and down.sh. Source it; do not run it.

HARNESS_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HARNESS_DIR/../.." && pwd)"
# shellcheck disable=SC2034 # used by the scripts that source this file
CP_BIN="${CARGO_TARGET_DIR:-$REPO/target}/control-plane/bin"

# Components started by up.sh, in start order; the name is both the binary and
# the pid file name (STATE_DIR/pids/NAME.pid).
# shellcheck disable=SC2034
COMPONENTS=(etcd kube-apiserver kube-controller-manager postgres)

log() { printf '[%s] %s\n' "$(basename "$0")" "$*" >&2; }
die() { log "error: $*"; exit 1; }

# Milliseconds since the epoch, for start-to-ready timings.
now_ms() { date +%s%3N; }

# PostgreSQL server binaries: $FP_PG_BIN, else Debian's layout (newest version).
pg_bin_dir() {
  if [[ -n "${FP_PG_BIN:-}" ]]; then
    echo "$FP_PG_BIN"
    return
  fi
  local d others
  others="$(printf '%s\n' /usr/lib/postgresql/*/bin | sort -Vr)"
  for d in /usr/lib/postgresql/15/bin $others; do
    if [[ -x "$d/initdb" && -x "$d/pg_ctl" ]]; then
      echo "$d"
      return
    fi
  done
  die "PostgreSQL server binaries not found (install postgresql-15, see tests/harness/install-deps.sh, or set FP_PG_BIN)"
}

# initdb/postgres refuse to run as root: as root, run them as the 'postgres'
# system user; otherwise as ourselves.
as_pg() {
  if [[ $(id -u) -eq 0 ]]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

# Is PID running? A zombie counts as gone: our daemons are re-parented to PID 1,
# which may take a while to reap them, and `kill -0` succeeds on zombies.
alive() {
  local pid="$1" stat
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  stat="$(cat "/proc/$pid/stat" 2>/dev/null)" || return 1
  stat="${stat##*) }" # fields after "pid (comm) "; the first one is the state
  [[ "${stat:0:1}" != Z && "${stat:0:1}" != X ]]
}

# Is PID alive and really our NAME (guards against recycled PIDs)?
# /proc/PID/comm holds at most the first 15 characters of the name.
pid_is() {
  local pid="$1" name="$2" comm
  alive "$pid" || return 1
  comm="$(cat "/proc/$pid/comm" 2>/dev/null)" || return 1
  [[ "$comm" == "${name:0:15}" ]]
}

# Live PID recorded for NAME in STATE_DIR/pids, or nothing.
live_pid() {
  local state="$1" name="$2" pid
  [[ -f "$state/pids/$name.pid" ]] || return 0
  pid="$(head -n1 "$state/pids/$name.pid" 2>/dev/null || true)"
  if pid_is "$pid" "$name"; then echo "$pid"; fi
}

# Wait until PID has exited, up to SECONDS; returns 1 on timeout.
wait_gone() {
  local pid="$1" secs="$2" i
  for ((i = 0; i < secs * 20; i++)); do
    alive "$pid" || return 0
    sleep 0.05
  done
  ! alive "$pid"
}

# SIGTERM (or SIGNAL), wait up to 10 s, then SIGKILL. Only for a PID that
# pid_is NAME.
stop_pid() {
  local pid="$1" name="$2" sig="${3:-TERM}"
  kill -"$sig" "$pid" 2>/dev/null || return 0
  if ! wait_gone "$pid" 10; then
    log "$name (pid $pid) did not stop after 10s, sending SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
    wait_gone "$pid" 5 || log "warning: $name (pid $pid) still alive after SIGKILL"
  fi
}

# Print the last lines of a log file to stderr, for failure reports.
show_log_tail() {
  local file="$1" lines="${2:-40}"
  if [[ -s "$file" ]]; then
    log "---- last $lines lines of $file ----"
    tail -n "$lines" "$file" >&2
    log "---- end of $file ----"
  else
    log "($file is empty or missing)"
  fi
}
