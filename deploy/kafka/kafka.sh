#!/usr/bin/env bash
# Local single-node Apache Kafka (KRaft, broker+controller) for loglabel's demo and tests.
#
#   deploy/kafka/kafka.sh fetch     resolve the broker jars from Maven Central into the cache
#   deploy/kafka/kafka.sh start     fetch, format storage (once), start, wait for a metadata answer
#   deploy/kafka/kafka.sh stop      stop the broker by its PID
#   deploy/kafka/kafka.sh status    say whether it runs and answers
#
# Every step is idempotent. Settings (environment):
#   LOGLABEL_KAFKA_PORT   client port on 127.0.0.1             (default 9092)
#   LOGLABEL_KAFKA_HOME   state: data, pid, logs              (default ~/.cache/loglabel/kafka-run-$PORT)
#   LOGLABEL_KAFKA_CACHE  where the jars are copied            (default ~/.cache/loglabel)
#   LOGLABEL_KAFKA_HEAP   JVM heap                             (default 512m)
#   PYTHON                interpreter with kafka-python, for the readiness probe
#                         (default: the repository's .venv/bin/python if it exists, else python3)
#
# Opt-in SASL/SCRAM listener, for testing authenticated clients:
#   LOGLABEL_KAFKA_SCRAM           1 adds a SASL_PLAINTEXT listener (SCRAM-SHA-256 and -512)  (default 0)
#   LOGLABEL_KAFKA_SCRAM_PORT      its port on 127.0.0.1                     (default client port + 2)
#   LOGLABEL_KAFKA_SCRAM_USER      user created when the storage is formatted  (default loglabel)
#   LOGLABEL_KAFKA_SCRAM_PASSWORD  that user's password                        (default loglabel-secret)
# The user is written into the KRaft metadata by `StorageTool format --add-scram`, so it
# exists only in storage formatted with SCRAM on; the plain listener keeps working.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
port=${LOGLABEL_KAFKA_PORT:-9092}
controller_port=$((port + 1))
cache=${LOGLABEL_KAFKA_CACHE:-$HOME/.cache/loglabel}
home=${LOGLABEL_KAFKA_HOME:-$cache/kafka-run-$port}
heap=${LOGLABEL_KAFKA_HEAP:-512m}
venv_python=$here/../../.venv/bin/python
if [ -x "$venv_python" ]; then default_python=$venv_python; else default_python=python3; fi
python=${PYTHON:-$default_python}
scram=${LOGLABEL_KAFKA_SCRAM:-0}
scram_port=${LOGLABEL_KAFKA_SCRAM_PORT:-$((port + 2))}
scram_user=${LOGLABEL_KAFKA_SCRAM_USER:-loglabel}
scram_password=${LOGLABEL_KAFKA_SCRAM_PASSWORD:-loglabel-secret}
kafka_version=$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$here/pom.xml")
libs=$cache/kafka-$kafka_version/libs
pidfile=$home/kafka.pid
logdir=$home/logs

say() { printf 'kafka: %s\n' "$*" >&2; }

fetch() {
  if [ -f "$libs/.complete" ]; then return 0; fi
  say "resolving org.apache.kafka:kafka_2.13:$kafka_version from Maven Central"
  rm -rf "$libs"
  mvn -q -B -Dstyle.color=never -f "$here/pom.xml" dependency:copy-dependencies \
    -DincludeScope=runtime -DoutputDirectory="$libs" >&2
  touch "$libs/.complete"
}

java_opts=(-Xms"$heap" -Xmx"$heap" -XX:+UseG1GC -Xshare:auto
  -Djava.awt.headless=true
  -Dlog4j2.configurationFile="$here/log4j2.yaml" -Dkafka.logs.dir="$logdir"
  -cp "$libs/*")

java_cmd() {
  java "${java_opts[@]}" "$@"
}

scram_on() {
  [ "$scram" = 1 ]
}

write_config() {
  mkdir -p "$home/data" "$logdir"
  local listeners="PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$controller_port"
  local advertised="PLAINTEXT://127.0.0.1:$port"
  local protocols="CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT"
  if scram_on; then
    listeners="$listeners,SASL_PLAINTEXT://127.0.0.1:$scram_port"
    advertised="$advertised,SASL_PLAINTEXT://127.0.0.1:$scram_port"
    protocols="$protocols,SASL_PLAINTEXT:SASL_PLAINTEXT"
  fi
  cat > "$home/server.properties" <<PROPS
process.roles=broker,controller
node.id=1
controller.quorum.bootstrap.servers=127.0.0.1:$controller_port
listeners=$listeners
advertised.listeners=$advertised
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=$protocols
log.dirs=$home/data
num.partitions=1
auto.create.topics.enable=false
offsets.topic.replication.factor=1
offsets.topic.num.partitions=4
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
group.consumer.min.session.timeout.ms=3000
group.classic.min.session.timeout.ms=3000
log.retention.hours=24
PROPS
  if scram_on; then
    # Brokers check SCRAM credentials against the KRaft metadata; the JAAS entry
    # names only the login module (no secret lives in this file).
    cat >> "$home/server.properties" <<PROPS
sasl.enabled.mechanisms=SCRAM-SHA-256,SCRAM-SHA-512
listener.name.sasl_plaintext.scram-sha-256.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
listener.name.sasl_plaintext.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
PROPS
  fi
}

