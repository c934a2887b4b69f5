#!/usr/bin/env bash
# Execution latency: execute_code {"command":"true"} round trips through
# mcp-sandboxd with 1 client and with 8 concurrent clients (each its own MCP
# session and keep-alive connection; scripts/bench-exec.mjs), next to a bare
# bubblewrap /bin/true measured in the same run, as the sandbox user the way
# the server drops privileges. Prints figures only; no thresholds.
#
# Knobs (environment): BENCH_RUNS [200] runs per client and per config,
# BENCH_DURATION [10] seconds cap per config, BENCH_CLIENTS ["1 8"],
# BWRAP_RUNS [200]. Nothing is pinned here: sandboxes inherit the server's
# CPU affinity, and the concurrent runs need both CPUs.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
BIN=${SANDBOXD_BIN:-$ROOT/mcp-sandboxd}
RUNS=${BENCH_RUNS:-200}
DURATION=${BENCH_DURATION:-10}
CLIENTS=${BENCH_CLIENTS:-1 8}
BWRAP_RUNS=${BWRAP_RUNS:-200}
WARMUP=5
export LC_ALL=C

BWRAP=$(command -v bwrap || true)
[ -n "$BWRAP" ] || { echo "bwrap is not installed (apt-get install bubblewrap)" >&2; exit 1; }

source "$ROOT/scripts/bench-lib.sh"
bench_require node curl
bench_init exec


# p50 p90 p99 mean of a file of numbers (ms), nearest-rank percentiles.
stats() {
    sort -g "$1" | awk '{ a[NR] = $1; s += $1 }
        function pct(p,  i) { i = int(p / 100 * NR); if (i < p / 100 * NR) i++; if (i < 1) i = 1; return a[i] }
        END { printf "%.2f %.2f %.2f %.3f %d\n", pct(50), pct(90), pct(99), s / NR, NR }'
}

# Times `$@` run $2 times (after $WARMUP untimed runs) into file $1, one ms value a line.
time_runs() {
    local out=$1 n=$2 i t0 t1
    shift 2
    for ((i = 0; i < WARMUP; i++)); do "$@" >/dev/null 2>&1 || { echo "failed: $*" >&2; "$@"; return 1; }; done
    : >"$out"
    for ((i = 0; i < n; i++)); do
        t0=${EPOCHREALTIME/./}
        "$@" >/dev/null 2>&1 || { echo "failed: $*" >&2; return 1; }
        t1=${EPOCHREALTIME/./}
        echo "$(((t1 - t0) / 1000)).$(printf '%03d' $(((t1 - t0) % 1000)))" >>"$out"
    done
}

row() { printf '  %-40s %8s %8s %8s %9s %6s %7s\n' "$@"; }

# ---------------------------------------------------------------- server
port=$(free_port)
url="http://127.0.0.1:$port/mcp"
echo "== mcp-sandboxd $("$BIN" --version 2>/dev/null || true) on 127.0.0.1:$port ($(nproc) CPUs, kernel $(uname -r), $("$BWRAP" --version))"
"$BIN" --host 127.0.0.1 --port "$port" --log-level warn --workspace-root "$tmp/ws" \
    --max-concurrent 64 --max-per-session 64 --max-processes 256 --processes 128 >"$tmp/sandboxd.log" 2>&1 &
spid=$!
pids+=("$spid")
health=""
for _ in $(seq 1 300); do
    kill -0 "$spid" 2>/dev/null || { echo "server exited during startup:"; tail -20 "$tmp/sandboxd.log"; exit 1; }
    health=$(curl -fsS --max-time 2 "http://127.0.0.1:$port/health" 2>/dev/null) && break
    sleep 0.05
done
[ -n "$health" ] || { echo "server did not answer /health within 15 s"; tail -20 "$tmp/sandboxd.log"; exit 1; }
if ! grep -q '"status":"ok"' <<<"$health"; then
    echo "the server's sandbox is unavailable, nothing to measure: $health"
    exit 1
fi

# ---------------------------------------------------------------- bare bubblewrap
BARE=("$BWRAP" --unshare-all --die-with-parent --new-session --ro-bind / / --dev /dev --proc /proc --tmpfs /tmp /bin/true)
AS_USER=()
who="$(id -un)"
if [ "$(id -u)" = 0 ]; then
    command -v setpriv >/dev/null || { echo "setpriv is not installed (util-linux)" >&2; exit 1; }
    AS_USER=(setpriv --reuid=65534 --regid=65534 --clear-groups)
    who="uid 65534 via setpriv"
