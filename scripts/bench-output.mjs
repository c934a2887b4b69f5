// Driver for scripts/bench-retained.sh and scripts/bench-flood.sh (one MCP
// session per role, plain JSON-RPC through scripts/mcp-http.mjs).
//
//   node bench-output.mjs retained URL RUNS COMMAND
//     starts RUNS runs of COMMAND one after another (execute_code_async, then
//     get_execution_status until finished: the output itself is not read, so
//     no answer buffer inflates the figures), prints "BENCH runs=N".
//
//   node bench-output.mjs ping URL COMMAND SECONDS
//     session A starts COMMAND; session B sends JSON-RPC pings one after the
//     other until A's run finishes (or SECONDS pass), then prints
//     "BENCH pings=N p50_ms=.. p90_ms=.. p99_ms=.. max_ms=.. run_ms=.. status=..".
//     COMMAND "idle" measures the pings with no run at all.
import { RpcError, Session, request } from './mcp-http.mjs';

const [mode, url, ...rest] = process.argv.slice(2);

async function waitFinished(s, id) {
  for (;;) {
    const r = await s.call('get_execution_status', { execution_id: id });
    if (r.isError) throw new RpcError(r.text);
    if (r.sc.status !== 'running' && r.sc.status !== 'pending') return r.sc.status;
    await new Promise((res) => setTimeout(res, 50));
  }
}

async function retained(runs, command) {
  const s = await new Session(url, { name: 'bench-retained' }).open();
  for (let i = 0; i < runs; i++) {
    const r = await s.call('execute_code_async', { command });
    if (r.isError) throw new RpcError(r.text);
    const st = await waitFinished(s, r.sc.execution_id);
    if (st !== 'completed') throw new RpcError(`run ${i}: ${st}`);
  }
  console.log(`BENCH runs=${runs}`);
}

function pct(sorted, p) {
  let i = Math.ceil((p / 100) * sorted.length);
  if (i < 1) i = 1;
  return sorted[i - 1];
}

async function ping(command, seconds) {
  const a = await new Session(url, { name: 'bench-flood' }).open();
  const b = await new Session(url, { name: 'bench-ping' }).open();
  const t0 = performance.now();
  let done = command === 'idle';
  let status = 'idle';
  let runMs = 0;
  if (!done) {
    const r = await a.call('execute_code_async', { command, timeout_seconds: Math.max(5, seconds) });
    if (r.isError) throw new RpcError(r.text);
    waitFinished(a, r.sc.execution_id).then((st) => { status = st; runMs = performance.now() - t0; done = true; });
  }
  const lat = [];
  const until = t0 + seconds * 1000;
  while ((command === 'idle' ? lat.length < 2000 : !done) && performance.now() < until) {
    const s = performance.now();
    const r = await request(b.agent, b.target, 'POST', b.headers(), { jsonrpc: '2.0', id: b.nextId++, method: 'ping' });
    if (r.status !== 200) throw new RpcError(`ping: HTTP ${r.status}`);
    lat.push(performance.now() - s);
  }
  lat.sort((x, y) => x - y);
  const f = (v) => v.toFixed(3);
  console.log(`BENCH pings=${lat.length} p50_ms=${f(pct(lat, 50))} p90_ms=${f(pct(lat, 90))} p99_ms=${f(pct(lat, 99))} ` +
    `max_ms=${f(lat[lat.length - 1])} run_ms=${runMs.toFixed(0)} status=${status}`);
}

if (mode === 'retained') await retained(Number(rest[0]), rest[1]);
else if (mode === 'ping') await ping(rest[0], Number(rest[1]));
else {
  console.error('usage: bench-output.mjs retained URL RUNS COMMAND | ping URL COMMAND SECONDS');
  process.exit(2);
}
process.exit(0);
