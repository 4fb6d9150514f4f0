#!/usr/bin/env bash
# The whole test suite, from a fresh clone: installs dependencies, starts the real services
# (Redis, PostgreSQL, Elasticsearch; installing Redis and PostgreSQL from Debian's packages when
# run as root) and runs type-check, lint, unit and integration tests on Node >= 22 (scripts/node.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund --loglevel=error
fi
bash scripts/services.sh up
# The dashboard is tested in a real browser: Debian's chromium, driven by playwright-core.
say() { printf 'test: %s\n' "$*"; }
die() { printf 'test: FAILED: %s\n' "$*" >&2; exit 1; }
. scripts/debian.sh
debian_provide "Chromium (for the browser test)" chromium:chromium
npm run --silent typecheck
npm run --silent lint
npm run --silent format:check
# test/cluster starts the 3-node cluster itself (services.sh cluster, once; its files reuse it).
bash scripts/run-tests.sh test/unit test/integration test/browser test/faults test/cluster
