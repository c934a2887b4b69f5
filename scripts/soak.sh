#!/usr/bin/env bash
# Soak: a private redis-server and mcp-sandboxd (REDIS_URL set), a mixed
# workload for DURATION (scripts/soak.mjs: runs waited, started async and
# polled, cancelled, timed out, fed stdin, output-heavy, sessions opened and
# DELETEd, sessions DELETEd with a run still going), and one table row of the
# server's resources every minute (every DURATION/6, at least 5 s, when
# DURATION < 2m), at the start and at the end. Not a test; a check of what a
# long run leaves behind. At the end it stops the workload, waits for every run
# to end, and prints PASS/FAIL for:
#   - workload errors: 0 (every tool result was the expected one);
#   - every run ended (within 30 s of the workload's stop) and the mirror queue drained;
#   - zombies: 0, and no process left under the server (no bwrap, no sandbox)
#     SOAK_SETTLE_S [3] seconds after the last run ended;
#   - open fds: at most SOAK_FD_SLACK [4] more than at the start;
#   - RSS: the highest sample of the second half of DURATION minus the highest
#     of the first half (start excluded) under SOAK_RSS_MIB [20] MiB;
#   - the Redis mirror: still connected, queue drained, no event dropped;
#   - no run ended while a process still held its output pipes (the server's
#     "output pipes stayed open" warning: a sandbox that may outlive its run);
#   - the server still alive, no crash in its log.
# Exits 1 on any FAIL.
#
# Usage: scripts/soak.sh DURATION   (e.g. 30s, 10m, 1h; a bare number is seconds)
# Knobs (environment): SANDBOXD_BIN, SOAK_WORKERS [4], SOAK_RETENTION [30]
# (--retention: finished runs are kept this many seconds, so that the held set
# reaches a steady state within the first minute), SOAK_RSS_MIB, SOAK_FD_SLACK,
# SOAK_SETTLE_S.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
BIN=${SANDBOXD_BIN:-$ROOT/mcp-sandboxd}
WORKERS=${SOAK_WORKERS:-4}
RETENTION=${SOAK_RETENTION:-30}
RSS_BOUND_MIB=${SOAK_RSS_MIB:-20}
FD_SLACK=${SOAK_FD_SLACK:-4}
export LC_ALL=C

usage() { echo "usage: $0 DURATION (e.g. 30s, 10m, 1h)" >&2; exit 2; }
[ $# -eq 1 ] || usage
case $1 in
    *h) DUR=$((${1%h} * 3600)) ;;
    *m) DUR=$((${1%m} * 60)) ;;
    *s) DUR=${1%s} ;;
    *) DUR=$1 ;;
esac
[[ $DUR =~ ^[0-9]+$ ]] && [ "$DUR" -gt 0 ] || usage
if [ "$DUR" -ge 120 ]; then INTERVAL=60; else INTERVAL=$((DUR / 6)); [ "$INTERVAL" -ge 5 ] || INTERVAL=5; fi

for c in redis-server redis-cli node curl; do
    command -v "$c" >/dev/null || { echo "$c is not installed" >&2; exit 1; }
done
[ -x "$BIN" ] || make mcp-sandboxd

source "$ROOT/scripts/bench-lib.sh"
bench_init soak

# ---------------------------------------------------------------- redis + server
rport=$(free_port)
mkdir "$tmp/redis"
redis-server --bind 127.0.0.1 --port "$rport" --save '' --appendonly no --dir "$tmp/redis" \
    --logfile "$tmp/redis/redis.log" >/dev/null 2>&1 &
rpid=$!
pids+=("$rpid")
for _ in $(seq 1 200); do
    [ "$(redis-cli -p "$rport" PING 2>/dev/null)" = PONG ] && break
    kill -0 "$rpid" 2>/dev/null || { echo "redis-server exited:"; cat "$tmp/redis/redis.log"; exit 1; }
    sleep 0.05
done

port=$(free_port)
base="http://127.0.0.1:$port"
REDIS_URL="redis://127.0.0.1:$rport" "$BIN" --host 127.0.0.1 --port "$port" --log-level warn \
    --log-file "$tmp/server.log" --workspace-root "$tmp/ws" --retention "$RETENTION" \
    --max-concurrent 40 --max-per-session 10 --max-processes 512 >"$tmp/server.out" 2>&1 &
spid=$!
pids+=("$spid")
health=""
for _ in $(seq 1 300); do
    kill -0 "$spid" 2>/dev/null || { echo "server exited during startup:"; cat "$tmp/server.out"; tail -20 "$tmp/server.log"; exit 1; }
    health=$(curl -fsS --max-time 2 "$base/health" 2>/dev/null) && grep -q '"redis":"connected"' <<<"$health" && break
    sleep 0.05
