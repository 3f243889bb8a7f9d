#!/usr/bin/env bash
# Cruxlog local stack: Kafka (KRaft, single node), PostgreSQL 15 and the Python
# vision venv, all without Docker. See infra/local/README.md.
#
#   stack.sh install [kafka|postgres|python|all]   fetch/install (cached, idempotent)
#   stack.sh start   [kafka|postgres|all]          start and wait until ready
#   stack.sh stop    [kafka|postgres|all]          graceful stop
#   stack.sh status                                running/stopped, pid, port
#   stack.sh env                                   export lines for the services
#   stack.sh reset   [kafka|postgres|all]          stop and delete the data (keeps installs)
#   stack.sh kafka-cli TOOL [ARGS...]              run a Kafka CLI tool from the same jars
#   stack.sh prune-tests                           drop what earlier test runs left (t_* databases, topics, object stores)
#
# Environment:
#   CRUXLOG_LOCAL_DIR              data dir (default: <repo>/.local)
#   CRUXLOG_KAFKA_PORT             broker port (default 19092)
#   CRUXLOG_KAFKA_CONTROLLER_PORT  KRaft controller port (default 19093)
#   CRUXLOG_PG_PORT                PostgreSQL port (default 15432)
#   CRUXLOG_KAFKA_HEAP_OPTS        broker heap (default "-Xms256m -Xmx768m")
#   CRUXLOG_KAFKA_START_TIMEOUT    seconds to wait for the broker (default 240: a broker with
#                                  thousands of partitions takes minutes to load them)
#   CRUXLOG_PYTHON_BIN             interpreter for the venv (default python3.11 from PATH)
#   CRUXLOG_PG_BIN                 PostgreSQL bin dir (default /usr/lib/postgresql/15/bin)
#   CRUXLOG_MAVEN_REPO             Maven local repository (default ~/.m2/repository)
set -euo pipefail

SCRIPT_DIR=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd -P)
ROOT=$(cd -- "$SCRIPT_DIR/../.." && pwd -P)
DATA=${CRUXLOG_LOCAL_DIR:-$ROOT/.local}
case $DATA in
  /*) ;;
  *) DATA=$PWD/$DATA ;;
esac
DATA=$(realpath -m -- "$DATA")

KAFKA_PORT=${CRUXLOG_KAFKA_PORT:-19092}
KAFKA_CONTROLLER_PORT=${CRUXLOG_KAFKA_CONTROLLER_PORT:-19093}
PG_PORT=${CRUXLOG_PG_PORT:-15432}
KAFKA_HEAP_OPTS=${CRUXLOG_KAFKA_HEAP_OPTS:--Xms256m -Xmx768m}
KAFKA_START_TIMEOUT=${CRUXLOG_KAFKA_START_TIMEOUT:-240}

STAMPS=$DATA/stamps
KAFKA_HOME=$DATA/kafka
KAFKA_LIBS=$KAFKA_HOME/libs
KAFKA_CONF=$KAFKA_HOME/config/server.properties
KAFKA_LOG4J=$SCRIPT_DIR/kafka/log4j2.properties
KAFKA_LOG=$KAFKA_HOME/logs/server.log
KAFKA_PIDFILE=$KAFKA_HOME/kafka.pid
KAFKA_DATA=$KAFKA_HOME/data
KAFKA_CLUSTER_ID_FILE=$KAFKA_HOME/cluster-id
KAFKA_FORMAT_PORT_FILE=$KAFKA_HOME/formatted-controller-port
VENV=$DATA/venv
PG_LOCATION_FILE=$DATA/postgres.location

# Python vision stack, lean (see /work/shared/DEPENDENCY-NOTES.md): mediapipe
# without its declared deps (they drag in jax and the GUI build of OpenCV).
PY_MEDIAPIPE=mediapipe==0.10.14
PY_PINS=(absl-py attrs flatbuffers "protobuf>=4.25.3,<5" "numpy<2" "opencv-python-headless==4.11.0.86" matplotlib)
# Applied to the analyzers package install so that it cannot move these.
PY_CONSTRAINTS=("numpy<2" "protobuf>=4.25.3,<5" "opencv-python-headless==4.11.0.86" "mediapipe==0.10.14")
PY_PROJECT=$ROOT/analyzers/python
# Test tools for the REST API (contract fuzzing of /openapi.json), in the same venv.
PY_API_TOOLS=("schemathesis==4.32.5")

APT_UPDATED=0

# ----------------------------------------------------------------------------
# helpers

log() { printf '[stack] %s\n' "$*" >&2; }
die() {
  printf '[stack] error: %s\n' "$*" >&2
  exit 1
}

usage() {
  sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}" >&2
}

check_port_var() {
  if [[ ! $2 =~ ^[0-9]+$ ]] || ((10#$2 < 1 || 10#$2 > 65535)); then
    die "$1 must be a TCP port number, got '$2'"
  fi
}
check_port_var CRUXLOG_KAFKA_PORT "$KAFKA_PORT"
check_port_var CRUXLOG_KAFKA_CONTROLLER_PORT "$KAFKA_CONTROLLER_PORT"
check_port_var CRUXLOG_PG_PORT "$PG_PORT"
[[ $KAFKA_PORT != "$KAFKA_CONTROLLER_PORT" ]] || die "CRUXLOG_KAFKA_PORT and CRUXLOG_KAFKA_CONTROLLER_PORT must differ"

# True when something accepts TCP connections on 127.0.0.1:$1.
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# Print the last lines of a log file, framed, on stderr.
log_tail() {
  local file=$1 n=${2:-40}
  if [[ -r $file ]]; then
    printf '[stack] ---- last %s lines of %s ----\n' "$n" "$file" >&2
    tail -n "$n" "$file" >&2 || true
    printf '[stack] ----\n' >&2
  else
    printf '[stack] (no log at %s)\n' "$file" >&2
  fi
}

sha() { sha256sum | cut -c1-16; }

# run_logged WHAT CMD...: run CMD with its output appended to $INSTALL_LOG; on
# failure show the tail of that log and stop.
INSTALL_LOG=$DATA/logs/install.log
run_logged() {
  local what=$1 start
  shift
  mkdir -p "${INSTALL_LOG%/*}"
  start=1
  [[ ! -f $INSTALL_LOG ]] || start=$(($(wc -l <"$INSTALL_LOG") + 1))
  printf '\n===== %s: %s\n' "$(date -Is)" "$*" >>"$INSTALL_LOG"
  if ! "$@" >>"$INSTALL_LOG" 2>&1; then
    printf '[stack] ---- output of: %s ----\n' "$*" >&2
    tail -n +"$start" "$INSTALL_LOG" | tail -n 40 >&2
    printf '[stack] ----\n' >&2
    die "$what failed (full output: $INSTALL_LOG)"
  fi
}

stamp_ok() { [[ -f $STAMPS/$1 && $(<"$STAMPS/$1") == "$2" ]]; }
stamp_write() {
  mkdir -p "$STAMPS"
  printf '%s\n' "$2" >"$STAMPS/$1"
}

# Close every fd above 2 in the current (sub)shell. Used right before starting a
# long-running server, so that it holds neither the stack.sh lock (fd 9) nor a
# pipe of whoever called us (a `$(...)`, a CI runner), which would never see EOF.
close_inherited_fds() {
  local fd
  for fd in /proc/self/fd/*; do
    fd=${fd##*/}
    if [[ $fd =~ ^[0-9]+$ ]] && ((fd > 2)); then
      eval "exec $fd>&-" 2>/dev/null || true
    fi
  done
}

