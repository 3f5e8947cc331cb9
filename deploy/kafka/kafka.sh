#!/usr/bin/env bash
# Local single-node Apache Kafka (KRaft, broker+controller) for loglabel's demo and tests.
#
#   deploy/kafka/kafka.sh fetch     resolve the broker jars from Maven Central into the cache
#   deploy/kafka/kafka.sh start     fetch, format storage (once), start, wait until our own
#                                   process answers a metadata request
#   deploy/kafka/kafka.sh stop      stop the broker by its PID
#   deploy/kafka/kafka.sh status    say whether our process runs and answers
#
# "Answers" means: the JVM whose PID this script wrote is alive and the port answers with
# the cluster id of this broker's storage. A port taken by anything else (another broker,
# another program) makes `start` fail with a message that says so, instead of reporting
# someone else's broker as started.
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
# The user is created (or its password updated) at every start through the Admin API by
# scram_user.py, which reads the password from the environment: it never appears on a
# command line (visible in `ps`) or in a file. The plain listener keeps working.
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
  cluster_id=$(java_cmd kafka.tools.StorageTool random-uuid 2>/dev/null | tail -n 1) || cluster_id=""
  if [ -z "$cluster_id" ] || ! java_cmd kafka.tools.StorageTool format --standalone \
      -t "$cluster_id" -c "$home/server.properties" >> "$logdir/format.log" 2>&1; then
    say "formatting KRaft storage in $home/data failed; see $logdir/format.log"
    tail -n 20 "$logdir/format.log" >&2 2>/dev/null || true
    return 1
  fi
  say "formatted KRaft storage in $home/data (cluster $cluster_id)"
}

create_scram_user() {
  # The password goes through the environment only (never argv: `ps` shows argv).
  LOGLABEL_KAFKA_SCRAM_PASSWORD=$scram_password \
    "$python" "$here/scram_user.py" "127.0.0.1:$port" "$scram_user"
}

running() {
  [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null
}

cluster_id() {
  sed -n 's/^cluster\.id=//p' "$home/data/meta.properties" 2>/dev/null
}

# answers [TIMEOUT]: our process is alive and the port answers with our cluster id.
# Status as probe.py: 0 yes, 1 no answer, 2 another cluster answers, 3 our process died.
answers() {
  local pid=""
  [ -f "$pidfile" ] && pid=$(cat "$pidfile")
  "$python" "$here/probe.py" "127.0.0.1:$port" "${1:-2}" "$pid" "$(cluster_id)"
}

# port_taken PORT: something accepts connections on 127.0.0.1:PORT.
port_taken() {
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

start() {
  if running; then
    if answers 10; then
      say "already running (pid $(cat "$pidfile")) on 127.0.0.1:$port"
      if scram_on; then create_scram_user; fi
      return 0
    fi
    say "pid $(cat "$pidfile") runs but does not answer; restarting"; stop
  fi
  local taken
  for taken in "$port" "$controller_port" $(scram_on && echo "$scram_port"); do
    if port_taken "$taken"; then
      say "port $taken on 127.0.0.1 is taken by another process (not the broker of $home): stop it, or choose another port with LOGLABEL_KAFKA_PORT (the controller uses port+1, SCRAM port+2)"
      return 1
    fi
  done
  fetch
  write_config
  if [ ! -f "$home/data/meta.properties" ]; then
    format_storage
  fi
  t0=$(date +%s%N)
  # exec: the PID written is the JVM's own, so `stop` signals the broker itself.
  (exec java "${java_opts[@]}" kafka.Kafka "$home/server.properties" \
    > "$logdir/stdout.log" 2>&1 < /dev/null) &
  echo $! > "$pidfile"
  local verdict=0
  answers 90 || verdict=$?
  if [ "$verdict" = 0 ]; then
    t1=$(date +%s%N)
    say "started (pid $(cat "$pidfile")) on 127.0.0.1:$port; answered metadata after $(( (t1 - t0) / 1000000 )) ms; log $logdir/server.log"
    if scram_on; then
      if ! create_scram_user; then
        say "could not create SCRAM user '$scram_user'; see $logdir/server.log"; stop; return 1
      fi
      say "SASL_PLAINTEXT (SCRAM-SHA-256/512) on 127.0.0.1:$scram_port for user '$scram_user'"
    fi
    return 0
  fi
  case $verdict in
    3) say "the broker (pid $(cat "$pidfile")) exited during start-up; see $logdir/server.log and $logdir/stdout.log" ;;
    2) say "127.0.0.1:$port is answered by another Kafka cluster, not the broker of $home: choose another LOGLABEL_KAFKA_PORT" ;;
    *) say "did not answer within 90 s; see $logdir/server.log and $logdir/stdout.log" ;;
  esac
  tail -n 30 "$logdir/stdout.log" >&2 || true
  stop
  return 1
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
    local verdict=0
    answers 3 || verdict=$?
    case $verdict in
      0) say "running (pid $(cat "$pidfile")) on 127.0.0.1:$port, answering"; return 0 ;;
      2) say "running (pid $(cat "$pidfile")), but 127.0.0.1:$port is answered by another cluster"; return 1 ;;
      *) say "running (pid $(cat "$pidfile")) on 127.0.0.1:$port, NOT answering"; return 1 ;;
    esac
  fi
  if port_taken "$port"; then
    say "not running (127.0.0.1:$port is taken by another process, not the broker of $home)"
  else
    say "not running"
  fi
  return 3
}

case "${1:-}" in
  fetch) fetch ;;
  start) start ;;
  stop) stop ;;
  status) status ;;
  *) echo "usage: $0 fetch|start|stop|status" >&2; exit 2 ;;
esac
