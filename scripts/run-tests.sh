#!/usr/bin/env bash
# Runs the node:test files of one or more test folders (explicit files: no reliance on --test globs),
# on the node scripts/node.sh picks (Node 24 from the npm registry when the machine's is older than 22).
# Fails if no test ran, so an empty glob can never pass.
set -euo pipefail
cd "$(dirname "$0")/.."
files=()
for dir in "$@"; do
  if [ -f "$dir" ]; then files+=("$dir"); continue; fi
  for f in "$dir"/*.test.ts; do [ -e "$f" ] && files+=("$f"); done
done
[ ${#files[@]} -gt 0 ] || { echo "run-tests: no test files under $*" >&2; exit 1; }
echo "run-tests: $(bash scripts/node.sh -p '`node ${process.version} (${process.execPath})`')"
out=$(mktemp)
set +e
bash scripts/node.sh --import tsx --test --test-concurrency=1 --test-timeout="${TEST_TIMEOUT_MS:-600000}" \
  --test-reporter=spec --test-reporter-destination=stdout \
  --test-reporter=tap --test-reporter-destination="$out" "${files[@]}"
status=$?
set -e
passed=$(grep -E '^# pass ' "$out" | awk '{print $3}' | tail -n 1)
rm -f "$out"
if [ "$status" -eq 0 ] && [ "${passed:-0}" -eq 0 ]; then
  echo "run-tests: 0 tests passed under $* — refusing to call that green" >&2
  exit 1
fi
exit "$status"
