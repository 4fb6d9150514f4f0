#!/usr/bin/env bash
# The full demo on a fresh machine: install, start the real services, load the Openverse sample
# (shipped in packages/core/sample), refresh image and audio with a worker, then leave the
# dashboard up and print its URL. It uses the settings of the environment: to keep clear of
# another deployment on the same services, set FRESHET_CATALOG_DB and FRESHET_API_DB (created by
# services.sh) with the matching CATALOG_DATABASE_URL and API_DATABASE_URL, FRESHET_QUEUE_PREFIX,
# ELASTICSEARCH_INDEX_PREFIX and DASHBOARD_PORT.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund --loglevel=error
fi
bash scripts/services.sh up
# On a supported node (scripts/node.sh: Node 24 from the npm registry when the machine's is older).
freshet() { bash scripts/node.sh scripts/freshet.mjs "$@"; }
# Small chunks, so the sample (1,899 image rows, 100 audio rows) fans out the way a real table does:
# the run view shows the chunks, the timeline and the counts per source of a real refresh.
export MIN_CHUNK_SIZE_ROWS="${MIN_CHUNK_SIZE_ROWS:-20}"
declare -A chunk_size=([image]="${DEMO_IMAGE_CHUNK_ROWS:-150}" [audio]="${DEMO_AUDIO_CHUNK_ROWS:-20}")

mkdir -p .freshet
: >.freshet/worker.log
# Not through the function: $! must be the worker itself (a backgrounded function is a subshell,
# and killing that would leave the worker running).
# scripts/node.sh execs node, so $! is the worker's own pid.
bash scripts/node.sh scripts/freshet.mjs worker >.freshet/worker.log 2>&1 &
worker=$!
trap 'kill "$worker" 2>/dev/null || true' EXIT
freshet seed --sample
# The refreshes would wait for the worker anyway; waiting for it here keeps their output clear.
for _ in $(seq 1 600); do
  grep -q '"msg":"worker started"' .freshet/worker.log && break
  if ! kill -0 "$worker" 2>/dev/null; then
    cat .freshet/worker.log >&2
    echo "demo: the worker exited (its log is above)" >&2
    exit 1
  fi
  sleep 0.1
done
declare -A run_id
for media in image audio; do
  freshet refresh "$media" --chunk-size "${chunk_size[$media]}" --wait | tee ".freshet/refresh-$media.out"
  run_id[$media]=$(sed -n 's/^run \([^ ]*\) started.*/\1/p' ".freshet/refresh-$media.out")
done
es="${ELASTICSEARCH_URL:-http://127.0.0.1:9200}"
es="${es%%,*}" # the first node of a list
prefix="${ELASTICSEARCH_INDEX_PREFIX:-}"
curl -s "$es/_cat/aliases/${prefix}image*,${prefix}audio*?v"
for media in image audio; do
  printf '%s alias: ' "$prefix$media"
  curl -s "$es/$prefix$media/_count"
  echo
done

export FRESHET_OPERATOR_TOKEN="${FRESHET_OPERATOR_TOKEN:-$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')}"
export FRESHET_VIEWER_TOKEN="${FRESHET_VIEWER_TOKEN:-$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')}"
port="${DASHBOARD_PORT:-3000}"
echo
url="http://127.0.0.1:$port"
echo "dashboard: $url/  (log in as operator / $FRESHET_OPERATOR_TOKEN, or viewer / $FRESHET_VIEWER_TOKEN)"
echo "where to look:"
for media in image audio; do
  echo "  $media run (${chunk_size[$media]} rows a chunk; its chunks, timeline and counts per source): $url/runs/${run_id[$media]}"
done
echo "  the queues and every job (Bull Board): $url/queues     the REST API: $url/api/runs     metrics: $url/metrics"
echo "worker log: .freshet/worker.log   stop with Ctrl-C"
freshet dashboard
