#!/usr/bin/env bash
# Protocol throughput: JSON-RPC ping over Streamable HTTP on one initialized
# session, driven by wrk (scripts/bench-ping.lua). Measures mcp-sandboxd and
# then, when it can be installed from npm, the reference TypeScript server
# @modelcontextprotocol/server-everything (streamableHttp mode) the same way,
# and prints both and their ratio. Prints figures only; no thresholds.
#
# Knobs (environment): BENCH_DURATION [10s], BENCH_THREADS [2],
# BENCH_CONNECTIONS [64], EVERYTHING_VERSION [latest], BENCH_SKIP_EVERYTHING=1.
# With taskset and 2+ CPUs the server runs on CPU 0 and wrk on CPU 1, so the
# load generator does not starve the server.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
BIN=${SANDBOXD_BIN:-$ROOT/mcp-sandboxd}
DURATION=${BENCH_DURATION:-10s}
THREADS=${BENCH_THREADS:-2}
CONNS=${BENCH_CONNECTIONS:-64}
PROTO=2025-06-18
INIT_BODY='{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"'$PROTO'","capabilities":{},"clientInfo":{"name":"bench","version":"1"}}}'


source "$ROOT/scripts/bench-lib.sh"
bench_require wrk curl
bench_init protocol

SERVER_PIN=()
CLIENT_PIN=()
if command -v taskset >/dev/null && [ "$(nproc)" -ge 2 ]; then
    SERVER_PIN=(taskset -c 0)
    CLIENT_PIN=(taskset -c 1)
    PINNING="server on CPU 0, wrk on CPU 1"
else
    PINNING="none (taskset missing or a single CPU)"
fi



# Waits until `curl URL` gets any HTTP answer (GET, or POST with a body when given).
wait_http() {
    local url=$1 pid=$2 logf=$3 code _
    for _ in $(seq 1 300); do
        if ! kill -0 "$pid" 2>/dev/null; then
            echo "server exited during startup:"; tail -20 "$logf"; return 1
        fi
        code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$url" || true)
        [ "$code" != 000 ] && return 0
        sleep 0.05
    done
    echo "server did not answer within 15 s:"; tail -20 "$logf"; return 1
}

# initialize + notifications/initialized; prints the session id. $2 = file for diagnostics.
mcp_session() {
    local url=$1 diag=$2 sid code
    code=$(curl -sS --max-time 10 -o "$tmp/init.body" -D "$tmp/init.headers" -w '%{http_code}' -X POST "$url" \
        -H 'Content-Type: application/json' -H 'Accept: application/json, text/event-stream' -d "$INIT_BODY") || code=000
    sid=$(awk -F': *' 'tolower($1)=="mcp-session-id"{print $2}' "$tmp/init.headers" 2>/dev/null | tr -d '\r\n')
    if [ "$code" != 200 ] || [ -z "$sid" ]; then
        { echo "initialize answered HTTP $code without a session id:"; head -c 400 "$tmp/init.body" 2>/dev/null; echo; } >"$diag"
        return 1
    fi
    code=$(curl -sS --max-time 10 -o /dev/null -w '%{http_code}' -X POST "$url" -H 'Content-Type: application/json' \
        -H 'Accept: application/json, text/event-stream' -H "Mcp-Session-Id: $sid" -H "MCP-Protocol-Version: $PROTO" \
        -d '{"jsonrpc":"2.0","method":"notifications/initialized"}') || code=000
    if [ "$code" != 202 ] && [ "$code" != 200 ]; then
        echo "notifications/initialized answered HTTP $code" >"$diag"
        return 1
    fi
    printf '%s\n' "$sid"
}

# One ping with curl first, so a misconfigured run is seen before wrk hammers it.
check_ping() {
    local url=$1 sid=$2 code
    code=$(curl -sS --max-time 10 -o "$tmp/ping.body" -w '%{http_code}' -X POST "$url" -H 'Content-Type: application/json' \
        -H 'Accept: application/json, text/event-stream' -H "Mcp-Session-Id: $sid" -H "MCP-Protocol-Version: $PROTO" \
        -d '{"jsonrpc":"2.0","id":1,"method":"ping"}') || code=000
    if [ "$code" != 200 ] || ! grep -q '"result"' "$tmp/ping.body"; then
        echo "ping answered HTTP $code: $(head -c 300 "$tmp/ping.body")"
        return 1
    fi
}

# Runs wrk; sets R_RPS R_P50 R_P90 R_P99 R_MAX R_REQ R_ERR R_NON2XX.
run_wrk() {
    local name=$1 url=$2 sid=$3 out="$tmp/wrk-$1.txt" line
    echo "-- wrk -t$THREADS -c$CONNS -d$DURATION --latency ($name, pinning: $PINNING)"
    MCP_SESSION_ID=$sid MCP_PROTOCOL_VERSION=$PROTO "${CLIENT_PIN[@]}" \
        wrk -t"$THREADS" -c"$CONNS" -d"$DURATION" --latency -s "$ROOT/scripts/bench-ping.lua" "$url" >"$out" 2>&1 || {
        echo "wrk failed:"; cat "$out"; return 1; }
    grep -v '^BENCH ' "$out" | sed 's/^/   /'
    line=$(grep '^BENCH ' "$out" | tail -1)
    [ -n "$line" ] || { echo "wrk printed no BENCH line"; return 1; }
    field() { sed -E "s/.* $1=([^ ]+).*/\1/" <<<"$line"; }
    R_REQ=$(field requests); R_RPS=$(field rps); R_P50=$(field p50_ms); R_P90=$(field p90_ms)
    R_P99=$(field p99_ms); R_MAX=$(field max_ms); R_ERR=$(field errors); R_NON2XX=$(field non2xx)
}

