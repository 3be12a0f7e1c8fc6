#!/usr/bin/env bash
# A real Apache Kafka broker (KRaft, one node: broker + controller) for tests, the demo and the
# bench, resolved from Maven Central into a cache and started on free loopback ports.
#
#   scripts/kafka-broker.sh resolve            # fetch the jars once (idempotent)
#   scripts/kafka-broker.sh start [DIR]        # stdout, one line: bootstrap=127.0.0.1:PORT pid=PID dir=DIR
#   scripts/kafka-broker.sh stop DIR           # SIGTERM, wait, SIGKILL if needed; the data stays
#   scripts/kafka-broker.sh clean DIR          # stop, then remove DIR
#
# `start` on a DIR it started before restarts the broker on the same ports with the same data
# (a broker restart, as the tests need it); without DIR it makes a new temporary one.
#
# Env: KAFKA_VERSION (4.2.1), KAFKA_CACHE (<repo>/.cache/kafka), KAFKA_PORT, KAFKA_CONTROLLER_PORT
# (free ports when unset), KAFKA_HEAP (512m), KAFKA_AUTO_CREATE (false: tests create their
# topics, which catches a missing create step), KAFKA_PARTITIONS (1), KAFKA_LOG_LEVEL (WARN),
# KAFKA_READY_TIMEOUT (seconds, 90: a busy 2-core machine has taken 20 s), KAFKA_EXTRA (more
# server.properties lines), KAFKA_JVM_OPTS.
#
# Why these jars: kafka_2.13 carries the broker, but no POM of Kafka's brings an SLF4J binding,
# and without one the broker logs nothing (so its readiness line never shows): log4j-slf4j-impl
# (SLF4J 1.x, which Kafka uses) and log4j-core are added. Kafka 4.x runs on Java 17.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
VERSION="${KAFKA_VERSION:-4.2.1}"
CACHE="${KAFKA_CACHE:-$ROOT/.cache/kafka}"
LIBS="$CACHE/$VERSION/libs"
READY_TIMEOUT="${KAFKA_READY_TIMEOUT:-90}"

log() { echo "kafka-broker: $*" >&2; }

log4j_version() {
  case "$VERSION" in
    4.0.* | 4.1.*) echo 2.24.3 ;;
    *) echo 2.25.5 ;;
  esac
}

resolve() {
  if [[ -f "$CACHE/$VERSION/.complete" ]]; then return 0; fi
  command -v mvn >/dev/null || { log "mvn not found (Maven resolves the broker's jars)"; exit 1; }
  command -v java >/dev/null || { log "java not found (Kafka $VERSION needs Java 17+)"; exit 1; }
  mkdir -p "$CACHE/$VERSION"
  local l4j
  l4j="$(log4j_version)"
  cat >"$CACHE/$VERSION/pom.xml" <<EOF
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>scorecar.test</groupId>
  <artifactId>kafka-broker</artifactId>
  <version>1</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency><groupId>org.apache.kafka</groupId><artifactId>kafka_2.13</artifactId><version>$VERSION</version></dependency>
    <dependency><groupId>org.apache.logging.log4j</groupId><artifactId>log4j-slf4j-impl</artifactId><version>$l4j</version></dependency>
    <dependency><groupId>org.apache.logging.log4j</groupId><artifactId>log4j-core</artifactId><version>$l4j</version></dependency>
  </dependencies>
</project>
EOF
  local t0=$SECONDS
  log "resolving Kafka $VERSION into $LIBS (once)"
  # The local repository is kept under the cache too, so a second run downloads nothing.
  mvn -B -q -f "$CACHE/$VERSION/pom.xml" -Dmaven.repo.local="$CACHE/m2" \
    org.apache.maven.plugins:maven-dependency-plugin:3.8.1:copy-dependencies \
    -DincludeScope=runtime -DoutputDirectory="$LIBS" >&2
  touch "$CACHE/$VERSION/.complete"
  log "resolved in $((SECONDS - t0)) s ($(ls "$LIBS" | wc -l) jars)"
}

free_port() {
  # Bound and released at once: a small race with other processes, which the start-up check catches.
  if command -v node >/dev/null; then
    node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'
  else
    python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1]);s.close()'
  fi
}

port_open() {
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0 || return 1
}

java_cmd() {
  # shellcheck disable=SC2086
  exec_prefix java -Xms64m "-Xmx${KAFKA_HEAP:-512m}" -XX:+UseSerialGC ${KAFKA_JVM_OPTS:-} \
    -Dlog4j2.configurationFile="$DIR/log4j2.properties" -cp "$LIBS/*" "$@"
}
exec_prefix() { "$@"; }

