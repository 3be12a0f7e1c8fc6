#!/usr/bin/env bash
# A real PostgreSQL server for tests, the bench and local trials of the shared store
# (storage.postgres.url): initdb in DIR, started on a free loopback port, its unix socket in DIR.
#
#   scripts/postgres.sh start [DIR]   # stdout, one line: url=postgres://USER@127.0.0.1:PORT/scorecar pid=PID dir=DIR
#   scripts/postgres.sh stop DIR      # fast shutdown (SIGINT), SIGKILL after 30 s; the data stays
#   scripts/postgres.sh kill DIR      # SIGKILL (a crash, as tests need it); the data stays
#   scripts/postgres.sh clean DIR     # stop, then remove DIR
#
# `start` on a DIR it started before restarts the server on the same port with the same data
# (a database restart, as the tests need it); without DIR it makes a new temporary one.
#
# The binaries are Debian's (package postgresql: /usr/lib/postgresql/<major>/bin, newest major
# first) or whatever initdb/postgres is on PATH; PG_BIN overrides. initdb and postgres refuse to
# run as root: as root, the server runs as PG_USER (default: the `postgres` user the Debian
# package creates, else `nobody`), through runuser/setpriv, and DIR is handed to that user.
#
# Env: PG_BIN, PG_USER, PG_PORT (free port when unset), PG_READY_TIMEOUT (seconds, 60).
set -euo pipefail

READY_TIMEOUT="${PG_READY_TIMEOUT:-60}"
DB_NAME=scorecar

log() { echo "postgres: $*" >&2; }

find_bin() {
  if [[ -n "${PG_BIN:-}" ]]; then echo "$PG_BIN"; return 0; fi
  local d
  for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -t/ -k4 -V -r); do
    if [[ -x "$d/initdb" && -x "$d/postgres" ]]; then echo "$d"; return 0; fi
  done
  if command -v initdb >/dev/null && command -v postgres >/dev/null; then
    dirname "$(command -v initdb)"
    return 0
  fi
  log "no PostgreSQL server binaries (install Debian's postgresql package, or set PG_BIN)"
  exit 1
}

free_port() {
  # Bound and released at once: a small race with other processes, which the start-up check catches.
  if command -v node >/dev/null; then
    node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'
  else
    python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1]);s.close()'
  fi
}

# The user the server runs as: the current one, or a dedicated one when we are root.
run_user() {
  if [[ "$(id -u)" != 0 ]]; then id -un; return 0; fi
  if [[ -n "${PG_USER:-}" ]]; then echo "$PG_USER"; return 0; fi
  if id postgres >/dev/null 2>&1; then echo postgres; else echo nobody; fi
}

# Runs a command as the server's user (a no-op when that is us).
as_user() {
  local u="$1"
  shift
  if [[ "$(id -un)" == "$u" ]]; then "$@"; return; fi
  if command -v runuser >/dev/null; then runuser -u "$u" -- "$@"; return; fi
  local uid gid
  uid="$(id -u "$u")"
  gid="$(id -g "$u")"
  setpriv --reuid="$uid" --regid="$gid" --init-groups -- "$@"
}

