#!/usr/bin/env bash
# Redis mirror throughput: one execution floods short lines (seq 1 N) and we
# measure, with the mirror on (a private redis-server) and off (no REDIS_URL):
#   - events produced and how long the run took;
#   - mirror on: the time from the start of the run until LLEN of
#     execution:{id}:output equals the events the replica holds, the events/s
#     that makes, and the final LLEN against the events produced;
#   - ping latency (p50/p90/p99/max) measured during the flood by a separate
#     client sending paced JSON-RPC pings on their own session (until the run
#     ends with the mirror off, until LLEN is complete with it on).
# The run is started with execute_code wait_for_completion=false and followed
# with get_execution_status, so that no 100+ MB tool result is built and sent:
# the figures are about the mirror, not about serializing the output.
# Prints figures only; no thresholds.
#
# Knobs (environment): BENCH_LINES [2000000], BENCH_MIRROR_TIMEOUT [120] (s to
# wait for LLEN), BENCH_PING_CONNS [2] (concurrent ping loops),
# BENCH_PING_INTERVAL_MS [2] (pause between pings of one loop), SANDBOXD_BIN.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
BIN=${SANDBOXD_BIN:-$ROOT/mcp-sandboxd}
LINES=${BENCH_LINES:-2000000}
MIRROR_TIMEOUT=${BENCH_MIRROR_TIMEOUT:-120}
PING_CONNS=${BENCH_PING_CONNS:-2}
PING_INTERVAL=${BENCH_PING_INTERVAL_MS:-2}
MAX_EVENTS=$((LINES + 1000000))

for c in redis-server redis-cli node curl; do
    command -v "$c" >/dev/null || { echo "$c is not installed" >&2; exit 1; }
done
[ -x "$BIN" ] || make mcp-sandboxd

source "$ROOT/scripts/bench-lib.sh"
bench_init mirror



wait_health() {
    local port=$1 pid=$2 logf=$3 i
    for i in $(seq 1 300); do
        if ! kill -0 "$pid" 2>/dev/null; then
            echo "server exited during startup:"; tail -20 "$logf"; return 1
        fi
        curl -sf -o /dev/null --max-time 2 "http://127.0.0.1:$port/health" && return 0
        sleep 0.05
    done
    echo "server did not answer /health within 15 s:"; tail -20 "$logf"; return 1
}

# ---------------------------------------------------------------- node clients
# Minimal Streamable HTTP client (JSON or SSE answers) shared by both scripts.
cat >"$tmp/mcp.mjs" <<'EOF'
export const PROTO = '2025-06-18';
export async function rpc(url, sid, body) {
  const headers = { 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-protocol-version': PROTO };
  if (sid) headers['mcp-session-id'] = sid;
  const r = await fetch(url, { method: 'POST', headers, body: JSON.stringify(body) });
  const text = await r.text();
  if (r.status === 202) return { status: 202, headers: r.headers };
  let msg;
  if ((r.headers.get('content-type') || '').includes('text/event-stream')) {
    for (const line of text.split('\n')) if (line.startsWith('data:')) msg = JSON.parse(line.slice(5));
  } else msg = JSON.parse(text);
  if (r.status !== 200 || !msg || msg.error) throw new Error(`HTTP ${r.status}: ${text.slice(0, 300)}`);
  return { status: r.status, headers: r.headers, msg };
}
export async function session(url, name) {
  const init = await rpc(url, null, { jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: PROTO, capabilities: {}, clientInfo: { name, version: '1' } } });
  const sid = init.headers.get('mcp-session-id');
  await rpc(url, sid, { jsonrpc: '2.0', method: 'notifications/initialized' });
  return sid;
}
let nextId = 2;
export async function tool(url, sid, name, args) {
  const r = await rpc(url, sid, { jsonrpc: '2.0', id: nextId++, method: 'tools/call', params: { name, arguments: args } });
  return r.msg.result;
}
EOF