done
grep -q '"available":true' <<<"$health" || { echo "the server's sandbox is unavailable: $health"; exit 1; }
grep -q '"redis":"connected"' <<<"$health" || { echo "the server did not connect to Redis: $health"; exit 1; }

echo "== soak for ${DUR} s: mcp-sandboxd $("$BIN" --version 2>/dev/null || true) (pid $spid) on 127.0.0.1:$port, redis-server $(redis-server --version | sed -E 's/.*v=([^ ]+).*/\1/') on port $rport"
echo "   $WORKERS workers, --retention $RETENTION, sample every $INTERVAL s; $(nproc) CPUs shared with other work; $(uname -r)"

# ---------------------------------------------------------------- sampling
hget() { sed -nE "s/.*\"$1\":\"?([^,\"}]*).*/\1/p" <<<"$2" | head -1; }
declare -a S_RSS S_FDS S_T S_SEC
row() { printf '  %6s %8s %5s %7s %8s %7s %8s %7s %6s %8s %9s %6s  %s\n' "$@"; }
sample() { # $1 = label; appends to S_* and prints a row
    local h st rss fds thr ch z
    st=$(proc_stats "$spid")
    read -r rss fds thr ch z <<<"$st"
    h=$(curl -fsS --max-time 5 "$base/health" 2>/dev/null || echo '{}')
    S_RSS+=("$rss") S_FDS+=("$fds") S_T+=("$1") S_SEC+=("${2:-0}")
    row "$1" "$(awk -v k="$rss" 'BEGIN { printf "%.1f", k / 1024 }')" "$fds" "$thr" "$ch" "$z" \
        "$(hget sessions "$h")" "$(hget running "$h")" "$(hget held "$h")" "$(hget started_total "$h")" \
        "$(hget queue_bytes "$h")" "$(hget drops "$h")" "$(cut -d' ' -f1-3 /proc/loadavg)"
}
echo
row "t" "RSS MiB" "fds" "threads" "children" "zombies" "sessions" "running" "held" "started" "mirror q" "drops" "load (1/5/15 min)"
sample "start"

# ---------------------------------------------------------------- workload
node "$ROOT/scripts/soak.mjs" --url "$base/mcp" --workers "$WORKERS" --json "$tmp/soak.json" >"$tmp/workload.out" 2>&1 &
wpid=$!
pids+=("$wpid")
t0=$SECONDS
next=$INTERVAL
while [ $((SECONDS - t0)) -lt "$DUR" ]; do
    kill -0 "$wpid" 2>/dev/null || { echo "the workload exited early:"; cat "$tmp/workload.out"; break; }
    if [ $((SECONDS - t0)) -ge "$next" ]; then
        sample "$((SECONDS - t0))s" "$((SECONDS - t0))"
        next=$((next + INTERVAL))
    fi
    sleep 1
done

# ---------------------------------------------------------------- end
kill -TERM "$wpid" 2>/dev/null || true
wait "$wpid" 2>/dev/null || true
pids=("$rpid" "$spid")
stopped=$((SECONDS - t0))
# every run must end (cancel and timeout take at most --kill-grace-ms) and the mirror drain
ended=""
for _ in $(seq 1 300); do
    h=$(curl -fsS --max-time 2 "$base/health" 2>/dev/null || echo '{}')
    if [ "$(hget running "$h")" = 0 ] && [ "$(hget queue_bytes "$h")" = 0 ]; then ended=$((SECONDS - t0)); break; fi
    sleep 0.1
done
# then no process may stay under the server: the sandboxes' PID namespaces are torn down
# within tens of milliseconds of their last run's end; allow SETTLE_S [3] seconds
SETTLE_S=${SOAK_SETTLE_S:-3}
for _ in $(seq 1 $((SETTLE_S * 10))); do
    read -r _ _ _ ch z <<<"$(proc_stats "$spid")"
    [ "$ch" = 0 ] && [ "$z" = 0 ] && break
    sleep 0.1
done
sample "end" "$((SECONDS - t0))"
echo "  (t: seconds since the workload started; the workload stopped at ${stopped}s and \"end\" is after every run ended;"
echo "   children: processes under the server; held: executions in memory (running + retained); mirror q: Redis mirror queue bytes; drops: mirror events dropped)"
echo
sed 's/^/  /' "$tmp/workload.out"

