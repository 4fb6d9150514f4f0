#!/usr/bin/env bash
# Makes sure the real services Freshet needs are up, idempotently:
#   Redis (127.0.0.1:6379), PostgreSQL with the catalog and API databases, and a real single-node
#   Elasticsearch from Maven Central's integ-test-zip distribution, cached between runs.
# `cluster` starts a 3-node Elasticsearch cluster from the same distribution beside it (9201-9203);
# `stop-cluster`, `start-cluster-node N`, `stop-cluster-node N` and `cluster-node-pid N` run it.
# Prints what it started and where; fails with one clear line naming the missing piece.
set -euo pipefail

ES_VERSION="${FRESHET_ES_VERSION:-8.19.2}"
ES_PORT="${FRESHET_ES_PORT:-9200}"
ES_HEAP="${FRESHET_ES_HEAP:-1g}"
CACHE_DIR="${FRESHET_CACHE_DIR:-$HOME/.cache/freshet}"
ES_HOME="$CACHE_DIR/elasticsearch-$ES_VERSION"
# A second node (fault tests) gets its own data and config dirs, and may add settings (YAML lines).
ES_DATA="${FRESHET_ES_DATA:-$CACHE_DIR/es-data-$ES_VERSION}"
ES_CONF="${FRESHET_ES_CONF:-$ES_HOME/config}"
ES_EXTRA_SETTINGS="${FRESHET_ES_SETTINGS:-}"
ES_USER="${FRESHET_ES_USER:-freshet-es}"
REDIS_PORT="${FRESHET_REDIS_PORT:-6379}"
PG_HOST="${FRESHET_PG_HOST:-127.0.0.1}"
PG_PORT="${FRESHET_PG_PORT:-5432}"
PG_USER="${FRESHET_PG_USER:-postgres}"
CATALOG_DB="${FRESHET_CATALOG_DB:-freshet_catalog}"
API_DB="${FRESHET_API_DB:-freshet_api}"

say() { printf 'services: %s\n' "$*"; }
die() { printf 'services: FAILED: %s\n' "$*" >&2; exit 1; }
need() { command -v "$1" >/dev/null 2>&1 || die "$1 is not installed ($2)"; }
FRESHET_APT_LOG="${FRESHET_APT_LOG:-$CACHE_DIR/apt.log}"
# What Redis and PostgreSQL need from Debian (binary:package), named together when one is missing.
DEBIAN_ALSO="redis-cli:redis-tools redis-server:redis-server psql:postgresql-client pg_ctlcluster:postgresql"
# shellcheck source=scripts/debian.sh
. "$(dirname "${BASH_SOURCE[0]}")/debian.sh"

ensure_redis() {
  debian_provide "Redis" redis-cli:redis-tools redis-server:redis-server
  if redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping 2>/dev/null | grep -q PONG; then
    say "redis already answering on 127.0.0.1:$REDIS_PORT"
  else
    debian_provide "Redis" redis-server:redis-server
    mkdir -p "$CACHE_DIR/redis"
    redis-server --daemonize yes --bind 127.0.0.1 --port "$REDIS_PORT" --dir "$CACHE_DIR/redis" \
      --appendonly yes --maxmemory-policy noeviction --logfile "$CACHE_DIR/redis/redis.log" >/dev/null
    for _ in $(seq 1 50); do
      redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping 2>/dev/null | grep -q PONG && break
      sleep 0.1
    done
    redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping 2>/dev/null | grep -q PONG \
      || die "redis-server did not answer on 127.0.0.1:$REDIS_PORT (log: $CACHE_DIR/redis/redis.log)"
    say "started redis on 127.0.0.1:$REDIS_PORT (AOF on, data in $CACHE_DIR/redis)"
  fi
  # BullMQ needs noeviction: an evicted job key is a lost chunk.
  local policy
  policy=$(redis-cli -h 127.0.0.1 -p "$REDIS_PORT" config get maxmemory-policy | tail -n 1)
  if [ "$policy" != "noeviction" ]; then
    redis-cli -h 127.0.0.1 -p "$REDIS_PORT" config set maxmemory-policy noeviction >/dev/null
    say "redis maxmemory-policy was $policy, set to noeviction"
  fi
}

