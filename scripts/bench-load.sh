#!/usr/bin/env bash
# Load: one mcp-sandboxd (release build, raised limits) driven three ways:
#   a. LOAD_CONNECTIONS [1000] concurrent keep-alive connections (wrk,
#      scripts/bench-load.lua) polling get_execution_status of one live
#      execution (`sleep 600`) on one session: req/s, latency, socket errors,
#      non-2xx answers and answers without "status":"running";
#   b. LOAD_STREAM_RUNS [100] concurrent execute_code_async runs printing
#      LOAD_LINES [2000] lines each, over LOAD_STREAM_SESSIONS [10] sessions,
#      followed with get_execution_output + last_event_id until their exit
#      event (scripts/bench-load.mjs stream): events/s and lost lines;
#   c. LOAD_MIX_CLIENTS [8] clients calling execute_code `true` / `echo x` in a
#      loop for LOAD_MIX_DURATION [10] s (scripts/bench-load.mjs mix): runs/s,
#      p50/p99.
# Before, between and after the phases it prints the server's RSS, open fds,
# threads, descendant processes and zombies. Any error (socket error, non-2xx,
# tool error, lost line, leftover process or zombie at the end) prints FAIL
# and makes the exit status 1. A benchmark, not a test: figures are noisy on
# a shared machine (the load average is printed with them).
#
# Knobs (environment): SANDBOXD_BIN, LOAD_DURATION [10s] (phase a),
# LOAD_THREADS [2] (wrk threads), LOAD_CONNECTIONS, LOAD_STREAM_RUNS,
# LOAD_STREAM_SESSIONS, LOAD_LINES, LOAD_MIX_CLIENTS, LOAD_MIX_DURATION.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
BIN=${SANDBOXD_BIN:-$ROOT/mcp-sandboxd}
DURATION=${LOAD_DURATION:-10s}
THREADS=${LOAD_THREADS:-2}
CONNS=${LOAD_CONNECTIONS:-1000}
SRUNS=${LOAD_STREAM_RUNS:-100}
SSESS=${LOAD_STREAM_SESSIONS:-10}
LINES=${LOAD_LINES:-2000}
MCLIENTS=${LOAD_MIX_CLIENTS:-8}
MDURATION=${LOAD_MIX_DURATION:-10}
PROTO=2025-06-18
export LC_ALL=C

for c in wrk curl node; do
    command -v "$c" >/dev/null || { echo "$c is not installed" >&2; exit 1; }
done
[ -x "$BIN" ] || make mcp-sandboxd

# Room for CONNS client sockets in wrk and as many in the server (which raises
# its soft limit to the hard one at startup).
want=$((CONNS * 2 + 1024))
if [ "$(ulimit -Hn)" != unlimited ] && [ "$(ulimit -Hn)" -lt "$want" ]; then
    ulimit -Hn "$want" 2>/dev/null || true
fi
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt "$want" ]; then
    echo "FAIL: open-file limit $(ulimit -n) is below the $want this needs (ulimit -Hn, or run as root)" >&2
    exit 1
fi

source "$ROOT/scripts/bench-lib.sh"
bench_init load

FAILS=()
fail() { FAILS+=("$1"); echo "!!!!!!!! FAIL: $1"; }
loadavg() { cut -d' ' -f1-3 /proc/loadavg; }

# ---------------------------------------------------------------- server
port=$(free_port)
base="http://127.0.0.1:$port"
url="$base/mcp"
echo "== mcp-sandboxd $("$BIN" --version 2>/dev/null || true) on 127.0.0.1:$port ($(nproc) CPUs, shared; kernel $(uname -r); open-file limit $(ulimit -n))"
"$BIN" --host 127.0.0.1 --port "$port" --log-level warn --workspace-root "$tmp/ws" \
    --max-concurrent 100 --max-per-session 100 --max-processes 256 --processes 128 --max-sessions 10000 >"$tmp/sandboxd.log" 2>&1 &