row() { printf '  %-30s %11s %9s %9s %9s %9s %10s %7s\n' "$@"; }

# ---------------------------------------------------------------- mcp-sandboxd
port=$(free_port)
url="http://127.0.0.1:$port/mcp"
echo "== mcp-sandboxd $("$BIN" --version 2>/dev/null || true) on 127.0.0.1:$port"
"${SERVER_PIN[@]}" "$BIN" --host 127.0.0.1 --port "$port" --log-level warn --workspace-root "$tmp/ws" \
    >"$tmp/sandboxd.log" 2>&1 &
spid=$!
pids+=("$spid")
wait_http "http://127.0.0.1:$port/health" "$spid" "$tmp/sandboxd.log"
sid=$(mcp_session "$url" "$tmp/diag") || { cat "$tmp/diag"; exit 1; }
check_ping "$url" "$sid" || exit 1
run_wrk mcp-sandboxd "$url" "$sid"
O_RPS=$R_RPS O_P50=$R_P50 O_P90=$R_P90 O_P99=$R_P99 O_MAX=$R_MAX O_REQ=$R_REQ O_ERR=$R_ERR O_NON2XX=$R_NON2XX
stop_pid "$spid"

# ---------------------------------------------------------------- server-everything
T_OK=0
T_WHY=""
T_NAME="server-everything"
everything() {
    if [ "${BENCH_SKIP_EVERYTHING:-0}" = 1 ]; then T_WHY="BENCH_SKIP_EVERYTHING=1"; return 1; fi
    if ! command -v node >/dev/null || ! command -v npm >/dev/null; then T_WHY="node/npm not installed"; return 1; fi
    local dir="$tmp/everything" spec="@modelcontextprotocol/server-everything@${EVERYTHING_VERSION:-latest}"
    echo
    echo "== installing $spec (npm install --prefix, temp dir)"
    if ! npm install --prefix "$dir" --no-audit --no-fund --loglevel=error --no-save --fetch-timeout=30000 --fetch-retries=1 "$spec" >"$tmp/npm.log" 2>&1; then
        T_WHY="npm install failed: $(tail -3 "$tmp/npm.log" | tr '\n' ' ')"; return 1
    fi
    local pkg="$dir/node_modules/@modelcontextprotocol/server-everything"
    local entry="$pkg/dist/index.js" ver
    ver=$(node -p "require('$pkg/package.json').version" 2>/dev/null || echo '?')
    T_NAME="server-everything $ver"
    [ -f "$entry" ] || { T_WHY="$entry not found in the package"; return 1; }
    local eport eurl epid
    eport=$(free_port)
    eurl="http://127.0.0.1:$eport/mcp"
    echo "== $T_NAME (node $(node --version), streamableHttp) on port $eport"
    # it logs a line per request on stdout: keep that off the terminal
    PORT=$eport NODE_ENV=production "${SERVER_PIN[@]}" node "$entry" streamableHttp >/dev/null 2>"$tmp/everything.log" &
    epid=$!
    pids+=("$epid")
    # no health endpoint: a sessionless POST answering 400 means it is up
    wait_http "$eurl" "$epid" "$tmp/everything.log" >"$tmp/diag" || { T_WHY="did not start: $(tr '\n' ' ' <"$tmp/diag")"; return 1; }
    local esid
    esid=$(mcp_session "$eurl" "$tmp/diag") || { T_WHY="$(tr '\n' ' ' <"$tmp/diag")"; return 1; }
    check_ping "$eurl" "$esid" >"$tmp/diag" || { T_WHY="$(cat "$tmp/diag")"; return 1; }
    run_wrk server-everything "$eurl" "$esid" || { T_WHY="wrk run failed"; return 1; }
    stop_pid "$epid"
    T_OK=1
}
everything || true

# ---------------------------------------------------------------- summary
echo
echo "== ping over Streamable HTTP: one session, wrk -t$THREADS -c$CONNS -d$DURATION (pinning: $PINNING)"
row "server" "req/s" "p50 ms" "p90 ms" "p99 ms" "max ms" "requests" "errors"
row "mcp-sandboxd" "$O_RPS" "$O_P50" "$O_P90" "$O_P99" "$O_MAX" "$O_REQ" "$((O_ERR + O_NON2XX))"
if [ "$T_OK" = 1 ]; then
    row "$T_NAME" "$R_RPS" "$R_P50" "$R_P90" "$R_P99" "$R_MAX" "$R_REQ" "$((R_ERR + R_NON2XX))"
    awk -v a="$O_RPS" -v b="$R_RPS" -v c="$O_P50" -v d="$R_P50" -v e="$O_P99" -v f="$R_P99" 'BEGIN {
        printf "  ratio ours/theirs, req/s: %.2fx\n", (b > 0 ? a / b : 0);
        printf "  ratio theirs/ours, p50 latency: %.2fx   p99 latency: %.2fx\n", (c > 0 ? d / c : 0), (e > 0 ? f / e : 0) }'
else
    echo "  $T_NAME: skipped ($T_WHY)"
fi
echo "  (errors = socket errors + non-2xx answers)"