# ---------------------------------------------------------------- checks
FAILED=0
check() { # $1 = 0 for pass, $2 = text
    if [ "$1" = 0 ]; then echo "  PASS  $2"; else echo "  FAIL  $2"; FAILED=1; fi
}
echo
echo "== checks"
werr=$(node -e 'try { console.log(JSON.parse(require("fs").readFileSync(process.argv[1], "utf8")).errors) } catch { console.log("no summary") }' "$tmp/soak.json")
wops=$(node -e 'try { console.log(JSON.parse(require("fs").readFileSync(process.argv[1], "utf8")).ops) } catch { console.log(0) }' "$tmp/soak.json")
check "$([ "$werr" = 0 ] && [ "$wops" -gt 0 ] && echo 0 || echo 1)" "workload errors: $werr (in $wops operations)"
alive=0; kill -0 "$spid" 2>/dev/null || alive=1
check "$alive" "server alive after the soak"
read -r _ _ _ ch z <<<"$(proc_stats "$spid")"
check "$([ "$z" = 0 ] && echo 0 || echo 1)" "zombies: $z"
check "$([ -n "$ended" ] && echo 0 || echo 1)" "every run ended after the workload stopped (running 0 and the mirror queue empty at ${ended:-never (30 s)}s)"
check "$([ "$ch" = 0 ] && echo 0 || echo 1)" "processes left under the server ${SETTLE_S} s after every run ended: $ch"
[ "$ch" = 0 ] || proc_descendants "$spid" | sed 's/^/          /'
n=${#S_FDS[@]}
fd0=${S_FDS[0]} fd1=${S_FDS[$((n - 1))]}
check "$([ "$fd1" -le $((fd0 + FD_SLACK)) ] && echo 0 || echo 1)" "open fds: $fd0 at start, $fd1 at the end (bound: start + $FD_SLACK)"
# RSS: the plateau of the second half against the plateau of the first half
# (the start sample excluded). malloc keeps its high-water mark, and that mark
# depends on how many output-heavy runs happen to be held at once, so one early
# sample is a poor baseline (it may be taken before the plateau is reached);
# a leak makes the second half's highest sample keep climbing.
mib() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }
h1=0 h2=0 t1="" t2=""
for ((i = 1; i < n; i++)); do
    if [ "${S_SEC[$i]}" -le $((DUR / 2)) ]; then
        [ "${S_RSS[$i]}" -gt "$h1" ] && h1=${S_RSS[$i]} t1=${S_T[$i]}
    else
        [ "${S_RSS[$i]}" -gt "$h2" ] && h2=${S_RSS[$i]} t2=${S_T[$i]}
    fi
done
if [ "$h1" -gt 0 ] && [ "$h2" -gt 0 ]; then
    growth=$(awk -v a="$h1" -v b="$h2" 'BEGIN { printf "%.1f", (b - a) / 1024 }')
    check "$(awk -v g="$growth" -v m="$RSS_BOUND_MIB" 'BEGIN { print (g < m) ? 0 : 1 }')" \
        "RSS: highest $(mib "$h1") MiB in the first half (at $t1), highest $(mib "$h2") MiB in the second (at $t2): ${growth} MiB growth (bound: < $RSS_BOUND_MIB MiB; first sample after start $(mib "${S_RSS[1]}") MiB, end $(mib "${S_RSS[$((n - 1))]}") MiB)"
else
    check 1 "RSS: too few samples for two halves (DURATION too short)"
fi
h=$(curl -fsS --max-time 5 "$base/health" 2>/dev/null || echo '{}')
check "$([ "$(hget redis "$h")" = connected ] && [ "$(hget queue_bytes "$h")" = 0 ] && [ "$(hget drops "$h")" = 0 ] && echo 0 || echo 1)" \
    "Redis mirror: $(hget redis "$h"), queue $(hget queue_bytes "$h") bytes, $(hget drops "$h") events dropped, $(hget events_written "$h") written, $(hget reconnects "$h") reconnects"
# a run whose bwrap exited while something still held its output pipes: the server
# recorded its end, but a process of the sandbox may have lived on (a stray the end
# check only sees when it is still there when the soak ends)
linger=$(grep -c 'output pipes stayed open' "$tmp/server.log" 2>/dev/null || true)
check "$([ "${linger:-0}" = 0 ] && echo 0 || echo 1)" "runs ended while a process still held their output pipes (server warning \"output pipes stayed open\"): ${linger:-0}"
crash=0
grep -qiE 'sanitizer|segfault|assert|abort' "$tmp/server.log" "$tmp/server.out" 2>/dev/null && crash=1
check "$crash" "no crash or sanitizer report in the server log ($(wc -l <"$tmp/server.log") warn/error lines)"
if [ -s "$tmp/server.log" ]; then
    echo "  server log (warn and above), most frequent lines:"
    sed -E 's/^[^ ]+ [^ ]+ //; s/[0-9a-f]{16,}/ID/g; s/pid [0-9]+/pid N/g' "$tmp/server.log" | sort | uniq -c | sort -rn | head -5 | sed 's/^/    /'
fi
echo
if [ "$FAILED" = 0 ]; then echo "SOAK PASS"; else echo "SOAK FAIL"; fi
exit "$FAILED"
