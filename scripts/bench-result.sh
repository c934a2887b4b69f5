#!/usr/bin/env bash
# Tool-result size per byte of output (issue 15), this build against a base
# build in the same run: BASE_BIN (e.g. the 0.4.0 / start commit's binary,
# built elsewhere) and SANDBOXD_BIN [./mcp-sandboxd]. Without BASE_BIN only
# this build is measured. Prints figures only; no thresholds.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${SANDBOXD_BIN:-$PWD/mcp-sandboxd}
[ -x "$BIN" ] || make mcp-sandboxd
bins=()
[ -n "${BASE_BIN:-}" ] && bins+=("$BASE_BIN")
bins+=("$BIN")
cd tests/integration && exec node ../../scripts/bench-result.mjs "${bins[@]}"
