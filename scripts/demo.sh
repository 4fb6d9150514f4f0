#!/usr/bin/env bash
# The full demo on a fresh machine: install, start the real services, load the Openverse sample,
# refresh image and audio with a worker, then leave the dashboard up and print its URL.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund --loglevel=error
fi
bash scripts/services.sh up
freshet() { node scripts/freshet.mjs "$@"; }

freshet seed --sample
mkdir -p .freshet
freshet worker >.freshet/worker.log 2>&1 &
worker=$!
trap 'kill "$worker" 2>/dev/null || true' EXIT
for media in image audio; do
  freshet refresh "$media" --wait
done
curl -s "${ELASTICSEARCH_URL:-http://127.0.0.1:9200}/_cat/aliases?v"
for media in image audio; do
  printf '%s alias: ' "$media"
  curl -s "${ELASTICSEARCH_URL:-http://127.0.0.1:9200}/$media/_count"
  echo
done

export FRESHET_OPERATOR_TOKEN="${FRESHET_OPERATOR_TOKEN:-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')}"
export FRESHET_VIEWER_TOKEN="${FRESHET_VIEWER_TOKEN:-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')}"
port="${DASHBOARD_PORT:-3000}"
echo
echo "dashboard: http://127.0.0.1:$port/  (log in as operator / $FRESHET_OPERATOR_TOKEN, or viewer / $FRESHET_VIEWER_TOKEN)"
echo "worker log: .freshet/worker.log   stop with Ctrl-C"
freshet dashboard