spid=$!
pids+=("$spid")
health=""
for _ in $(seq 1 300); do
    kill -0 "$spid" 2>/dev/null || { echo "server exited during startup:"; tail -20 "$tmp/sandboxd.log"; exit 1; }
    health=$(curl -fsS --max-time 2 "$base/health" 2>/dev/null) && break
    sleep 0.05
done
[ -n "$health" ] || { echo "server did not answer /health within 15 s"; tail -20 "$tmp/sandboxd.log"; exit 1; }
grep -q '"status":"ok"' <<<"$health" || { echo "the server's sandbox is unavailable: $health"; exit 1; }

declare -A ST # phase -> "rss_kib fds threads children zombies load"
sample() { # $1 = phase name, $2 = figures taken earlier (default: now)
    local s=${2:-}
    [ -n "$s" ] || s=$(proc_stats "$spid")
    ST[$1]="$s $(loadavg | tr ' ' '/')"
    read -r rss fds thr ch z <<<"$s"
    printf -- '-- server %-22s RSS %6.1f MiB  fds %5s  threads %3s  children %4s  zombies %s  (load %s)\n' \
        "$1:" "$(awk -v k="$rss" 'BEGIN { print k / 1024 }')" "$fds" "$thr" "$ch" "$z" "$(loadavg)"
}

# POSTs a JSON-RPC body on session $1 with curl; prints the answer body.
rpc() {
    local sid=$1 body=$2 h=()
    [ -n "$sid" ] && h=(-H "Mcp-Session-Id: $sid" -H "MCP-Protocol-Version: $PROTO")
    curl -sS --max-time 30 -X POST "$url" -H 'Content-Type: application/json' \
        -H 'Accept: application/json, text/event-stream' "${h[@]}" -d "$body"
}

sample "start"

# ---------------------------------------------------------------- a. polling
echo
echo "== a. $CONNS keep-alive connections polling get_execution_status of a live run (wrk -t$THREADS -c$CONNS -d$DURATION)"
curl -sS --max-time 10 -o /dev/null -D "$tmp/init.headers" -X POST "$url" -H 'Content-Type: application/json' \
    -H 'Accept: application/json, text/event-stream' \
    -d '{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"'$PROTO'","capabilities":{},"clientInfo":{"name":"bench-load","version":"1"}}}'
sid=$(awk -F': *' 'tolower($1)=="mcp-session-id"{print $2}' "$tmp/init.headers" | tr -d '\r\n')
[ -n "$sid" ] || { echo "initialize gave no session id"; cat "$tmp/init.headers"; exit 1; }
rpc "$sid" '{"jsonrpc":"2.0","method":"notifications/initialized"}' >/dev/null
started=$(rpc "$sid" '{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"execute_code_async","arguments":{"command":"sleep 600"}}}')
eid=$(sed -nE 's/.*\\"execution_id\\":\\"([^\\"]+)\\".*/\1/p; s/.*"execution_id":"([^"]+)".*/\1/p' <<<"$started" | head -1)
[ -n "$eid" ] || { echo "execute_code_async gave no execution id: $started"; exit 1; }
body='{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"get_execution_status","arguments":{"execution_id":"'$eid'"}}}'
first=$(rpc "$sid" "$body")
grep -q '"status":"running"' <<<"$first" || { echo "get_execution_status does not say running: $first"; exit 1; }
# the figures while all connections are open, half-way through
secs=${DURATION%s}
[[ $secs =~ ^[0-9]+$ ]] || secs=2
(sleep $((secs / 2 + 1)); echo "$(proc_stats "$spid") $(loadavg | tr ' ' '/')" >"$tmp/during-a") &
MCP_SESSION_ID=$sid MCP_BODY=$body MCP_EXPECT='"status":"running"' MCP_PROTOCOL_VERSION=$PROTO \
    wrk -t"$THREADS" -c"$CONNS" -d"$DURATION" --timeout 10s --latency -s "$ROOT/scripts/bench-load.lua" "$url" >"$tmp/wrk.txt" 2>&1 ||
    { echo "wrk failed:"; cat "$tmp/wrk.txt"; exit 1; }
