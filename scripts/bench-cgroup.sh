#!/usr/bin/env bash
# Cost of a cgroup per run: execute_code {"command":"true"} p50 through a
# server with per-run cgroups (the default) against one started with
# --cgroups=off (rlimits only, the 0.4.0 path), in the same run. The two
# servers are measured in alternating rounds so machine noise hits both.
# Prints figures only; no thresholds (the target is at most +1 ms at p50).
#
# Knobs (environment): BENCH_RUNS [100] runs per round, BENCH_ROUNDS [5].
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
BIN=${SANDBOXD_BIN:-$ROOT/mcp-sandboxd}
RUNS=${BENCH_RUNS:-100}
ROUNDS=${BENCH_ROUNDS:-5}
export LC_ALL=C
source "$ROOT/scripts/bench-lib.sh"
bench_require node curl
bench_init cgroup

# Starts a server with extra flags $2..; sets port_$1 once /health answers.
start() {
    local name=$1 port
    shift
    port=$(free_port)
    "$BIN" --host 127.0.0.1 --port "$port" --log-level warn --workspace-root "$tmp/ws-$name" \
        --replica-id "bench-cgroup-$name-$$" "$@" >"$tmp/$name.log" 2>&1 &
    pids+=("$!")
    for _ in $(seq 1 300); do
        h=$(curl -fsS --max-time 2 "http://127.0.0.1:$port/health" 2>/dev/null) && break
        sleep 0.05
    done
    [ -n "${h:-}" ] || { echo "server $name did not start:"; cat "$tmp/$name.log"; exit 1; }
    echo "-- server $name on port $port: cgroups $(sed -n 's/.*"cgroups":"\([^"]*\)".*/\1/p' <<<"$h")"
    eval "port_$name=$port"
}

start on
start off --cgroups=off

declare -A P
for ((r = 1; r <= ROUNDS; r++)); do
    for name in on off; do
        port_var=port_$name
        node "$ROOT/scripts/bench-exec.mjs" --url "http://127.0.0.1:${!port_var}/mcp" --clients 1 --runs "$RUNS" \
            --duration 60 --warmup 5 --json "$tmp/$name-$r.json" >/dev/null
        P[$name,$r]=$(node -e 'const r=JSON.parse(require("fs").readFileSync(process.argv[1],"utf8"));console.log(r.p50_ms.toFixed(2), r.failed)' "$tmp/$name-$r.json")
        echo "   round $r, cgroups $name: p50 ${P[$name,$r]% *} ms (${P[$name,$r]#* } failed of $RUNS)"
    done
done

median() { tr ' ' '\n' | sort -g | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }
on=$(for ((r = 1; r <= ROUNDS; r++)); do echo -n "${P[on,$r]% *} "; done | median)
off=$(for ((r = 1; r <= ROUNDS; r++)); do echo -n "${P[off,$r]% *} "; done | median)
echo
echo "== execute_code(\"true\") p50, median of $ROUNDS rounds of $RUNS runs ($(nproc) CPUs, kernel $(uname -r))"
printf '  %-28s %8s ms\n' "per-run cgroups" "$on" "--cgroups=off (rlimits)" "$off"
awk -v a="$on" -v b="$off" 'BEGIN { printf "  difference: %+.2f ms\n", a - b }'
