#!/usr/bin/env bash
# Does one session's output flood stall the others? Session B sends JSON-RPC
# pings back to back while session A's run prints `yes` (for BENCH_YES_S
# seconds) and while one prints `seq 1 2000000`; idle pings for reference.
# Target (issue 11): B's p99 < 10 ms. With BASE_BIN set (e.g. a 0.4.0 build),
# the same measurements are made against it in the same run, before ours.
# Prints figures only; no thresholds.
#
# Knobs (environment): SANDBOXD_BIN [./mcp-sandboxd], BASE_BIN [unset],
# BENCH_YES_S [5], BENCH_SEQ [2000000], BENCH_MAX_S [60] cap per measurement,
# BENCH_REDIS [0]: 1 starts a redis-server and mirrors every event into it.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
BIN=${SANDBOXD_BIN:-$ROOT/mcp-sandboxd}
YES_S=${BENCH_YES_S:-5}
SEQ=${BENCH_SEQ:-2000000}
MAX_S=${BENCH_MAX_S:-60}
export LC_ALL=C


source "$ROOT/scripts/bench-lib.sh"
bench_require node curl
bench_init flood

redis_env=()
if [ "${BENCH_REDIS:-0}" = 1 ]; then
    rport=$(free_port)
    redis-server --port "$rport" --bind 127.0.0.1 --save '' --appendonly no --dir "$tmp" >"$tmp/redis.log" 2>&1 &
    pids+=("$!")
    for _ in $(seq 1 100); do redis-cli -p "$rport" ping >/dev/null 2>&1 && break; sleep 0.05; done
    redis_env=(REDIS_URL="redis://127.0.0.1:$rport")
fi

row() { printf '  %-28s %7s %8s %8s %8s %9s %8s %s\n' "$@"; }

# measure BIN: starts a server, prints idle / yes / seq rows, stops it
measure() {
    local bin=$1 port base spid line
    port=$(free_port)
    base="http://127.0.0.1:$port"
    env "${redis_env[@]+"${redis_env[@]}"}" "$bin" --host 127.0.0.1 --port "$port" --log-level warn --workspace-root "$tmp/ws-$port" \
        --max-timeout 3600 >"$tmp/sandboxd-$port.log" 2>&1 &
    spid=$!
    pids+=("$spid")
    for _ in $(seq 1 300); do
        kill -0 "$spid" 2>/dev/null || { echo "server exited during startup:"; tail -20 "$tmp/sandboxd-$port.log"; exit 1; }
        curl -fsS --max-time 2 "$base/health" 2>/dev/null | grep -q '"status":"ok"' && break
        sleep 0.05
    done
    echo "== $("$bin" --version) ($bin), $(nproc) CPUs${redis_env:+, mirrored into Redis}"
    row "another session's pings" pings p50_ms p90_ms p99_ms max_ms run_ms status
    for what in idle "timeout $YES_S yes" "seq 1 $SEQ"; do
        line=$(node scripts/bench-output.mjs ping "$base/mcp" "$what" "$MAX_S" | grep '^BENCH')
        # BENCH pings=N p50_ms=.. p90_ms=.. p99_ms=.. max_ms=.. run_ms=.. status=..
        row "$what" $(sed -E 's/BENCH //; s/[a-z0-9_]+=//g' <<<"$line")
    done
    stop_pid "$spid"
}

[ -n "${BASE_BIN:-}" ] && measure "$BASE_BIN"
measure "$BIN"