fi
echo "-- bare bwrap /bin/true x$BWRAP_RUNS ($who)"
time_runs "$tmp/bare.ms" "$BWRAP_RUNS" "${AS_USER[@]}" "${BARE[@]}"
read -r B_P50 B_P90 B_P99 B_MEAN B_N < <(stats "$tmp/bare.ms")
if [ ${#AS_USER[@]} -gt 0 ]; then
    # setpriv is one more exec the server does not pay (it drops privileges itself between fork and exec)
    echo "-- setpriv /bin/true and /bin/true x$BWRAP_RUNS (to take setpriv's own exec out of the bare figure)"
    time_runs "$tmp/setpriv.ms" "$BWRAP_RUNS" "${AS_USER[@]}" /bin/true
    read -r S_P50 S_P90 S_P99 _ S_N < <(stats "$tmp/setpriv.ms")
    time_runs "$tmp/true.ms" "$BWRAP_RUNS" /bin/true
    read -r T_P50 T_P90 T_P99 _ T_N < <(stats "$tmp/true.ms")
fi

# ---------------------------------------------------------------- execute_code
declare -A E
for c in $CLIENTS; do
    echo "-- execute_code {\"command\":\"true\"}: $c client(s), $RUNS runs each (cap ${DURATION}s), $WARMUP warm-up runs each"
    node "$ROOT/scripts/bench-exec.mjs" --url "$url" --clients "$c" --runs "$RUNS" --duration "$DURATION" \
        --warmup "$WARMUP" --json "$tmp/exec-$c.json" | sed 's/^/   /'
    read -r p50 p90 p99 rps n failed srv < <(node -e '
        const r = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
        const f = (x) => (Number.isFinite(x) ? x.toFixed(2) : "-");
        console.log([f(r.p50_ms), f(r.p90_ms), f(r.p99_ms), f(r.runs_per_s), r.runs, r.failed, f(r.server_duration_p50_ms)].join(" "));
    ' "$tmp/exec-$c.json")
    E[$c,p50]=$p50 E[$c,p90]=$p90 E[$c,p99]=$p99 E[$c,rps]=$rps E[$c,n]=$n E[$c,failed]=$failed E[$c,srv]=$srv
done

# ---------------------------------------------------------------- summary
echo
echo "== execute_code vs bare bubblewrap (latency in ms)"
row "" "p50" "p90" "p99" "runs/s" "n" "failed"
row "bare bwrap /bin/true (sequential)" "$B_P50" "$B_P90" "$B_P99" "$(awk -v m="$B_MEAN" 'BEGIN { printf "%.1f", 1000 / m }')" "$B_N" "0"
if [ ${#AS_USER[@]} -gt 0 ]; then
    row "  for reference: setpriv /bin/true" "$S_P50" "$S_P90" "$S_P99" "-" "$S_N" ""
    row "  for reference: /bin/true" "$T_P50" "$T_P90" "$T_P99" "-" "$T_N" ""
fi
for c in $CLIENTS; do
    row "execute_code, $c client(s)" "${E[$c,p50]}" "${E[$c,p90]}" "${E[$c,p99]}" "${E[$c,rps]}" "${E[$c,n]}" "${E[$c,failed]}"
done
echo
for c in $CLIENTS; do
    if [ "${E[$c,p50]}" = - ]; then
        echo "  p50 difference, execute_code ($c client(s)) - bare bwrap: - (no successful runs)"
        continue
    fi
    awk -v a="${E[$c,p50]}" -v b="$B_P50" -v c="$c" -v s="${E[$c,srv]}" 'BEGIN {
        printf "  p50 difference, execute_code (%s client(s)) - bare bwrap: %+.2f ms", c, a - b;
        printf "   (server-side spawn-to-exit p50, ms resolution: %s ms)\n", s }'
done
c1=${CLIENTS%% *}
if [ ${#AS_USER[@]} -gt 0 ] && [ "${E[$c1,p50]}" != - ]; then
    awk -v a="${E[$c1,p50]}" -v b="$B_P50" -v s="$S_P50" -v t="$T_P50" -v c="$c1" 'BEGIN {
        printf "  setpriv exec in the bare figure (setpriv /bin/true - /bin/true, p50): %.2f ms\n", s - t;
        printf "  p50 difference, execute_code (%s client(s)) - (bare bwrap without setpriv): %+.2f ms\n", c, a - (b - (s - t)) }'
fi
