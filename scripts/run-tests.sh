#!/usr/bin/env bash
# Runs the node:test files of one or more test folders (Node 20's --test takes no globs).
# Fails if no test ran, so an empty glob can never pass.
set -euo pipefail
cd "$(dirname "$0")/.."
files=()
for dir in "$@"; do
  if [ -f "$dir" ]; then files+=("$dir"); continue; fi
  for f in "$dir"/*.test.ts; do [ -e "$f" ] && files+=("$f"); done
done
[ ${#files[@]} -gt 0 ] || { echo "run-tests: no test files under $*" >&2; exit 1; }
out=$(mktemp)
set +e
node --import tsx --test --test-concurrency=1 --test-timeout="${TEST_TIMEOUT_MS:-600000}" \
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