# Pinger: paced pings on its own session until SIGTERM; then prints one line
# PING n=.. errors=.. p50_ms=.. p90_ms=.. p99_ms=.. max_ms=..
cat >"$tmp/ping.mjs" <<'EOF'
import { rpc, session } from './mcp.mjs';
const [url, conns, interval] = [process.argv[2], Number(process.argv[3]), Number(process.argv[4])];
const sid = await session(url, 'bench-ping');
const lat = [];
let errors = 0, stop = false;
process.on('SIGTERM', () => { stop = true; });
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
async function loop() {
  while (!stop) {
    const t0 = performance.now();
    try { await rpc(url, sid, { jsonrpc: '2.0', id: 1, method: 'ping' }); lat.push(performance.now() - t0); } catch { errors++; }
    if (interval > 0) await sleep(interval);
  }
}
console.log('READY');
await Promise.all(Array.from({ length: conns }, loop));
lat.sort((a, b) => a - b);
const q = (p) => (lat.length ? lat[Math.min(lat.length - 1, Math.floor((p / 100) * lat.length))] : NaN).toFixed(3);
console.log(`PING n=${lat.length} errors=${errors} p50_ms=${q(50)} p90_ms=${q(90)} p99_ms=${q(99)} max_ms=${(lat.length ? lat[lat.length - 1] : NaN).toFixed(3)}`);
EOF

# Flood: starts the run, follows it, and (mirror on) polls LLEN over a raw RESP
# connection until it equals the events the replica holds. Prints one line
# FLOOD events=.. held=.. dropped=.. run_ms=.. mirror_ms=.. llen=.. complete=0|1 status=..
# and signals the pinger (pid in argv) as soon as the measured window ends.
cat >"$tmp/flood.mjs" <<'EOF'
import net from 'node:net';
import { session, tool } from './mcp.mjs';
const [url, lines, redisPort, pingPid, timeoutS] = process.argv.slice(2);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
function llenClient(port) { // one RESP connection; llen(key) -> number
  const sock = net.connect(Number(port), '127.0.0.1');
  let buf = '', waiting = null;
  sock.setEncoding('utf8');
  sock.on('data', (d) => { buf += d; const i = buf.indexOf('\r\n'); if (i >= 0 && waiting) { const line = buf.slice(0, i); buf = buf.slice(i + 2); const w = waiting; waiting = null; w(line); } });
  return {
    llen: (key) => new Promise((resolve, reject) => {
      waiting = (line) => (line[0] === ':' ? resolve(Number(line.slice(1))) : reject(new Error(line)));
      sock.write(`*2\r\n$4\r\nLLEN\r\n$${Buffer.byteLength(key)}\r\n${key}\r\n`);
    }),
    close: () => sock.end(),
  };
}
const sid = await session(url, 'bench-flood');
const t0 = performance.now();
const started = await tool(url, sid, 'execute_code', { command: `seq 1 ${lines}`, wait_for_completion: false });
const id = started.structuredContent.execution_id;
if (!id) throw new Error(`execute_code: ${JSON.stringify(started).slice(0, 300)}`);
let st;
for (;;) {
  st = (await tool(url, sid, 'get_execution_status', { execution_id: id })).structuredContent;
  if (st.status !== 'running' && st.status !== 'pending') break;
  await sleep(20);
}
const runMs = performance.now() - t0;
// events produced = the newest event id; held = what memory keeps (= what Redis must hold)
const tail = (await tool(url, sid, 'get_execution_output', { execution_id: id, last_event_id: String(lines) })).structuredContent;
const events = Number(tail.last_event_id);
const dropped = tail.dropped_events;
const held = events - dropped;
let mirrorMs = NaN, llen = NaN, complete = 0;
if (redisPort) {
  const r = llenClient(redisPort);
  const deadline = performance.now() + Number(timeoutS) * 1000;
  for (;;) {
    llen = await r.llen(`execution:${id}:output`);
    if (llen === held) { mirrorMs = performance.now() - t0; complete = 1; break; }
    if (performance.now() > deadline) break;
    await sleep(5);
  }
  r.close();
}
if (pingPid) process.kill(Number(pingPid), 'SIGTERM');
console.log(`FLOOD events=${events} held=${held} dropped=${dropped} run_ms=${runMs.toFixed(0)} mirror_ms=${mirrorMs.toFixed(0)} llen=${llen} complete=${complete} status=${st.status} id=${id}`);
EOF