start() {
  local bin user
  bin="$(find_bin)"
  user="$(run_user)"
  DIR="${1:-}"
  if [[ -z "$DIR" ]]; then DIR="$(mktemp -d "${TMPDIR:-/tmp}/postgres.XXXXXX")"; fi
  mkdir -p "$DIR"
  DIR="$(cd "$DIR" && pwd)"
  if [[ -f "$DIR/pid" ]] && kill -0 "$(cat "$DIR/pid")" 2>/dev/null; then
    log "already running in $DIR"
    echo "url=postgres://$user@127.0.0.1:$(cat "$DIR/port")/$DB_NAME pid=$(cat "$DIR/pid") dir=$DIR"
    return 0
  fi
  if [[ "$(id -u)" == 0 ]]; then
    chown -R "$user" "$DIR"
    # mktemp makes 0700 directories: the server's user must be able to reach DIR (search
    # permission only, on the directories above it that deny it).
    local p="$DIR"
    while [[ "$p" != / ]]; do
      p="$(dirname "$p")"
      as_user "$user" test -x "$p" || chmod o+x "$p"
    done
  fi
  local port fresh=0
  if [[ -f "$DIR/port" ]]; then
    port="$(cat "$DIR/port")"
  else
    port="${PG_PORT:-$(free_port)}"
    echo "$port" >"$DIR/port"
  fi
  local t0=$SECONDS
  if [[ ! -f "$DIR/data/PG_VERSION" ]]; then
    fresh=1
    # trust on loopback and the socket only: a throwaway server for tests, reachable from this host.
    as_user "$user" "$bin/initdb" -D "$DIR/data" -U "$user" --auth=trust --encoding=UTF8 --locale=C.UTF-8 \
      >"$DIR/initdb.log" 2>&1 || as_user "$user" "$bin/initdb" -D "$DIR/data" -U "$user" --auth=trust \
      --encoding=UTF8 --no-locale >"$DIR/initdb.log" 2>&1 || { log "initdb failed:"; cat "$DIR/initdb.log" >&2; exit 1; }
  fi
  local logf="$DIR/server.log"
  : >"$logf"
  [[ "$(id -u)" == 0 ]] && chown "$user" "$logf" "$DIR/port"
  # Its own session, so that a test runner's process group signals do not reach it. fsync stays
  # on: the restart tests kill it, and what it acknowledged must survive that.
  (as_user "$user" setsid "$bin/postgres" -D "$DIR/data" -h 127.0.0.1 -p "$port" -k "$DIR" \
    -c max_connections=200 -c shared_buffers=32MB -c listen_addresses=127.0.0.1 \
    -c log_min_messages=warning) >>"$logf" 2>&1 </dev/null &
  local launcher=$!
  local pid=""
  while :; do
    if [[ -f "$DIR/data/postmaster.pid" ]]; then pid="$(head -1 "$DIR/data/postmaster.pid")"; fi
    if [[ -n "$pid" ]] && as_user "$user" "$bin/pg_isready" -q -h "$DIR" -p "$port" 2>/dev/null; then break; fi
    if [[ -z "$pid" ]] && ! kill -0 "$launcher" 2>/dev/null; then
      log "server exited during start-up; log:"
      tail -n 50 "$logf" >&2
      exit 1
    fi
    if ((SECONDS - t0 > READY_TIMEOUT)); then
      log "not ready after ${READY_TIMEOUT} s; log:"
      tail -n 50 "$logf" >&2
      [[ -n "$pid" ]] && kill -KILL "$pid" 2>/dev/null || true
      exit 1
    fi
    sleep 0.1
  done
  echo "$pid" >"$DIR/pid"
  if [[ $fresh == 1 ]]; then
    as_user "$user" "$bin/createdb" -h "$DIR" -p "$port" -U "$user" "$DB_NAME" >>"$logf" 2>&1 ||
      { log "createdb failed:"; tail -n 20 "$logf" >&2; exit 1; }
  fi
  log "dir=$DIR log=$logf user=$user bin=$bin ready in $((SECONDS - t0)) s"
  echo "url=postgres://$user@127.0.0.1:$port/$DB_NAME pid=$pid dir=$DIR"
}

wait_gone() {
  local pid="$1" tries="$2"
  for _ in $(seq 1 "$tries"); do
    kill -0 "$pid" 2>/dev/null || return 0
    sleep 0.1
  done
  return 1
}

stop() {
  DIR="${1:?usage: postgres.sh stop DIR}"
  [[ -f "$DIR/pid" ]] || return 0
  local pid
  pid="$(cat "$DIR/pid")"
  if kill -0 "$pid" 2>/dev/null; then
    # SIGINT = fast shutdown: open sessions are ended, what was committed is on disk.
    kill -INT "$pid" 2>/dev/null || true
    wait_gone "$pid" 300 || kill -KILL "$pid" 2>/dev/null || true
    wait_gone "$pid" 50 || true
  fi
  rm -f "$DIR/pid"
}

crash() {
  DIR="${1:?usage: postgres.sh kill DIR}"
  [[ -f "$DIR/pid" ]] || return 0
  local pid
  pid="$(cat "$DIR/pid")"
  # The postmaster and its children (backends would otherwise hold the port and shared memory).
  pkill -KILL -P "$pid" 2>/dev/null || true
  kill -KILL "$pid" 2>/dev/null || true
  wait_gone "$pid" 100 || true
  rm -f "$DIR/pid" "$DIR/data/postmaster.pid"
}

case "${1:-}" in
  start) start "${2:-}" ;;
  stop) stop "${2:-}" ;;
  kill) crash "${2:-}" ;;
  clean)
    stop "${2:?usage: postgres.sh clean DIR}"
    rm -rf "$2"
    ;;
  *)
    sed -n '2,9p' "$0" >&2
    exit 2
    ;;
esac
