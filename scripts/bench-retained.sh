#!/usr/bin/env bash
# Server memory per retained byte: RUNS runs that each print more than the
# --max-output-bytes cap (16 MiB by default) finish one after another in one
# session; then the server's RSS is compared with the retained output bytes it
# reports (/metrics mcp_sandboxd_retained_output_bytes). Target (issue 11):
# RSS - base RSS <= 1.1 x retained bytes. Prints figures only; no thresholds.
#
# Knobs (environment): SANDBOXD_BIN [./mcp-sandboxd], BENCH_RUNS [10],
# BENCH_LINE [4000] bytes per line, BENCH_LINES [5000] lines per run (20 MB:
# over the cap), BENCH_MAX_OUTPUT [16M]. A binary without --max-retained-bytes
# (0.4.0) is measured too; its retained bytes are then estimated as RUNS x cap.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
BIN=${SANDBOXD_BIN:-$ROOT/mcp-sandboxd}
RUNS=${BENCH_RUNS:-10}
LINE=${BENCH_LINE:-4000}
LINES=${BENCH_LINES:-5000}
MAX_OUTPUT=${BENCH_MAX_OUTPUT:-16M}
export LC_ALL=C


source "$ROOT/scripts/bench-lib.sh"
bench_require node curl
bench_init retained

rss_kib() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }
metric() { curl -fsS --max-time 5 "$base/metrics" | sed -nE "s/^mcp_sandboxd_$1 ([0-9.e+]+)$/\1/p"; }

flags=()
# every run's output stays: the caps are set above what the runs produce
if "$BIN" --help 2>&1 | grep -q -- --max-retained-bytes; then
    flags=(--max-retained-bytes 64G --max-retained-bytes-total 64G)
fi
start_sandboxd "$BIN" "$(free_port)" --max-output-bytes "$MAX_OUTPUT" "${flags[@]+"${flags[@]}"}"
echo "== $("$BIN" --version) ($BIN), $RUNS runs of $LINES lines x $LINE bytes, --max-output-bytes $MAX_OUTPUT"

# warm-up: one small run, so the base RSS includes the execution machinery
node scripts/bench-output.mjs retained "$base/mcp" 1 'echo warm' >/dev/null
rss0=$(rss_kib "$spid")
cmd="yes \"\$(printf '%0${LINE}d' 0)\" | head -n $LINES"
node scripts/bench-output.mjs retained "$base/mcp" "$RUNS" "$cmd" >/dev/null
rss1=$(rss_kib "$spid")
retained=$(metric retained_output_bytes || true)
cap=$(numfmt --from=iec "$MAX_OUTPUT")
if [ -z "$retained" ]; then
    retained=$((cap * RUNS))
    how="estimated: $RUNS x cap (no gauge in this binary)"
else
    retained=${retained%.*}
    how="from /metrics"
fi
delta=$(((rss1 - rss0) * 1024))
echo "base RSS (after a warm-up run):  $((rss0 / 1024)) MiB"
echo "RSS after $RUNS finished runs:     $((rss1 / 1024)) MiB"
echo "retained output bytes:           $((retained / 1048576)) MiB ($how)"
awk -v d="$delta" -v r="$retained" -v n="$RUNS" 'BEGIN {
    printf "RSS growth / retained bytes:     %.3f  (%.1f MiB per run)\n", d / r, d / n / 1048576 }'