# ---------------------------------------------------------------- one mode
# run_mode NAME on|off: sets F_* (flood) and P_* (ping) results and H_MIRROR.
run_mode() {
    local name=$1 mode=$2 rport="" rpid="" env=() port spid ppid fpid line
    echo "== $name"
    if [ "$mode" = on ]; then
        rport=$(free_port)
        mkdir -p "$tmp/redis-$name"
        redis-server --port "$rport" --bind 127.0.0.1 --save '' --appendonly no --dir "$tmp/redis-$name" \
            --logfile "$tmp/redis-$name/redis.log" &
        rpid=$!
        pids+=("$rpid")
        for _ in $(seq 1 200); do redis-cli -p "$rport" PING 2>/dev/null | grep -q PONG && break; sleep 0.05; done
        env=(REDIS_URL="redis://127.0.0.1:$rport")
        echo "   redis-server $(redis-server --version | sed -E 's/.*v=([^ ]+).*/\1/') on 127.0.0.1:$rport"
    fi
    port=$(free_port)
    env "${env[@]+"${env[@]}"}" "$BIN" --host 127.0.0.1 --port "$port" --log-level warn --log-file "$tmp/sandboxd-$name.log" \
        --workspace-root "$tmp/ws-$name" --max-events "$MAX_EVENTS" --max-output-bytes 1G --timeout 600 \
        >"$tmp/sandboxd-$name.out" 2>&1 &
    spid=$!
    pids+=("$spid")
    wait_health "$port" "$spid" "$tmp/sandboxd-$name.out"
    local url="http://127.0.0.1:$port/mcp"
    node "$tmp/ping.mjs" "$url" "$PING_CONNS" "$PING_INTERVAL" >"$tmp/ping-$name.txt" 2>&1 &
    ppid=$!
    pids+=("$ppid")
    for _ in $(seq 1 200); do grep -q READY "$tmp/ping-$name.txt" 2>/dev/null && break; sleep 0.05; done
    node "$tmp/flood.mjs" "$url" "$LINES" "$rport" "$ppid" "$MIRROR_TIMEOUT" >"$tmp/flood-$name.txt" 2>&1 || {
        echo "flood client failed:"; cat "$tmp/flood-$name.txt"; return 1; }
    wait "$ppid" 2>/dev/null || true
    local keep=() q
    for q in "${pids[@]}"; do [ "$q" = "$ppid" ] || keep+=("$q"); done
    pids=("${keep[@]+"${keep[@]}"}")
    line=$(grep '^FLOOD ' "$tmp/flood-$name.txt")
    field() { sed -E "s/.* $1=([^ ]+).*/\1/" <<<"$2"; }
    F_EVENTS=$(field events "$line"); F_HELD=$(field held "$line"); F_RUN=$(field run_ms "$line")
    F_MIRROR=$(field mirror_ms "$line"); F_LLEN=$(field llen "$line"); F_COMPLETE=$(field complete "$line")
    F_STATUS=$(field status "$line")
    line=$(grep '^PING ' "$tmp/ping-$name.txt" || echo "PING n=0 errors=0 p50_ms=NaN p90_ms=NaN p99_ms=NaN max_ms=NaN")
    P_N=$(field n "$line"); P_ERR=$(field errors "$line"); P_P50=$(field p50_ms "$line"); P_P90=$(field p90_ms "$line")
    P_P99=$(field p99_ms "$line"); P_MAX=$(field max_ms "$line")
    H_MIRROR=$(curl -s "http://127.0.0.1:$port/health" | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>{const h=JSON.parse(s);console.log(h.mirror?JSON.stringify(h.mirror):"(redis "+h.redis+")")})')
    echo "   run: status $F_STATUS, $F_EVENTS events produced ($F_HELD held) in $F_RUN ms"
    [ "$mode" = on ] && echo "   mirror: LLEN $F_LLEN of $F_HELD held, complete=$F_COMPLETE after ${F_MIRROR} ms"
    echo "   ping during the flood: n=$P_N errors=$P_ERR p50 ${P_P50} ms p90 ${P_P90} ms p99 ${P_P99} ms max ${P_MAX} ms"
    echo "   /health mirror: $H_MIRROR"
    stop_pid "$spid"
    [ -n "$rpid" ] && stop_pid "$rpid"
    return 0
}