A_LOAD=$(loadavg)
grep -v '^BENCH ' "$tmp/wrk.txt" | sed 's/^/   /'
line=$(grep '^BENCH ' "$tmp/wrk.txt" | tail -1)
[ -n "$line" ] || { echo "wrk printed no BENCH line"; exit 1; }
field() { sed -E "s/.* $1=([^ ]+).*/\1/" <<<"$line"; }
A_RPS=$(field rps) A_P50=$(field p50_ms) A_P90=$(field p90_ms) A_P99=$(field p99_ms) A_MAX=$(field max_ms)
A_REQ=$(field requests) A_ERR=$(field errors) A_NON2XX=$(field non2xx) A_BAD=$(field bad)
echo "   socket errors $A_ERR (connect $(field connect), read $(field read), write $(field write), timeout $(field timeout)), non-2xx $A_NON2XX, answers without \"status\":\"running\" $A_BAD"
[ "$A_ERR" = 0 ] || fail "a: $A_ERR socket errors"
[ "$A_NON2XX" = 0 ] || fail "a: $A_NON2XX non-2xx answers"
[ "$A_BAD" = 0 ] || fail "a: $A_BAD answers without \"status\":\"running\""
if [ -s "$tmp/during-a" ]; then
    read -r rss fds thr ch z l <"$tmp/during-a"
    sample "during a" "$rss $fds $thr $ch $z"
    ST[during a]="$rss $fds $thr $ch $z $l"
fi
sample "after a (run live)"
cancel=$(rpc "$sid" '{"jsonrpc":"2.0","id":4,"method":"tools/call","params":{"name":"cancel_execution","arguments":{"execution_id":"'$eid'","force":true}}}')
grep -q '"was_running":true' <<<"$cancel" || fail "a: cancel_execution of the sleep 600 run: $cancel"
curl -sS --max-time 10 -o /dev/null -X DELETE "$url" -H "Mcp-Session-Id: $sid" -H "MCP-Protocol-Version: $PROTO" || true

# ---------------------------------------------------------------- b. streaming
echo
echo "== b. $SRUNS concurrent runs x $LINES lines over $SSESS sessions, followed with get_execution_output"
node "$ROOT/scripts/bench-load.mjs" stream --url "$url" --runs "$SRUNS" --sessions "$SSESS" --lines "$LINES" \
    --json "$tmp/stream.json" | sed 's/^/   /' || true
