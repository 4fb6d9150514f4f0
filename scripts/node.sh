#!/usr/bin/env bash
# Runs node with a supported runtime: the machine's node when it is 22 or newer, otherwise Node 24
# obtained once through the npm registry (npm's `node` package, cached by npx). The chosen node's
# directory goes first on PATH, so anything it starts by name runs on the same node.
#   bash scripts/node.sh [node arguments...]
#   FRESHET_NODE=/path/to/node overrides the choice.
set -euo pipefail
MIN_MAJOR=22
major() { "$1" -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0; }

node_bin="${FRESHET_NODE:-}"
if [ -z "$node_bin" ] && command -v node >/dev/null 2>&1 && [ "$(major node)" -ge "$MIN_MAJOR" ]; then
  node_bin=$(command -v node)
fi
if [ -z "$node_bin" ]; then
  have=$(node --version 2>/dev/null || echo none)
  node_bin=$(npx -y -p node@24 node -p process.execPath 2>/dev/null) || {
    printf 'node.sh: Freshet needs Node >= %s (this machine has %s) and could not fetch node@24 from the npm registry; install Node 24, or set FRESHET_NODE to a Node 24 binary\n' \
      "$MIN_MAJOR" "$have" >&2
    exit 1
  }
fi
export PATH="$(dirname "$node_bin"):$PATH"
exec "$node_bin" "$@"
