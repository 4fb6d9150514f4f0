#!/usr/bin/env bash
# The whole test suite, from a fresh clone: installs dependencies, starts the real services
# (Redis, PostgreSQL, Elasticsearch) and runs type-check, lint, unit and integration tests.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund --loglevel=error
fi
bash scripts/services.sh up
# The dashboard is tested in a real browser: Debian's chromium, driven by playwright-core.
if ! command -v chromium >/dev/null 2>&1; then
  echo "test: installing Debian's chromium for the browser test"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi
npm run --silent typecheck
npm run --silent lint
npm run --silent format:check
# test/cluster starts the 3-node cluster itself (services.sh cluster, once; its files reuse it).
bash scripts/run-tests.sh test/unit test/integration test/browser test/faults test/cluster
