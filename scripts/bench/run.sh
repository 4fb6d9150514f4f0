#!/usr/bin/env bash
# npm run bench: makes sure Redis, PostgreSQL and Elasticsearch are up, then runs the benchmark.
# Progress goes to stderr, the report to stdout.
set -euo pipefail
cd "$(dirname "$0")/../.."
bash scripts/services.sh up >&2
exec node --expose-gc --import tsx scripts/bench/main.ts "$@"