format_storage() {
  local cluster_id
  local scram_args=()
  cluster_id=$(java_cmd kafka.tools.StorageTool random-uuid 2>/dev/null | tail -n 1)
  if scram_on; then
    scram_args=(--add-scram "SCRAM-SHA-256=[name=$scram_user,password=$scram_password]"
                --add-scram "SCRAM-SHA-512=[name=$scram_user,password=$scram_password]")
  fi
  java_cmd kafka.tools.StorageTool format --standalone -t "$cluster_id" \
    -c "$home/server.properties" ${scram_args[@]+"${scram_args[@]}"} >> "$logdir/format.log" 2>&1
  if scram_on; then echo "$scram_user" > "$home/scram-user"; else rm -f "$home/scram-user"; fi
  say "formatted KRaft storage in $home/data (cluster $cluster_id)"
}

check_scram_user() {
  # SCRAM users are created only when the storage is formatted.
  if scram_on && [ "$(cat "$home/scram-user" 2>/dev/null)" != "$scram_user" ]; then
    say "WARNING: $home/data was formatted without SCRAM user '$scram_user'; stop, remove $home/data and start again to create it"
  fi
}

running() {
  [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null
}

answers() {
  "$python" "$here/probe.py" "127.0.0.1:$port" "${1:-2}"
}

start() {
  fetch
  if running; then
    if answers 10; then say "already running (pid $(cat "$pidfile")) on 127.0.0.1:$port"; return 0; fi
    say "pid $(cat "$pidfile") runs but does not answer; restarting"; stop
  fi
  write_config
  if [ ! -f "$home/data/meta.properties" ]; then
    format_storage
  else
    check_scram_user
  fi
  t0=$(date +%s%N)
  # exec: the PID written is the JVM's own, so `stop` signals the broker itself.
  (exec java "${java_opts[@]}" kafka.Kafka "$home/server.properties" \
    > "$logdir/stdout.log" 2>&1 < /dev/null) &
  echo $! > "$pidfile"
  if answers 90; then
    t1=$(date +%s%N)
    say "started (pid $(cat "$pidfile")) on 127.0.0.1:$port; answered metadata after $(( (t1 - t0) / 1000000 )) ms; log $logdir/server.log"
    if scram_on; then say "SASL_PLAINTEXT (SCRAM-SHA-256/512) on 127.0.0.1:$scram_port for user '$scram_user'"; fi
  else
    say "did not answer within 90 s; see $logdir/server.log and $logdir/stdout.log"
    tail -n 30 "$logdir/stdout.log" >&2 || true
    stop
    return 1
  fi
}

stop() {
  if ! running; then say "not running"; rm -f "$pidfile"; return 0; fi
  pid=$(cat "$pidfile")
  # A PID file written by an older version of this script names a shell whose child
  # is the JVM: signal the children too.
  children=$(pgrep -P "$pid" 2>/dev/null || true)
  kill "$pid" $children 2>/dev/null || true
  for _ in $(seq 1 60); do
    alive=""
    for p in "$pid" $children; do kill -0 "$p" 2>/dev/null && alive=1; done
    [ -n "$alive" ] || { rm -f "$pidfile"; say "stopped (pid $pid)"; return 0; }
    sleep 0.5
  done
  kill -9 "$pid" $children 2>/dev/null || true
  rm -f "$pidfile"
  say "killed (pid $pid) after 30 s"
}

status() {
  if running; then
    if answers 3; then say "running (pid $(cat "$pidfile")) on 127.0.0.1:$port, answering"; return 0; fi
    say "running (pid $(cat "$pidfile")) on 127.0.0.1:$port, NOT answering"; return 1
  fi
  say "not running"; return 3
}

case "${1:-}" in
  fetch) fetch ;;
  start) start ;;
  stop) stop ;;
  status) status ;;
  *) echo "usage: $0 fetch|start|stop|status" >&2; exit 2 ;;
esac