# Serialise state-changing commands (two `start`s racing, `make -j`).
take_lock() {
  mkdir -p "$DATA" "$DATA/logs"
  exec 9>"$DATA/.stack.lock"
  if command -v flock >/dev/null 2>&1 && ! flock -n 9; then
    log "waiting for another stack.sh run (lock: $DATA/.stack.lock)"
    flock -w 900 9 || die "could not take $DATA/.stack.lock (another stack.sh still running?)"
  fi
}

as_root() {
  if ((EUID == 0)); then
    "$@"
  elif command -v sudo >/dev/null 2>&1; then
    sudo "$@"
  else
    die "need root for: $* (run as root or install sudo)"
  fi
}

pkg_installed() {
  [[ $(dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null || true) == installed ]]
}

# apt_install PKG...: install the packages that are missing; `apt-get update` at most once.
apt_install() {
  local missing=() p
  for p in "$@"; do pkg_installed "$p" || missing+=("$p"); done
  ((${#missing[@]})) || return 0
  command -v apt-get >/dev/null 2>&1 || die "missing packages (${missing[*]}) and no apt-get to install them"
  if ((APT_UPDATED == 0)); then
    log "apt-get update"
    run_logged "apt-get update" as_root env DEBIAN_FRONTEND=noninteractive \
      apt-get -o DPkg::Lock::Timeout=300 -q update
    APT_UPDATED=1
  fi
  log "apt-get install ${missing[*]}"
  run_logged "apt-get install ${missing[*]}" as_root env DEBIAN_FRONTEND=noninteractive \
    apt-get -o DPkg::Lock::Timeout=300 -q install -y --no-install-recommends "${missing[@]}"
}

# ----------------------------------------------------------------------------
# install

install_base() {
  local need=()
  command -v curl >/dev/null 2>&1 || need+=(curl ca-certificates)
  command -v flock >/dev/null 2>&1 || need+=(util-linux)
  command -v sha256sum >/dev/null 2>&1 || need+=(coreutils)
  ((${#need[@]} == 0)) || apt_install "${need[@]}"
}

install_java_tools() {
  command -v java >/dev/null 2>&1 || apt_install default-jre-headless
  command -v mvn >/dev/null 2>&1 || apt_install maven
  local v
  v=$(java -XshowSettings:properties -version 2>&1 | sed -n 's/^ *java\.specification\.version = //p')
  if [[ ! ${v%%.*} =~ ^[0-9]+$ ]] || ((${v%%.*} < 17)); then
    die "Kafka 4 needs Java 17 or newer; 'java' is version '${v:-unknown}'"
  fi
}

install_kafka() {
  local pom=$SCRIPT_DIR/kafka/pom.xml want tmp t0=$SECONDS
  want=$(sha <"$pom")
  if stamp_ok kafka "$want" && compgen -G "$KAFKA_LIBS/kafka_2.13-*.jar" >/dev/null; then
    log "kafka: jars up to date ($KAFKA_LIBS)"
    return 0
  fi
  install_java_tools
  log "kafka: fetching jars with Maven (first time: about 100 MB of downloads)"
  mkdir -p "$KAFKA_HOME"
  tmp=$KAFKA_HOME/libs.tmp
  rm -rf "$tmp"
  local mvn_args=(-q -B -Dstyle.color=never -f "$pom" dependency:copy-dependencies -DincludeScope=runtime
    "-DoutputDirectory=$tmp")
  [[ -z ${CRUXLOG_MAVEN_REPO:-} ]] || mvn_args+=("-Dmaven.repo.local=$CRUXLOG_MAVEN_REPO")
  run_logged "kafka: 'mvn dependency:copy-dependencies'" mvn "${mvn_args[@]}"
  compgen -G "$tmp/kafka_2.13-*.jar" >/dev/null || die "kafka: no kafka_2.13 jar in $tmp after Maven"
  compgen -G "$tmp/kafka-tools-*.jar" >/dev/null || die "kafka: no kafka-tools jar in $tmp after Maven"
  if kafka_pid >/dev/null; then
    log "kafka: note: the broker is running on the old jars; restart it (stop kafka; start kafka)"
  fi
  rm -rf "$KAFKA_LIBS"
  mv "$tmp" "$KAFKA_LIBS"
  stamp_write kafka "$want"
  log "kafka: $(find "$KAFKA_LIBS" -name '*.jar' | wc -l) jars in $KAFKA_LIBS ($((SECONDS - t0)) s)"
}

# PostgreSQL binaries: CRUXLOG_PG_BIN, else 15, else the newest installed major.
PG_BIN=
find_pg_bin() {
  local d
  if [[ -n ${CRUXLOG_PG_BIN:-} ]]; then
    PG_BIN=$CRUXLOG_PG_BIN
  elif [[ -x /usr/lib/postgresql/15/bin/pg_ctl ]]; then
    PG_BIN=/usr/lib/postgresql/15/bin
  else
    PG_BIN=
    for d in /usr/lib/postgresql/*/bin; do
      [[ -x $d/pg_ctl ]] && PG_BIN=$d
    done
  fi
  [[ -n $PG_BIN && -x $PG_BIN/pg_ctl && -x $PG_BIN/initdb ]]
}

install_postgres() {
  if ! find_pg_bin; then
    apt_install postgresql
    find_pg_bin || die "postgres: no pg_ctl/initdb under /usr/lib/postgresql/*/bin after installing 'postgresql'"
  fi
  if ((EUID == 0)) && ! id -u postgres >/dev/null 2>&1; then
    die "postgres: the 'postgres' OS user does not exist (it comes with the postgresql package)"
  fi
  log "postgres: binaries in $PG_BIN ($("$PG_BIN/postgres" --version))"
}

python_inputs_hash() {
  {
    printf '%s\n' "$PY_MEDIAPIPE" "${PY_PINS[@]}" -- "${PY_CONSTRAINTS[@]}" -- "${PY_API_TOOLS[@]}" -- "$1"
    if [[ -f $PY_PROJECT/pyproject.toml ]]; then cat "$PY_PROJECT/pyproject.toml"; else echo "no pyproject"; fi
  } | sha
}

install_python() {
  local t0=$SECONDS py pyver want vpy
  command -v ffmpeg >/dev/null 2>&1 || apt_install ffmpeg
  py=$(command -v "${CRUXLOG_PYTHON_BIN:-python3.11}") ||
    die "python: '${CRUXLOG_PYTHON_BIN:-python3.11}' not found on PATH (set CRUXLOG_PYTHON_BIN)"
  pyver=$("$py" -c 'import sys; print("%d.%d.%d" % sys.version_info[:3])') || die "python: '$py' does not run"
  want=$(python_inputs_hash "$pyver")
  vpy=$VENV/bin/python
  if stamp_ok python "$want" && [[ -x $vpy ]]; then
    log "python: venv up to date ($VENV)"
    return 0
  fi
  if [[ -x $vpy ]] && [[ $("$vpy" -c 'import sys; print("%d.%d.%d" % sys.version_info[:3])' 2>/dev/null || true) != "$pyver" ]]; then
    log "python: venv is not on Python $pyver, recreating it"
    rm -rf "$VENV"
  fi
  if [[ ! -x $vpy ]]; then
    log "python: creating venv $VENV with $py ($pyver)"
    rm -rf "$VENV"
    if ! "$py" -m venv "$VENV" >>"$INSTALL_LOG" 2>&1; then
      # Debian's own interpreters ship venv/ensurepip separately.
      [[ $py == /usr/bin/* ]] || die "python: '$py -m venv' failed"
      apt_install "python${pyver%.*}-venv"
      rm -rf "$VENV"
      run_logged "python: '$py -m venv'" "$py" -m venv "$VENV"
    fi
  fi
  local pip=("$vpy" -m pip --disable-pip-version-check -q)
  log "python: pip install --no-deps $PY_MEDIAPIPE"
  run_logged "python: pip install $PY_MEDIAPIPE" "${pip[@]}" install --no-deps "$PY_MEDIAPIPE"
  log "python: pip install ${PY_PINS[*]}"
  # pip reports mediapipe's undeclared jax/opencv-contrib/sounddevice as conflicts: expected.
  run_logged "python: pip install (mediapipe runtime deps)" "${pip[@]}" install "${PY_PINS[@]}"
  printf '%s\n' "${PY_CONSTRAINTS[@]}" >"$VENV/cruxlog-constraints.txt"
  if [[ -f $PY_PROJECT/pyproject.toml ]]; then
    log "python: pip install -e analyzers/python[dev]"
    run_logged "python: pip install -e analyzers/python[dev]" \
      "${pip[@]}" install -c "$VENV/cruxlog-constraints.txt" -e "${PY_PROJECT}[dev]"
  else
    log "python: no analyzers/python/pyproject.toml yet, skipping the analyzers package"
  fi
  log "python: pip install ${PY_API_TOOLS[*]}"
  run_logged "python: pip install (API test tools)" \
    "${pip[@]}" install -c "$VENV/cruxlog-constraints.txt" "${PY_API_TOOLS[@]}"
  log "python: checking 'import mediapipe, cv2'"
  "$vpy" - <<'PYCHECK' >&2 || die "python: the venv check failed (see above)"
import importlib.metadata as md
import sys

import cv2
import mediapipe

def installed(name):
    try:
        md.distribution(name)
        return True
    except md.PackageNotFoundError:
        return False

gui = [n for n in ("opencv-python", "opencv-contrib-python", "opencv-contrib-python-headless") if installed(n)]
if gui:
    sys.exit("non-headless OpenCV installed (overrides the headless cv2): " + ", ".join(gui))
owners = [d.metadata["Name"] for d in md.distributions()
          if any(str(f) == "cv2/__init__.py" for f in (d.files or []))]
if owners != ["opencv-python-headless"]:
    sys.exit("cv2 is provided by %s, expected opencv-python-headless only" % owners)
print("[stack] python: ok: mediapipe %s, cv2 %s (opencv-python-headless), numpy %s, python %s"
      % (mediapipe.__version__, cv2.__version__, md.version("numpy"), sys.version.split()[0]))
PYCHECK
  stamp_write python "$want"
  log "python: venv ready ($((SECONDS - t0)) s)"
}

cmd_install() {
  local what=${1:-all} t0=$SECONDS
  take_lock
  case $what in
    kafka)
      install_base
      install_kafka
      ;;
    postgres)
      install_base
      install_postgres
      ;;
    python)
      install_base
      install_python
      ;;
    all)
      install_base
      install_postgres
      install_kafka
      install_python
      ;;
    *) die "install: unknown component '$what' (kafka|postgres|python|all)" ;;
  esac
  log "install $what: done in $((SECONDS - t0)) s"
}

# ----------------------------------------------------------------------------
# Kafka

java_tool_opts=(-Xms32m -Xmx256m -XX:+UseSerialGC -XX:TieredStopAtLevel=1
  "-Dlog4j2.configurationFile=$KAFKA_LOG4J" -Dcruxlog.log.level=WARN -Dcruxlog.log.target=SYSTEM_ERR)

# Run a Kafka main class (CLI tool) with the broker's jars.
kafka_java() { java "${java_tool_opts[@]}" -cp "$KAFKA_LIBS/*" "$@"; }

# True if $1 is the pid of our broker (kafka.Kafka with our config).
is_kafka_pid() {
  local args=()
  [[ $1 =~ ^[0-9]+$ && -r /proc/$1/cmdline ]] || return 1
  mapfile -d '' -t args <"/proc/$1/cmdline" 2>/dev/null || return 1
  local a main=0 conf=0
  for a in "${args[@]}"; do
    [[ $a == kafka.Kafka ]] && main=1
    [[ $a == "$KAFKA_CONF" ]] && conf=1
  done
  ((main && conf))
}

# Print the broker's pid if it runs (pid file first, then a scan of /proc).
kafka_pid() {
  local pid f
  if [[ -r $KAFKA_PIDFILE ]]; then
    pid=$(<"$KAFKA_PIDFILE")
    if is_kafka_pid "$pid"; then
      echo "$pid"
      return 0
    fi
  fi
  for f in /proc/[0-9]*; do
    pid=${f#/proc/}
    if is_kafka_pid "$pid"; then
      echo "$pid"
      return 0
    fi
  done
  return 1
}

render_kafka_conf() {
  local tpl=$SCRIPT_DIR/kafka/server.properties.in esc
  mkdir -p "${KAFKA_CONF%/*}" "$KAFKA_DATA" "${KAFKA_LOG%/*}"
  esc=$(printf '%s' "$KAFKA_DATA" | sed 's/[\\&|]/\\&/g')
  sed -e "s|@KAFKA_PORT@|$KAFKA_PORT|g" \
    -e "s|@KAFKA_CONTROLLER_PORT@|$KAFKA_CONTROLLER_PORT|g" \
    -e "s|@KAFKA_LOG_DIRS@|$esc|g" "$tpl" >"$KAFKA_CONF.tmp"
  mv "$KAFKA_CONF.tmp" "$KAFKA_CONF"
}

format_kafka_storage() {
  local cid
  if [[ -f $KAFKA_DATA/meta.properties ]]; then
    local fport
    fport=$(cat "$KAFKA_FORMAT_PORT_FILE" 2>/dev/null || echo "$KAFKA_CONTROLLER_PORT")
    [[ $fport == "$KAFKA_CONTROLLER_PORT" ]] ||
      die "kafka: the storage was formatted with controller port $fport, now $KAFKA_CONTROLLER_PORT; use the old port or 'stack.sh reset kafka'"
    return 0
  fi
  if [[ ! -s $KAFKA_CLUSTER_ID_FILE ]]; then
    cid=$(kafka_java kafka.tools.StorageTool random-uuid) || die "kafka: 'StorageTool random-uuid' failed"
    printf '%s\n' "$cid" >"$KAFKA_CLUSTER_ID_FILE"
  fi
  cid=$(<"$KAFKA_CLUSTER_ID_FILE")
  log "kafka: formatting storage $KAFKA_DATA (cluster id $cid)"
  kafka_java kafka.tools.StorageTool format --standalone -t "$cid" -c "$KAFKA_CONF" --ignore-formatted >&2 ||
    die "kafka: 'StorageTool format' failed"
  printf '%s\n' "$KAFKA_CONTROLLER_PORT" >"$KAFKA_FORMAT_PORT_FILE"
}

# Readiness: a real Metadata + ApiVersions round trip through the admin client.
kafka_probe() {
  local out
  out=$(timeout 30 java "${java_tool_opts[@]}" -cp "$KAFKA_LIBS/*" \
    org.apache.kafka.tools.BrokerApiVersionsCommand --bootstrap-server "127.0.0.1:$KAFKA_PORT" 2>/dev/null) || return 1
  # e.g. "127.0.0.1:19092 (id: 1 rack: null isFenced: false) -> (...)"; a fenced broker is not ready.
  [[ $out == *"(id: 1 "* && $out != *"isFenced: true"* ]]
}

# The broker log since the last start, at most 60 lines, on stderr.
kafka_log_tail() {
  local from
  from=$(grep -n '^\[stack\] ===== starting kafka' "$KAFKA_LOG" 2>/dev/null | tail -n 1 | cut -d: -f1 || true)
  printf '[stack] ---- %s (since the last start, at most 60 lines) ----\n' "$KAFKA_LOG" >&2
  tail -n +"${from:-1}" "$KAFKA_LOG" 2>/dev/null | tail -n 60 >&2 || true
  printf '[stack] ----\n' >&2
}

wait_kafka_ready() {
  local pid=$1 t0=$SECONDS deadline=$((SECONDS + KAFKA_START_TIMEOUT))
  while ((SECONDS < deadline)); do
    if ! kill -0 "$pid" 2>/dev/null; then
      rm -f "$KAFKA_PIDFILE"
      kafka_log_tail
      die "kafka: the broker (pid $pid) exited during startup; log: $KAFKA_LOG"
    fi
    # The TCP check only gates the (slower) JVM probe; the probe is the readiness signal.
    if port_open "$KAFKA_PORT" && kafka_probe; then
      log "kafka: ready on 127.0.0.1:$KAFKA_PORT (pid $pid, $((SECONDS - t0)) s)"
      return 0
    fi
    sleep 0.5
  done
  kafka_log_tail
  log "kafka: not ready after ${KAFKA_START_TIMEOUT} s, stopping it"
  stop_kafka >/dev/null 2>&1 || true
  die "kafka: the broker did not answer an ApiVersions request on 127.0.0.1:$KAFKA_PORT within ${KAFKA_START_TIMEOUT} s; log: $KAFKA_LOG"
}

start_kafka() {
  local pid
  install_kafka
  if pid=$(kafka_pid); then
    echo "$pid" >"$KAFKA_PIDFILE"
    if ! grep -q "^listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT," "$KAFKA_CONF"; then
      die "kafka: already running (pid $pid) with other ports than $KAFKA_PORT/$KAFKA_CONTROLLER_PORT ($KAFKA_CONF); stop it first"
    fi
    if port_open "$KAFKA_PORT"; then
      log "kafka: already running (pid $pid, 127.0.0.1:$KAFKA_PORT)"
      return 0
    fi
    log "kafka: running (pid $pid) but port $KAFKA_PORT is not open yet, waiting"
    wait_kafka_ready "$pid"
    return 0
  fi
  rm -f "$KAFKA_PIDFILE"
  local p
  for p in "$KAFKA_PORT" "$KAFKA_CONTROLLER_PORT"; do
    if port_open "$p"; then
      die "kafka: port $p is already in use by another process (set CRUXLOG_KAFKA_PORT / CRUXLOG_KAFKA_CONTROLLER_PORT)"
    fi
  done
  render_kafka_conf
  format_kafka_storage
  # Keep one previous log when the current one gets big.
  if [[ -f $KAFKA_LOG ]] && (($(stat -c %s "$KAFKA_LOG") > 50 * 1024 * 1024)); then
    mv -f "$KAFKA_LOG" "$KAFKA_LOG.1"
  fi
  printf '\n[stack] ===== starting kafka %s =====\n' "$(date -Is)" >>"$KAFKA_LOG"
  log "kafka: starting broker+controller (log: $KAFKA_LOG)"
  local heap
  read -r -a heap <<<"$KAFKA_HEAP_OPTS"
  # setsid: own session, so a Ctrl-C in the calling shell (or make) does not reach it.
  (
    cd "$KAFKA_HOME"
    close_inherited_fds
    exec nohup setsid java "${heap[@]}" -XX:+UseG1GC -XX:MaxGCPauseMillis=20 \
      -XX:InitiatingHeapOccupancyPercent=35 -XX:+ExplicitGCInvokesConcurrent -Djava.awt.headless=true \
      "-Dlog4j2.configurationFile=$KAFKA_LOG4J" -Dcruxlog.log.level=INFO -Dcruxlog.log.target=SYSTEM_OUT \
      "-Dkafka.logs.dir=${KAFKA_LOG%/*}" \
      -cp "$KAFKA_LIBS/*" kafka.Kafka "$KAFKA_CONF"
  ) </dev/null >>"$KAFKA_LOG" 2>&1 &
  pid=$!
  echo "$pid" >"$KAFKA_PIDFILE"
  wait_kafka_ready "$pid"
}

stop_kafka() {
  local pid i
  if ! pid=$(kafka_pid); then
    rm -f "$KAFKA_PIDFILE"
    log "kafka: not running"
    return 0
  fi
  log "kafka: stopping (pid $pid)"
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < 150; i++)); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.2
  done
  if kill -0 "$pid" 2>/dev/null; then
    log "kafka: still running after 30 s, sending SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
    for ((i = 0; i < 50; i++)); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
  fi
  rm -f "$KAFKA_PIDFILE"
  log "kafka: stopped"
}

# ----------------------------------------------------------------------------
# PostgreSQL

PG_ROOT='' PGDATA_DIR='' PG_RUN='' PG_LOG=''

# Where the cluster lives: $DATA/postgres, unless the postgres OS user cannot
# reach $DATA (e.g. a clone under /root): then /var/tmp/cruxlog-<hash>/postgres.
# The choice is recorded in $DATA/postgres.location so it never flips.
pg_paths() {
  if [[ -s $PG_LOCATION_FILE ]]; then
    PG_ROOT=$(<"$PG_LOCATION_FILE")
  else
    local probe=$DATA
    while [[ ! -e $probe && $probe == /* && $probe != / ]]; do probe=${probe%/*}; done
    [[ -n $probe ]] || probe=/
    if ((EUID != 0)) || runuser -u postgres -- test -x "$probe" -a -r "$probe" 2>/dev/null; then
      PG_ROOT=$DATA/postgres
    else
      PG_ROOT=/var/tmp/cruxlog-$(printf '%s' "$DATA" | sha256sum | cut -c1-10)/postgres
    fi
  fi
  PGDATA_DIR=$PG_ROOT/data
  PG_RUN=$PG_ROOT/run
  PG_LOG=$PG_ROOT/log/postgres.log
}

# Run a PostgreSQL server binary as the postgres OS user (initdb/postgres refuse root).
as_pg() {
  if ((EUID == 0)); then
    (cd / && runuser -u postgres -- "$@")
  else
    "$@"
  fi
}

pg_running() { as_pg "$PG_BIN/pg_ctl" status -D "$PGDATA_DIR" >/dev/null 2>&1; }
pg_pid() { [[ -r $PGDATA_DIR/postmaster.pid ]] && head -n1 "$PGDATA_DIR/postmaster.pid"; }

pg_prepare_dirs() {
  mkdir -p "$PG_ROOT" "$PGDATA_DIR" "$PG_RUN" "${PG_LOG%/*}"
  if ((EUID == 0)); then
    chown postgres:postgres "$PG_ROOT" "$PGDATA_DIR" "$PG_RUN" "${PG_LOG%/*}"
  fi
  chmod 700 "$PGDATA_DIR"
  chmod 755 "$PG_ROOT" "$PG_RUN"
  if [[ $PG_ROOT != "$DATA/postgres" ]]; then
    printf '%s\n' "$PG_ROOT" >"$PG_LOCATION_FILE"
    ln -sfn "$PG_ROOT" "$DATA/postgres"
  fi
}

pg_initdb() {
  [[ -f $PGDATA_DIR/PG_VERSION ]] && return 0
  log "postgres: initdb $PGDATA_DIR"
  as_pg "$PG_BIN/initdb" -D "$PGDATA_DIR" --auth=trust -U postgres -E UTF8 --locale=C.UTF-8 \
    >"$PG_ROOT/initdb.log" 2>&1 || {
    log_tail "$PG_ROOT/initdb.log"
    die "postgres: initdb failed"
  }
  # Our settings live in cruxlog.conf (rewritten on every start, so the port can change).
  printf "\n# Cruxlog local stack (infra/local/stack.sh)\ninclude_if_exists = 'cruxlog.conf'\n" \
    >>"$PGDATA_DIR/postgresql.conf"
}

pg_write_conf() {
  local f=$PGDATA_DIR/cruxlog.conf
  cat >"$f.tmp" <<EOF
# Written by infra/local/stack.sh on every start; edit the script, not this file.
listen_addresses = '127.0.0.1'
port = $PG_PORT
unix_socket_directories = '$PG_RUN'
max_connections = 200
shared_buffers = 128MB
fsync = on
log_destination = 'stderr'
logging_collector = off
log_min_duration_statement = 1000
EOF
  ((EUID != 0)) || chown postgres:postgres "$f.tmp"
  mv "$f.tmp" "$f"
}

start_postgres() {
  install_postgres
  pg_paths
  pg_prepare_dirs
  if pg_running; then
    local running_port
    running_port=$(sed -n 4p "$PGDATA_DIR/postmaster.pid" 2>/dev/null || true)
    if [[ -n $running_port && $running_port != "$PG_PORT" ]]; then
      die "postgres: already running on port $running_port, not $PG_PORT (CRUXLOG_PG_PORT); stop it first"
    fi
    log "postgres: already running (pid $(pg_pid), 127.0.0.1:$PG_PORT)"
  else
    if port_open "$PG_PORT"; then
      die "postgres: port $PG_PORT is already in use by another process (set CRUXLOG_PG_PORT)"
    fi
    pg_initdb
    pg_write_conf
    log "postgres: starting (data: $PGDATA_DIR, log: $PG_LOG)"
    (
      close_inherited_fds
      as_pg "$PG_BIN/pg_ctl" start -D "$PGDATA_DIR" -l "$PG_LOG" -w -t 60
    ) </dev/null >/dev/null 2>&1 || {
      log_tail "$PG_LOG"
      die "postgres: pg_ctl start failed; log: $PG_LOG"
    }
  fi
  local deadline=$((SECONDS + 30))
  while ((SECONDS < deadline)); do
    if "$PG_BIN/pg_isready" -q -t 2 -h 127.0.0.1 -p "$PG_PORT" -U postgres; then
      log "postgres: ready on 127.0.0.1:$PG_PORT (pid $(pg_pid))"
      return 0
    fi
    sleep 0.5
  done
  log_tail "$PG_LOG"
  die "postgres: not accepting connections on 127.0.0.1:$PG_PORT"
}

stop_postgres() {
  find_pg_bin || {
    log "postgres: not installed"
    return 0
  }
  pg_paths
  if [[ ! -f $PGDATA_DIR/PG_VERSION ]] || ! pg_running; then
    log "postgres: not running"
    return 0
  fi
  log "postgres: stopping (pid $(pg_pid))"
  as_pg "$PG_BIN/pg_ctl" stop -D "$PGDATA_DIR" -m fast -w -t 60 >/dev/null 2>&1 || {
    log_tail "$PG_LOG"
    die "postgres: pg_ctl stop failed"
  }
  log "postgres: stopped"
}

# ----------------------------------------------------------------------------
# commands

cmd_start() {
  local what=${1:-all} t0=$SECONDS
  take_lock
  case $what in
    kafka)
      install_base
      start_kafka
      ;;
    postgres)
      install_base
      start_postgres
      ;;
    all)
      install_base
      start_postgres
      start_kafka
      ;;
    *) die "start: unknown component '$what' (kafka|postgres|all)" ;;
  esac
  log "start $what: done in $((SECONDS - t0)) s"
}

cmd_stop() {
  local what=${1:-all}
  take_lock
  case $what in
    kafka) stop_kafka ;;
    postgres) stop_postgres ;;
    all)
      stop_kafka
      stop_postgres
      ;;
    *) die "stop: unknown component '$what' (kafka|postgres|all)" ;;
  esac
}

cmd_reset() {
  local what=${1:-all}
  case $what in kafka | postgres | all) ;; *) die "reset: unknown component '$what' (kafka|postgres|all)" ;; esac
  cmd_stop "$what"
  if [[ $what == kafka || $what == all ]]; then
    log "kafka: deleting $KAFKA_DATA"
    rm -rf "$KAFKA_DATA" "$KAFKA_CLUSTER_ID_FILE" "$KAFKA_FORMAT_PORT_FILE" "$KAFKA_CONF"
  fi
  if [[ $what == postgres || $what == all ]]; then
    pg_paths
    log "postgres: deleting $PG_ROOT"
    rm -rf "$PG_ROOT" "$PG_LOCATION_FILE"
    if [[ -L $DATA/postgres ]]; then
      rm -f "$DATA/postgres"
      rmdir "${PG_ROOT%/*}" 2>/dev/null || true
    fi
  fi
}

cmd_status() {
  local pid
  if pid=$(kafka_pid); then
    printf '%-9s %-8s pid %-7s port %s (controller %s)  log %s\n' kafka running "$pid" \
      "$KAFKA_PORT" "$KAFKA_CONTROLLER_PORT" "$KAFKA_LOG"
  elif compgen -G "$KAFKA_LIBS/kafka_2.13-*.jar" >/dev/null; then
    printf '%-9s %-8s %-11s port %s (controller %s)  log %s\n' kafka stopped - \
      "$KAFKA_PORT" "$KAFKA_CONTROLLER_PORT" "$KAFKA_LOG"
  else
    printf '%-9s %s\n' kafka "not installed (stack.sh install kafka)"
  fi
  if ! find_pg_bin; then
    printf '%-9s %s\n' postgres "not installed (stack.sh install postgres)"
  else
    pg_paths
    if [[ -f $PGDATA_DIR/PG_VERSION ]] && pg_running; then
      printf '%-9s %-8s pid %-7s port %s  data %s\n' postgres running "$(pg_pid)" "$PG_PORT" "$PGDATA_DIR"
    else
      printf '%-9s %-8s %-11s port %s  data %s\n' postgres stopped - "$PG_PORT" "$PGDATA_DIR"
    fi
  fi
  if [[ -x $VENV/bin/python ]]; then
    printf '%-9s %-8s %s\n' python ready "$VENV"
  else
    printf '%-9s %s\n' python "not installed (stack.sh install python)"
  fi
}

cmd_env() {
  printf 'export CRUXLOG_KAFKA__BROKERS=%q\n' "127.0.0.1:$KAFKA_PORT"
  printf 'export CRUXLOG_DATABASE__URL=%q\n' "postgres://postgres@127.0.0.1:$PG_PORT/postgres"
  printf 'export CRUXLOG_PYTHON=%q\n' "$VENV/bin/python"
  printf 'export CRUXLOG_WORKER__PYTHON=%q\n' "$VENV/bin/python"
  printf 'export CRUXLOG_LOCAL_DIR=%q\n' "$DATA"
}

cmd_kafka_cli() {
  (($#)) || die "kafka-cli: usage: stack.sh kafka-cli TOOL [ARGS...]; TOOL is one of: topics, console-producer, console-consumer, consumer-groups, api-versions, metadata-quorum, get-offsets, or a main class name"
  compgen -G "$KAFKA_LIBS/kafka_2.13-*.jar" >/dev/null || die "kafka-cli: Kafka is not installed (stack.sh install kafka)"
  local tool=$1 cls
  shift
  case $tool in
    topics) cls=org.apache.kafka.tools.TopicCommand ;;
    console-producer) cls=org.apache.kafka.tools.ConsoleProducer ;;
    console-consumer) cls=org.apache.kafka.tools.consumer.ConsoleConsumer ;;
    consumer-groups) cls=org.apache.kafka.tools.consumer.group.ConsumerGroupCommand ;;
    api-versions) cls=org.apache.kafka.tools.BrokerApiVersionsCommand ;;
    metadata-quorum) cls=org.apache.kafka.tools.MetadataQuorumCommand ;;
    get-offsets) cls=org.apache.kafka.tools.GetOffsetShell ;;
    *) cls=$tool ;;
  esac
  exec java "${java_tool_opts[@]}" -cp "$KAFKA_LIBS/*" "$cls" "$@"
}

# Each test makes its own database and topics (prefix t_); a run leaves them for
# post-mortems, and the next `make test` drops them here so the disk does not fill up.
cmd_prune_tests() {
  local dbs topics
  find_pg_bin || die "prune-tests: PostgreSQL is not installed"
  dbs=$("$PG_BIN/psql" -h 127.0.0.1 -p "$PG_PORT" -U postgres -d postgres -Atc \
    "select datname from pg_database where datname like 't\_%'") || die "prune-tests: PostgreSQL is not reachable"
  for db in $dbs; do
    "$PG_BIN/psql" -h 127.0.0.1 -p "$PG_PORT" -U postgres -d postgres -qc "drop database if exists \"$db\" with (force)" >/dev/null
  done
  topics=$(bash "$0" kafka-cli topics --bootstrap-server "127.0.0.1:$KAFKA_PORT" --list 2>/dev/null | grep -c '^t_' || true)
  if ((topics > 0)); then
    bash "$0" kafka-cli topics --bootstrap-server "127.0.0.1:$KAFKA_PORT" --delete --topic 't_.*' >/dev/null 2>&1 ||
      log "prune-tests: deleting test topics failed (continuing)"
  fi
  # the API tests' and benches' object stores (`<tmp>/cruxlog-blobs-<test env>`)
  local blobs
  blobs=$(find "${TMPDIR:-/tmp}" -maxdepth 1 -name 'cruxlog-blobs-t_*' 2>/dev/null | wc -l)
  find "${TMPDIR:-/tmp}" -maxdepth 1 -name 'cruxlog-blobs-t_*' -exec rm -rf {} + 2>/dev/null || true
  log "prune-tests: dropped $(wc -w <<<"$dbs") test databases, $topics test topics and $blobs test object stores"
}

main() {
  local cmd=${1:-}
  (($#)) && shift
  case $cmd in
    install) cmd_install "$@" ;;
    start) cmd_start "$@" ;;
    stop) cmd_stop "$@" ;;
    status) cmd_status ;;
    env) cmd_env ;;
    reset) cmd_reset "$@" ;;
    kafka-cli) cmd_kafka_cli "$@" ;;
    prune-tests) cmd_prune_tests ;;
    -h | --help | help) usage ;;
    "")
      usage
      exit 2
      ;;
    *)
      usage
      die "unknown command '$cmd'"
      ;;
  esac
}

main "$@"
