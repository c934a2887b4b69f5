#!/usr/bin/env bash
# The output formatter at scale (issue 15): RSS per 200,000-line run held and
# the loop's time of get_execution_output on it, locally and through Redis,
# this build against a base build in the same run: BASE_BIN (e.g. the start
# commit's binary, built elsewhere) and SANDBOXD_BIN [./mcp-sandboxd].
# Without BASE_BIN only this build is measured. Prints figures only.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
BIN=${SANDBOXD_BIN:-$PWD/mcp-sandboxd}
source scripts/bench-lib.sh
bench_require node redis-server
bins=()
[ -n "${BASE_BIN:-}" ] && bins+=("$BASE_BIN")
bins+=("$BIN")
cd tests/integration && exec node ../../scripts/bench-output-scale.mjs "${bins[@]}"
