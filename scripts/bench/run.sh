#!/usr/bin/env bash
# npm run bench: makes sure Redis, PostgreSQL and Elasticsearch are up, then runs the benchmark.
# Progress goes to stderr, the report to stdout.
set -euo pipefail
cd "$(dirname "$0")/../.."
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund --loglevel=error >&2
fi
bash scripts/services.sh up >&2
exec bash scripts/node.sh --import tsx scripts/bench/main.ts "$@"