B_LOAD=$(loadavg)
read -r B_EPS B_MBS B_EVENTS B_LOST B_OK B_ERR B_WALL < <(node -e '
    const r = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
    const f = (x, d) => (Number.isFinite(x) ? x.toFixed(d) : "-");
    console.log([f(r.events_per_s, 0), f(r.mb_per_s, 2), r.events ?? "-", r.lost ?? "-", r.ok ?? 0, r.errors, f(r.wall_s, 2)].join(" "));
' "$tmp/stream.json" 2>/dev/null || echo "- - - - 0 1 -")
[ "$B_LOST" = 0 ] || fail "b: $B_LOST lines lost"
[ "$B_ERR" = 0 ] || fail "b: $B_ERR errors"
[ "$B_OK" = "$SRUNS" ] || fail "b: $B_OK of $SRUNS runs complete and intact"
sample "after b"

# ---------------------------------------------------------------- c. short runs
echo
echo "== c. execute_code true / echo x from $MCLIENTS clients for $MDURATION s"
node "$ROOT/scripts/bench-load.mjs" mix --url "$url" --clients "$MCLIENTS" --duration "$MDURATION" \
    --json "$tmp/mix.json" | sed 's/^/   /' || true
C_LOAD=$(loadavg)
read -r C_RPS C_P50 C_P90 C_P99 C_MAX C_RUNS C_ERR < <(node -e '
    const r = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
    const f = (x) => (Number.isFinite(x) ? x.toFixed(2) : "-");
    console.log([f(r.runs_per_s), f(r.p50_ms), f(r.p90_ms), f(r.p99_ms), f(r.max_ms), r.runs ?? 0, r.errors].join(" "));
' "$tmp/mix.json" 2>/dev/null || echo "- - - - - 0 1")
[ "$C_ERR" = 0 ] || fail "c: $C_ERR errors"
[ "$C_RUNS" -gt 0 ] || fail "c: no successful run"

# ---------------------------------------------------------------- end state
# every run has ended: no sandbox process and no zombie may be left
for _ in $(seq 1 100); do
    read -r _ _ _ ch z <<<"$(proc_stats "$spid")"
    running=$(curl -fsS --max-time 2 "$base/metrics" | sed -nE 's/^mcp_sandboxd_executions_running ([0-9]+).*/\1/p')
    [ "$ch" = 0 ] && [ "$z" = 0 ] && [ "$running" = 0 ] && break
    sleep 0.1
done
echo
sample "end (all runs over)"
read -r _ _ _ ch z _ <<<"${ST[end (all runs over)]}"
if [ "$ch" != 0 ] || [ "$z" != 0 ]; then
    fail "end: $ch descendant processes ($z zombies) left after every run ended"
    proc_descendants "$spid" | sed 's/^/   /'
fi
kill -0 "$spid" 2>/dev/null || fail "the server died"
if grep -qiE 'sanitizer|segfault|abort' "$tmp/sandboxd.log"; then fail "server log mentions a crash"; fi

# ---------------------------------------------------------------- summary
row() { printf '  %-52s %10s %9s %9s %9s %9s %7s  %s\n' "$@"; }
mib() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }
echo
echo "== summary (mcp-sandboxd $("$BIN" --version 2>/dev/null || true), $(nproc) CPUs shared with other work; load = 1/5/15-min load average after the phase)"
row "phase" "rate" "p50 ms" "p90 ms" "p99 ms" "max ms" "errors" "load"
row "a. get_execution_status, $CONNS conns (req/s)" "$A_RPS" "$A_P50" "$A_P90" "$A_P99" "$A_MAX" "$((A_ERR + A_NON2XX + A_BAD))" "$A_LOAD"
row "b. $SRUNS runs x $LINES lines streamed (events/s)" "$B_EPS" "-" "-" "-" "-" "$B_ERR" "$B_LOAD"
row "   lines lost: $B_LOST; runs intact: $B_OK/$SRUNS; $B_MBS MiB/s; ${B_WALL} s" "" "" "" "" "" "" ""
row "c. execute_code true/echo x, $MCLIENTS clients (runs/s)" "$C_RPS" "$C_P50" "$C_P90" "$C_P99" "$C_MAX" "$C_ERR" "$C_LOAD"
echo
printf '  %-22s %9s %6s %8s %9s %8s\n' "server" "RSS MiB" "fds" "threads" "children" "zombies"
for p in "start" "during a" "after a (run live)" "after b" "end (all runs over)"; do
    [ -n "${ST[$p]:-}" ] || continue
    read -r rss fds thr ch z _ <<<"${ST[$p]}"
    printf '  %-22s %9s %6s %8s %9s %8s\n' "$p" "$(mib "$rss")" "$fds" "$thr" "$ch" "$z"
done
echo "  (a: $A_REQ requests; errors = socket errors + non-2xx + answers without \"status\":\"running\")"
echo
if [ ${#FAILS[@]} -gt 0 ]; then
    echo "!!!!!!!! FAIL (${#FAILS[@]}):"
    printf '!!!!!!!!   %s\n' "${FAILS[@]}"
    exit 1
fi
echo "OK: zero errors, zero lost lines, no process left"