pg() { psql -X -q -v ON_ERROR_STOP=1 -h "$PG_HOST" -p "$PG_PORT" -U "$PG_USER" "$@"; }

ensure_postgres() {
  local server=()
  # A local server is this script's to start: the client and the server come together.
  case "$PG_HOST" in 127.0.0.1 | localhost | ::1) server=(pg_ctlcluster:postgresql) ;; esac
  debian_provide "PostgreSQL" psql:postgresql-client pg_isready:postgresql-client "${server[@]}"
  if ! pg_isready -q -h "$PG_HOST" -p "$PG_PORT" 2>/dev/null; then
    if ! command -v pg_ctlcluster >/dev/null 2>&1; then
      debian_provide "PostgreSQL" pg_ctlcluster:postgresql
      # Installed just now, with a new cluster that asks for a password over TCP: the default URLs
      # (user postgres, no password, 127.0.0.1) need trust there, on this new cluster only.
      local hba
      for hba in /etc/postgresql/*/main/pg_hba.conf; do
        if [ -f "$hba" ]; then
          sed -i '1i host all postgres 127.0.0.1/32 trust\nhost all postgres ::1/128 trust' "$hba"
        fi
      done
    fi
    if command -v pg_ctlcluster >/dev/null 2>&1 && [ -d /etc/postgresql ]; then
      pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | sort -V | tail -n 1)" main start \
        || die "could not start PostgreSQL with pg_ctlcluster"
      for _ in $(seq 1 50); do pg_isready -q -h "$PG_HOST" -p "$PG_PORT" && break; sleep 0.2; done
      say "started postgresql on $PG_HOST:$PG_PORT"
    else
      die "PostgreSQL is not answering on $PG_HOST:$PG_PORT and no local cluster was found to start"
    fi
  else
    say "postgresql already answering on $PG_HOST:$PG_PORT"
  fi
  for db in "$CATALOG_DB" "$API_DB"; do
    if [ "$(pg -d postgres -tAc "SELECT 1 FROM pg_database WHERE datname = '$db'")" != "1" ]; then
      pg -d postgres -c "CREATE DATABASE \"$db\"" >/dev/null
      say "created database $db"
    fi
  done
  # The copy benchmark compares against Openverse's postgres_fdw copy; the extension ships with PostgreSQL.
  pg -d "$API_DB" -c 'CREATE EXTENSION IF NOT EXISTS postgres_fdw' >/dev/null 2>&1 \
    || say "postgres_fdw is not available (only the benchmark's fdw comparison needs it)"
  say "databases ready: postgres://$PG_USER@$PG_HOST:$PG_PORT/$CATALOG_DB and /$API_DB"
}

es_health() { curl -s -m 5 "http://127.0.0.1:${1:-$ES_PORT}/_cluster/health" 2>/dev/null; }

pick_java() {
  local j
  for j in /usr/lib/jvm/java-17-openjdk-amd64 /usr/lib/jvm/temurin-25-jdk-amd64 /usr/lib/jvm/*; do
    if [ -x "$j/bin/java" ]; then echo "$j"; return 0; fi
  done
  return 1
}

fetch_es() {
  [ -x "$ES_HOME/bin/elasticsearch" ] && return 0
  need mvn "install Debian's maven: Elasticsearch $ES_VERSION is fetched from Maven Central"
  need unzip "install Debian's unzip"
  mkdir -p "$CACHE_DIR/download"
  local zip="$CACHE_DIR/download/elasticsearch-$ES_VERSION.zip"
  if [ ! -s "$zip" ]; then
    say "fetching org.elasticsearch.distribution.integ-test-zip:elasticsearch:$ES_VERSION from Maven Central"
    mvn -B -q org.apache.maven.plugins:maven-dependency-plugin:3.8.1:copy \
      -Dartifact="org.elasticsearch.distribution.integ-test-zip:elasticsearch:$ES_VERSION:zip" \
      -DoutputDirectory="$CACHE_DIR/download" >"$CACHE_DIR/download/mvn.log" 2>&1 \
      || die "Maven could not fetch Elasticsearch $ES_VERSION (see $CACHE_DIR/download/mvn.log)"
  fi
  local tmp="$CACHE_DIR/unpack.$$"
  rm -rf "$tmp" && mkdir -p "$tmp"
  unzip -q "$zip" -d "$tmp" || die "could not unzip $zip"
  rm -rf "$ES_HOME"
  mv "$tmp/elasticsearch-$ES_VERSION" "$ES_HOME"
  rm -rf "$tmp"
  say "unpacked Elasticsearch $ES_VERSION into $ES_HOME"
}

# The one way an Elasticsearch node is started, for the single node and for each cluster node:
#   start_es_node NAME PORT DATA CONF HEAP SETTINGS
# writes CONF/elasticsearch.yml (the settings every Freshet node has, then SETTINGS: the cluster
# name and discovery, extra lines), and launches the node as the Elasticsearch user in the
# background (-d). It does not wait for health: a cluster node cannot be healthy alone.
start_es_node() {
  local name="$1" port="$2" data="$3" conf="$4" heap="$5" settings="$6"
  need curl "install Debian's curl"
  fetch_es
  local java
  java=$(pick_java) || die "no JDK found under /usr/lib/jvm (Elasticsearch $ES_VERSION needs Java 17+)"
  if ! id "$ES_USER" >/dev/null 2>&1; then
    # Elasticsearch refuses to run as root: it gets a system user of its own.
    useradd --system --no-create-home --shell /usr/sbin/nologin "$ES_USER" 2>/dev/null \
      || id "$ES_USER" >/dev/null 2>&1 \
      || die "could not create the system user $ES_USER for Elasticsearch (run as root, or set FRESHET_ES_USER)"
  fi
  mkdir -p "$data/data" "$data/logs"
  if [ "$conf" != "$ES_HOME/config" ] && [ ! -f "$conf/jvm.options" ]; then
    mkdir -p "$conf" && cp -r "$ES_HOME/config/." "$conf/"
  fi
  cat >"$conf/elasticsearch.yml" <<YML
node.name: $name
path.data: $data/data
path.logs: $data/logs
network.host: 127.0.0.1
http.port: $port
transport.port: $((port + 100))
xpack.security.enabled: false
xpack.ml.enabled: false
action.destructive_requires_name: false
cluster.routing.allocation.disk.watermark.low: 1b
cluster.routing.allocation.disk.watermark.high: 1b
cluster.routing.allocation.disk.watermark.flood_stage: 1b
cluster.routing.allocation.disk.threshold_enabled: false
$settings
YML
  chown -R "$ES_USER" "$ES_HOME" "$data" "$conf"
  # The home dir chain must be traversable by the ES user.
  chmod o+x "$HOME" "$HOME/.cache" "$CACHE_DIR" "$(dirname "$data")" 2>/dev/null || true
  rm -f "$data/es.pid"
  runuser -u "$ES_USER" -- env ES_JAVA_HOME="$java" ES_PATH_CONF="$conf" ES_JAVA_OPTS="-Xms$heap -Xmx$heap" \
    "$ES_HOME/bin/elasticsearch" -d -p "$data/es.pid" >"$data/logs/start.out" 2>&1 \
    || die "Elasticsearch $name failed to start (see $data/logs/start.out and $data/logs/*.log)"
  say "starting elasticsearch $ES_VERSION node $name on port $port (heap $heap, java $java, user $ES_USER)"
}

# wait_es_health PORT yellow|green DATA [QUERY]: until the node on PORT reports that status or
# better (QUERY: more health parameters, e.g. &wait_for_nodes=3), or fails with its log.
wait_es_health() {
  local port="$1" want="$2" data="$3" query="${4:-}" ok='yellow|green'
  [ "$want" = green ] && ok=green
  local deadline=$((SECONDS + ${FRESHET_ES_START_TIMEOUT_S:-240}))
  until curl -s -m 10 "http://127.0.0.1:$port/_cluster/health?wait_for_status=$want&timeout=5s$query" 2>/dev/null \
      | grep -qE "\"status\":\"($ok)\"" ; do
    if [ $SECONDS -ge $deadline ]; then
      tail -n 20 "$data"/logs/*.log >&2 2>/dev/null || true
      # Often a leftover index whose copies cannot all be placed (a test that died mid-way).
      local unhealthy
      unhealthy=$(curl -s -m 10 "http://127.0.0.1:$port/_cat/indices?health=yellow,red&h=health,index,rep" 2>/dev/null \
        | tr '\n' ';' || true)
      die "Elasticsearch on 127.0.0.1:$port did not report $want health in time (log: $data/logs)${unhealthy:+; indices not green: $unhealthy delete leftovers with curl -XDELETE http://127.0.0.1:$port/<index>}"
    fi
    if [ -f "$data/es.pid" ] && ! kill -0 "$(cat "$data/es.pid")" 2>/dev/null; then
      tail -n 20 "$data"/logs/*.log >&2 2>/dev/null || true
      die "Elasticsearch on 127.0.0.1:$port exited during start (log: $data/logs)"
    fi
    sleep 1
  done
}

ensure_es() {
  if es_health "$ES_PORT" | grep -q '"status"'; then
    say "elasticsearch already answering on http://127.0.0.1:$ES_PORT"
    return 0
  fi
  start_es_node freshet-node "$ES_PORT" "$ES_DATA" "$ES_CONF" "$ES_HEAP" \
    "$(printf 'cluster.name: freshet\ndiscovery.type: single-node\n%s' "$ES_EXTRA_SETTINGS")"
  wait_es_health "$ES_PORT" yellow "$ES_DATA"
  say "started elasticsearch $ES_VERSION on http://127.0.0.1:$ES_PORT (data $ES_DATA, pid $(cat "$ES_DATA/es.pid"))"
}

stop_pidfile() {
  local what="$1" pidfile="$2"
  if [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then
    local pid
    pid=$(cat "$pidfile")
    kill "$pid"
    for _ in $(seq 1 120); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
    kill -0 "$pid" 2>/dev/null && die "$what (pid $pid) did not stop within 60 s"
    say "stopped $what (pid $pid)"
  else
    say "$what was not running"
  fi
}

stop_es() { stop_pidfile "elasticsearch from $ES_DATA" "$ES_DATA/es.pid"; }

# ---------------------------------------------------------------------------------------------
# The 3-node cluster (tests of replicas, node loss and green before promotion), next to the
# single node: nodes 1..3 on FRESHET_CLUSTER_PORT+1.. (default 9201-9203, transport +100).
# ---------------------------------------------------------------------------------------------
CLUSTER_NODES=3
CLUSTER_BASE_PORT="${FRESHET_CLUSTER_PORT:-9200}"
# 512m each, as the fault tests' extra node: room for several ~5 MB bulk bodies in flight under
# the parent circuit breaker (95% of heap), where 384m is tight; 3 x 512m beside the single
# node's 1g is ~2.5 GB of heap on a 24 GiB machine.
CLUSTER_HEAP="${FRESHET_CLUSTER_HEAP:-512m}"
CLUSTER_DIR="${FRESHET_CLUSTER_DIR:-$CACHE_DIR/es-cluster-$ES_VERSION}"

node_port() { echo $((CLUSTER_BASE_PORT + $1)); }
node_dir() { echo "$CLUSTER_DIR/node-$1"; }

check_node_number() {
  [[ "${1:-}" =~ ^[1-9][0-9]*$ ]] && [ "$1" -le "$CLUSTER_NODES" ] \
    || die "expected a cluster node number 1-$CLUSTER_NODES, got '${1:-}' (e.g. services.sh stop-cluster-node 2)"
}

cluster_settings() {
  local seeds="" masters="" i
  for i in $(seq 1 $CLUSTER_NODES); do
    seeds+="${seeds:+, }\"127.0.0.1:$(($(node_port "$i") + 100))\""
    masters+="${masters:+, }\"freshet-cluster-$i\""
  done
  printf 'cluster.name: freshet-cluster\ndiscovery.seed_hosts: [%s]\ncluster.initial_master_nodes: [%s]\n' \
    "$seeds" "$masters"
}

# Starts cluster node N unless it answers (it joins the others; no wait).
start_cluster_node() {
  local n="$1" port dir
  port=$(node_port "$n")
  dir=$(node_dir "$n")
  if curl -s -m 5 "http://127.0.0.1:$port/_nodes/_local" 2>/dev/null | grep -q '"nodes"'; then
    return 0
  fi
  start_es_node "freshet-cluster-$n" "$port" "$dir" "$dir/config" "$CLUSTER_HEAP" "$(cluster_settings)"
}

cluster_urls() {
  local urls="" i
  for i in $(seq 1 $CLUSTER_NODES); do urls+="${urls:+,}http://127.0.0.1:$(node_port "$i")"; done
  echo "$urls"
}

wait_cluster_green() {
  local i
  for i in $(seq 1 $CLUSTER_NODES); do
    wait_es_health "$(node_port "$i")" green "$(node_dir "$i")" "&wait_for_nodes=$CLUSTER_NODES"
  done
}

ensure_cluster() {
  local i
  if curl -s -m 10 "http://127.0.0.1:$(node_port 1)/_cluster/health?wait_for_status=green&wait_for_nodes=$CLUSTER_NODES&timeout=1s" \
      2>/dev/null | grep -q '"status":"green"'; then
    say "elasticsearch cluster freshet-cluster already green: ELASTICSEARCH_URL=$(cluster_urls)"
    return 0
  fi
  # All at once: a node alone cannot elect a master, and each waits for the others to join.
  local pids=()
  for i in $(seq 1 $CLUSTER_NODES); do start_cluster_node "$i" & pids+=($!); done
  for p in "${pids[@]}"; do wait "$p" || die "a cluster node failed to start (logs under $CLUSTER_DIR)"; done
  wait_cluster_green
  say "elasticsearch cluster freshet-cluster green: ELASTICSEARCH_URL=$(cluster_urls) (data $CLUSTER_DIR, heap $CLUSTER_HEAP each)"
}

start_one_node() {
  check_node_number "${1:-}"
  start_cluster_node "$1"
  wait_cluster_green
  say "cluster node $1 is up on http://127.0.0.1:$(node_port "$1"); cluster green"
}

stop_one_node() {
  check_node_number "${1:-}"
  stop_pidfile "cluster node $1" "$(node_dir "$1")/es.pid"
}

node_pid() {
  check_node_number "${1:-}"
  local pidfile
  pidfile="$(node_dir "$1")/es.pid"
  if [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then cat "$pidfile"; else echo none; fi
}

stop_cluster() {
  local i
  for i in $(seq 1 $CLUSTER_NODES); do stop_one_node "$i"; done
}

case "${1:-up}" in
  up) ensure_redis; ensure_postgres; ensure_es ;;
  redis) ensure_redis ;;
  postgres) ensure_postgres ;;
  elasticsearch) ensure_es ;;
  stop-elasticsearch) stop_es ;;
  cluster) ensure_cluster ;;
  stop-cluster) stop_cluster ;;
  start-cluster-node) start_one_node "${2:-}" ;;
  stop-cluster-node) stop_one_node "${2:-}" ;;
  cluster-node-pid) node_pid "${2:-}" ;;
  *) die "unknown action '$1' (expected up, redis, postgres, elasticsearch, stop-elasticsearch, cluster, stop-cluster, start-cluster-node N, stop-cluster-node N or cluster-node-pid N)" ;;
esac