start() {
  resolve
  DIR="${1:-}"
  if [[ -z "$DIR" ]]; then DIR="$(mktemp -d "${TMPDIR:-/tmp}/kafka-broker.XXXXXX")"; fi
  mkdir -p "$DIR"
  DIR="$(cd "$DIR" && pwd)"
  if [[ -f "$DIR/pid" ]] && kill -0 "$(cat "$DIR/pid")" 2>/dev/null; then
    log "already running in $DIR"
    echo "bootstrap=127.0.0.1:$(cat "$DIR/port") pid=$(cat "$DIR/pid") dir=$DIR"
    return 0
  fi
  local port cport fresh=0
  if [[ -f "$DIR/port" && -f "$DIR/controller-port" ]]; then
    port="$(cat "$DIR/port")"
    cport="$(cat "$DIR/controller-port")"
  else
    fresh=1
    port="${KAFKA_PORT:-$(free_port)}"
    cport="${KAFKA_CONTROLLER_PORT:-$(free_port)}"
    while [[ "$cport" == "$port" ]]; do cport="$(free_port)"; done
    echo "$port" >"$DIR/port"
    echo "$cport" >"$DIR/controller-port"
  fi
  cat >"$DIR/server.properties" <<EOF
process.roles=broker,controller
node.id=1
controller.quorum.bootstrap.servers=127.0.0.1:$cport
listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$cport
advertised.listeners=PLAINTEXT://127.0.0.1:$port
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
log.dirs=$DIR/data
num.partitions=${KAFKA_PARTITIONS:-1}
auto.create.topics.enable=${KAFKA_AUTO_CREATE:-false}
offsets.topic.replication.factor=1
offsets.topic.num.partitions=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
num.network.threads=2
num.io.threads=4
log.retention.hours=1
${KAFKA_EXTRA:-}
EOF
  cat >"$DIR/log4j2.properties" <<EOF
status = warn
appender.out.type = Console
appender.out.name = out
appender.out.layout.type = PatternLayout
appender.out.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = ${KAFKA_LOG_LEVEL:-WARN}
rootLogger.appenderRef.out.ref = out
# The readiness line ("Kafka Server started") is logged at INFO by this one logger.
logger.ready.name = kafka.server.KafkaRaftServer
logger.ready.level = INFO
EOF
  local t0=$SECONDS
  if [[ $fresh == 1 || ! -f "$DIR/data/meta.properties" ]]; then
    local id
    id="$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=' | head -c 22)"
    # An id starting with '-' (1 in 64) would read as an option: Kafka's own ids never start
    # with one, and the '=' form keeps the argument whole anyway.
    id="A${id:1}"
    java_cmd kafka.tools.StorageTool format --standalone "--cluster-id=$id" -c "$DIR/server.properties" >"$DIR/format.log" 2>&1 ||
      { log "format failed:"; cat "$DIR/format.log" >&2; exit 1; }
  fi
  local logf="$DIR/server.log"
  : >"$logf"
  # Its own session, so that a test runner's process group signals do not reach it.
  exec_prefix() { exec setsid "$@"; }
  (java_cmd kafka.Kafka "$DIR/server.properties") >>"$logf" 2>&1 </dev/null &
  local pid=$!
  echo "$pid" >"$DIR/pid"
  while :; do
    if ! kill -0 "$pid" 2>/dev/null; then
      log "broker exited during start-up; log:"
      tail -n 50 "$logf" >&2
      exit 1
    fi
    if grep -q "Kafka Server started" "$logf" && port_open "$port"; then break; fi
    if ((SECONDS - t0 > READY_TIMEOUT)); then
      log "not ready after ${READY_TIMEOUT} s; log:"
      tail -n 50 "$logf" >&2
      kill -KILL "$pid" 2>/dev/null || true
      exit 1
    fi
    sleep 0.2
  done
  log "dir=$DIR log=$logf controller=127.0.0.1:$cport ready in $((SECONDS - t0)) s"
  echo "bootstrap=127.0.0.1:$port pid=$pid dir=$DIR"
}

stop() {
  DIR="${1:?usage: kafka-broker.sh stop DIR}"
  [[ -f "$DIR/pid" ]] || return 0
  local pid
  pid="$(cat "$DIR/pid")"
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null || true
    # A clean stop takes 2-3 s; give it 30 before SIGKILL.
    for _ in $(seq 1 150); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.2
    done
    kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$DIR/pid"
}

case "${1:-}" in
  resolve) resolve ;;
  start) start "${2:-}" ;;
  stop) stop "${2:-}" ;;
  clean)
    stop "${2:?usage: kafka-broker.sh clean DIR}"
    rm -rf "$2"
    ;;
  *)
    sed -n '2,9p' "$0" >&2
    exit 2
    ;;
esac
