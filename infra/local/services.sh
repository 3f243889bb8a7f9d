#!/usr/bin/env bash
# Starts, stops and reports the three Cruxlog services on the local stack, from the debug
# build (`cargo build --workspace`). Logs: $DATA/logs/<service>.log; pids: $DATA/run/.
#   services.sh start|stop|status
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
DATA=${CRUXLOG_LOCAL_DIR:-$ROOT/.local}
BIN=${CRUXLOG_BIN_DIR:-$ROOT/target/debug}
RUN=$DATA/run
LOGS=$DATA/logs
SERVICES=(projectors analyzers command-api)
declare -A ADMIN=([command-api]=9180 [projectors]=9181 [analyzers]=9182)

say() { printf '[services] %s\n' "$*" >&2; }
die() { say "error: $*"; exit 1; }

pid_of() {
  local file=$RUN/$1.pid
  [[ -f $file ]] && kill -0 "$(cat "$file")" 2>/dev/null && cat "$file"
}

# Per-checkout secrets (token signing, email index), made once, never committed.
local_secret() {
  local file=$DATA/$1
  if [[ ! -s $file ]]; then
    mkdir -p "$DATA"
    (umask 077 && head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$file")
  fi
  cat "$file"
}

wait_ready() {
  local service=$1 port=${ADMIN[$1]} deadline=$((SECONDS + 60))
  until curl -fsS "http://127.0.0.1:$port/readyz" >/dev/null 2>&1; do
    if ! pid_of "$service" >/dev/null; then
      tail -n 30 "$LOGS/$service.log" >&2 || true
      die "$service exited during start-up (log above)"
    fi
    ((SECONDS < deadline)) || die "$service not ready after 60 s; see $LOGS/$service.log"
    sleep 0.2
  done
}

start() {
  mkdir -p "$RUN" "$LOGS"
  CRUXLOG_AUTH__JWT_SECRET=$(local_secret jwt-secret)
  CRUXLOG_AUTH__EMAIL_INDEX_KEY=$(local_secret email-index-key)
  # One object store for the API's uploads and the analyzers' artifacts.
  CRUXLOG_BLOBS__URL=${CRUXLOG_BLOBS__URL:-$DATA/blobs}
  export CRUXLOG_AUTH__JWT_SECRET CRUXLOG_AUTH__EMAIL_INDEX_KEY CRUXLOG_BLOBS__URL CRUXLOG_LOG_FORMAT=json
  for service in "${SERVICES[@]}"; do
    if pid=$(pid_of "$service"); then
      say "$service already running (pid $pid)"
      continue
    fi
    [[ -x $BIN/cruxlog-$service ]] || die "$BIN/cruxlog-$service missing; run cargo build --workspace"
    local db_url=${CRUXLOG_DATABASE__URL:-postgres://postgres@127.0.0.1:15432/postgres}
    # The API reads with its own read-only role (created by the projectors' migrations).
    [[ $service == command-api ]] && db_url=${db_url/:\/\/postgres@/:\/\/cruxlog_api@}
    # On a box of two cores or fewer, shared with PostgreSQL and Kafka, the API runs one
    # runtime worker: about 15 % less CPU per command than two under the load bench
    # (docs/benchmarks.md, session 6). TOKIO_WORKER_THREADS set by the caller wins.
    local runtime=()
    if [[ $service == command-api && -z ${TOKIO_WORKER_THREADS:-} ]] && (($(nproc) <= 2)); then
      runtime=(TOKIO_WORKER_THREADS=1)
    fi
    env "${runtime[@]}" CRUXLOG_ADMIN__ADDR=127.0.0.1:${ADMIN[$service]} \
      CRUXLOG_DATABASE__URL=$db_url \
      nohup "$BIN/cruxlog-$service" >>"$LOGS/$service.log" 2>&1 </dev/null &
    echo $! >"$RUN/$service.pid"
    # Projectors create topics and tables the others rely on: wait for each in turn.
    wait_ready "$service"
    say "$service ready (pid $(cat "$RUN/$service.pid"), admin http://127.0.0.1:${ADMIN[$service]})"
  done
}

stop() {
  for service in command-api analyzers projectors; do
    pid=$(pid_of "$service") || { rm -f "$RUN/$service.pid"; continue; }
    kill -TERM "$pid"
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid"
    rm -f "$RUN/$service.pid"
    say "$service stopped"
  done
}

status() {
  for service in "${SERVICES[@]}"; do
    if pid=$(pid_of "$service"); then
      printf '%-12s running  pid %-7s admin http://127.0.0.1:%s\n' "$service" "$pid" "${ADMIN[$service]}"
    else
      printf '%-12s stopped\n' "$service"
    fi
  done
}

case ${1:-} in
  start) start ;;
  stop) stop ;;
  status) status ;;
  *) die "usage: services.sh start|stop|status" ;;
esac
