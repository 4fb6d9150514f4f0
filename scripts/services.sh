#!/usr/bin/env bash
# Makes sure the real services Freshet needs are up, idempotently:
#   Redis (127.0.0.1:6379), PostgreSQL with the catalog and API databases, and a real single-node
#   Elasticsearch from Maven Central's integ-test-zip distribution, cached between runs.
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

es_health() { curl -s -m 5 "http://127.0.0.1:$ES_PORT/_cluster/health" 2>/dev/null; }

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

ensure_es() {
  if es_health | grep -q '"status"'; then
    say "elasticsearch already answering on http://127.0.0.1:$ES_PORT"
    return 0
  fi
  need curl "install Debian's curl"
  fetch_es
  local java
  java=$(pick_java) || die "no JDK found under /usr/lib/jvm (Elasticsearch $ES_VERSION needs Java 17+)"
  if ! id "$ES_USER" >/dev/null 2>&1; then
    # Elasticsearch refuses to run as root: it gets a system user of its own.
    useradd --system --no-create-home --shell /usr/sbin/nologin "$ES_USER" \
      || die "could not create the system user $ES_USER for Elasticsearch (run as root, or set FRESHET_ES_USER)"
  fi
  mkdir -p "$ES_DATA/data" "$ES_DATA/logs"
  if [ "$ES_CONF" != "$ES_HOME/config" ] && [ ! -f "$ES_CONF/jvm.options" ]; then
    mkdir -p "$ES_CONF" && cp -r "$ES_HOME/config/." "$ES_CONF/"
  fi
  cat >"$ES_CONF/elasticsearch.yml" <<YML
cluster.name: freshet
node.name: freshet-node
path.data: $ES_DATA/data
path.logs: $ES_DATA/logs
discovery.type: single-node
network.host: 127.0.0.1
http.port: $ES_PORT
transport.port: $((ES_PORT + 100))
xpack.security.enabled: false
xpack.ml.enabled: false
action.destructive_requires_name: false
cluster.routing.allocation.disk.watermark.low: 1b
cluster.routing.allocation.disk.watermark.high: 1b
cluster.routing.allocation.disk.watermark.flood_stage: 1b
cluster.routing.allocation.disk.threshold_enabled: false
$ES_EXTRA_SETTINGS
YML
  chown -R "$ES_USER" "$ES_HOME" "$ES_DATA" "$ES_CONF"
  # The home dir chain must be traversable by the ES user.
  chmod o+x "$HOME" "$HOME/.cache" "$CACHE_DIR" 2>/dev/null || true
  runuser -u "$ES_USER" -- env ES_JAVA_HOME="$java" ES_PATH_CONF="$ES_CONF" ES_JAVA_OPTS="-Xms$ES_HEAP -Xmx$ES_HEAP" \
    "$ES_HOME/bin/elasticsearch" -d -p "$ES_DATA/es.pid" >"$ES_DATA/logs/start.out" 2>&1 \
    || die "Elasticsearch failed to start (see $ES_DATA/logs/start.out and $ES_DATA/logs/freshet.log)"
  say "starting elasticsearch $ES_VERSION (heap $ES_HEAP, java $java, user $ES_USER)"
  local deadline=$((SECONDS + 180))
  until curl -s -m 5 "http://127.0.0.1:$ES_PORT/_cluster/health?wait_for_status=yellow&timeout=5s" 2>/dev/null \
      | grep -qE '"status":"(yellow|green)"'; do
    if [ $SECONDS -ge $deadline ]; then
      tail -n 20 "$ES_DATA/logs/freshet.log" >&2 2>/dev/null || true
      die "Elasticsearch did not report yellow health within 180 s on 127.0.0.1:$ES_PORT"
    fi
    if [ -f "$ES_DATA/es.pid" ] && ! kill -0 "$(cat "$ES_DATA/es.pid")" 2>/dev/null; then
      tail -n 20 "$ES_DATA/logs/freshet.log" >&2 2>/dev/null || true
      die "Elasticsearch exited during start (log: $ES_DATA/logs/freshet.log)"
    fi
    sleep 1
  done
  say "started elasticsearch $ES_VERSION on http://127.0.0.1:$ES_PORT (data $ES_DATA, pid $(cat "$ES_DATA/es.pid"))"
}

stop_es() {
  if [ -f "$ES_DATA/es.pid" ] && kill -0 "$(cat "$ES_DATA/es.pid")" 2>/dev/null; then
    kill "$(cat "$ES_DATA/es.pid")" && say "stopped elasticsearch (pid $(cat "$ES_DATA/es.pid"))"
  else
    say "elasticsearch was not running from $ES_DATA"
  fi
}

case "${1:-up}" in
  up) ensure_redis; ensure_postgres; ensure_es ;;
  redis) ensure_redis ;;
  postgres) ensure_postgres ;;
  elasticsearch) ensure_es ;;
  stop-elasticsearch) stop_es ;;
  *) die "unknown action '$1' (expected up, redis, postgres, elasticsearch or stop-elasticsearch)" ;;
esac