echo "== mcp-sandboxd $("$BIN" --version 2>/dev/null || true): flood of seq 1 $LINES, $(nproc) CPUs," \
    "pings: $PING_CONNS loops, ${PING_INTERVAL} ms apart"
run_mode redis-on on
ON_EVENTS=$F_EVENTS ON_HELD=$F_HELD ON_RUN=$F_RUN ON_MIRROR=$F_MIRROR ON_LLEN=$F_LLEN ON_COMPLETE=$F_COMPLETE
ON_P50=$P_P50 ON_P90=$P_P90 ON_P99=$P_P99 ON_MAX=$P_MAX ON_N=$P_N ON_ERR=$P_ERR
echo
run_mode redis-off off
OFF_EVENTS=$F_EVENTS OFF_RUN=$F_RUN OFF_P50=$P_P50 OFF_P90=$P_P90 OFF_P99=$P_P99 OFF_MAX=$P_MAX OFF_N=$P_N OFF_ERR=$P_ERR

# ---------------------------------------------------------------- summary
echo
echo "== summary (seq 1 $LINES in one execution)"
awk -v ev="$ON_EVENTS" -v held="$ON_HELD" -v run="$ON_RUN" -v mir="$ON_MIRROR" -v llen="$ON_LLEN" -v comp="$ON_COMPLETE" \
    -v oev="$OFF_EVENTS" -v orun="$OFF_RUN" -v timeout="$MIRROR_TIMEOUT" 'BEGIN {
    printf "  redis on : %d events produced, run %.2f s (%.0f events/s produced)\n", ev, run / 1000, (run > 0 ? ev / (run / 1000) : 0);
    if (comp == 1)
        printf "             mirrored in %.2f s from the start of the run: %.0f events/s mirrored\n", mir / 1000, held / (mir / 1000);
    else
        printf "             mirror NOT complete after %s s of waiting\n", timeout;
    printf "             final LLEN %d vs %d events produced (%d held in memory): %d missing\n", llen, ev, held, held - llen;
    printf "  redis off: %d events produced, run %.2f s (%.0f events/s produced)\n", oev, orun / 1000, (orun > 0 ? oev / (orun / 1000) : 0);
}'
printf '  %-10s %8s %8s %10s %10s %10s %10s\n' "ping" "n" "errors" "p50 ms" "p90 ms" "p99 ms" "max ms"
printf '  %-10s %8s %8s %10s %10s %10s %10s\n' "redis on" "$ON_N" "$ON_ERR" "$ON_P50" "$ON_P90" "$ON_P99" "$ON_MAX"
printf '  %-10s %8s %8s %10s %10s %10s %10s\n' "redis off" "$OFF_N" "$OFF_ERR" "$OFF_P50" "$OFF_P90" "$OFF_P99" "$OFF_MAX"
awk -v a="$ON_P99" -v b="$OFF_P99" -v c="$ON_P50" -v d="$OFF_P50" 'BEGIN {
    printf "  ping ratio on/off: p50 %.2fx, p99 %.2fx\n", (d > 0 ? c / d : 0), (b > 0 ? a / b : 0) }'
echo "  (targets to compare with: >= 200000 events/s mirrored, 0 missing, ping p99 within 2x of Redis off)"
