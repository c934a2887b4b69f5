// Retained output and what the server says about itself (issue 11, items 8-10):
// --max-retained-bytes per session and --max-retained-bytes-total per server
// free the output of the runs that finished first (status kept, Redis copy
// still readable), /metrics shows the retained bytes, a flood's output arrives
// whole and in order through the per-turn budget, and /health without the
// token says only status, version, uptime and sessions.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { call, connect, sleep, startRedis, startServer, waitFor } from './helpers.mjs';

// 25 lines of 1000 digits: about 28 KB retained (JSON + per-event overhead), so
// two such runs fit under 64 KiB and a third does not. Plain sh, no coreutils.
const GEN = "i=0; while [ $i -lt 25 ]; do printf '%01000d\\n' $i; i=$((i+1)); done";
const lines = (r) => r.output.filter((e) => e.type === 'stdout').map((e) => e.data);

const metricsText = async (server, headers = {}) => (await fetch(`${server.base}/metrics`, { headers })).text();
const sample = (text, name) => Number(text.match(new RegExp(`^mcp_sandboxd_${name} (\\S+)$`, 'm'))?.[1]);

async function finish(client, id) {
  for (;;) {
    const r = await call(client, 'get_execution_output', { execution_id: id, wait: true });
    assert.ok(!r._result.isError, `get_execution_output failed: ${r.error}`);
    if (r.status !== 'running' && r.status !== 'pending') return r;
  }
}

async function run(client, command) {
  const r = await call(client, 'execute_code', { command });
  assert.ok(!r._result.isError, r.error);
  assert.equal(r.status, 'completed');
  assert.equal(lines(r).length, 25);
  return r.execution_id;
}

// The output is held: all 25 lines, in order.
async function assertHeld(client, id, what) {
  const r = await call(client, 'get_execution_output', { execution_id: id });
  assert.ok(!r._result.isError, `${what}: ${r._result.content?.[0]?.text}`);
  const l = lines(r);
  assert.equal(l.length, 25, `${what}: ${l.length} lines`);
  assert.equal(Number(l[24]), 24, what);
}

// The output was released; the status is still there.
async function assertReleased(client, id, what) {
  const r = await call(client, 'get_execution_output', { execution_id: id });
  assert.ok(r._result.isError, `${what}: expected the output to be released, got ${JSON.stringify(r).slice(0, 300)}`);
  assert.match(r._result.content[0].text, /released/, what);
  assert.match(r._result.content[0].text, /--max-retained-bytes/, what);
  const st = await call(client, 'get_execution_status', { execution_id: id });
  assert.ok(!st._result.isError, st.error);
  assert.equal(st.status, 'completed', `${what}: status kept`);
  assert.equal(st.exit_code, 0, `${what}: exit code kept`);
}

// One server started with `args` and two sessions on it, a and b, for a describe block.
function twoSessions(args) {
  const ctx = {};
  before(async () => {
    ctx.server = await startServer({ args });
    ctx.a = (await connect(ctx.server)).client;
    ctx.b = (await connect(ctx.server)).client;
  });
  after(async () => {
    await ctx.a?.close();
    await ctx.b?.close();
    await ctx.server?.stop();
  });
  return ctx;
}

describe('--max-retained-bytes (per session)', () => {
  const ctx = twoSessions(['--max-retained-bytes', '64K']);

  test('the run that finished first loses its output, not the one that started first; other sessions keep theirs', async () => {
    const { server, a, b } = ctx;
    const other = await run(b, GEN);
    // L starts first but finishes after S1
    const l = await call(a, 'execute_code_async', { command: `${GEN}; read x; echo done-$x`, interactive: true });
    assert.ok(!l._result.isError, l.error);
    for (;;) {
      const r = await call(a, 'get_execution_output', { execution_id: l.execution_id });
      if (lines(r).length >= 25) break;
      await sleep(20);
    }
    const s1 = await run(a, GEN);
    const sent = await call(a, 'send_stdin', { execution_id: l.execution_id, input_data: 'L' });
    assert.ok(!sent._result.isError, sent.error);
    const lr = await finish(a, l.execution_id);
    assert.equal(lines(lr).at(-1), 'done-L');
    // two runs' output fits under 64 KiB
    await assertHeld(a, s1, 'S1 before the third run');
    let m = await metricsText(server);
    assert.equal(sample(m, 'output_released_total'), 0);
    const before3 = sample(m, 'retained_output_bytes');
    assert.ok(before3 > 3 * 25 * 1000, `retained ${before3}`);

    const s2 = await run(a, GEN);
    await assertReleased(a, s1, 'S1 (finished first)');
    const lh = await call(a, 'get_execution_output', { execution_id: l.execution_id });
    assert.equal(lines(lh).length, 26, 'L (started first, finished second) keeps its output');
    await assertHeld(a, s2, 'S2 (the newest)');
    await assertHeld(b, other, "the other session's run");
    m = await metricsText(server);
    assert.equal(sample(m, 'output_released_total'), 1);
    const retained = sample(m, 'retained_output_bytes');
    assert.ok(retained < before3 + 30000 && retained > 3 * 25 * 1000, `retained ${retained} (before the third run ${before3})`);
  });
});

describe('--max-retained-bytes-total (per server)', () => {
  const ctx = twoSessions(['--max-retained-bytes-total', '64K']);

  test("the server's oldest finished run is released, whichever session owns it", async () => {
    const { server, a, b } = ctx;
    const r1 = await run(a, GEN);
    const r2 = await run(b, GEN);
    await assertHeld(a, r1, 'R1 before the third run');
    const r3 = await run(b, GEN);
    await assertReleased(a, r1, "R1 (session A's, finished first)");
    await assertHeld(b, r2, 'R2');
    await assertHeld(b, r3, 'R3');
    const m = await metricsText(server);
    assert.ok(sample(m, 'retained_output_bytes') <= 65536, m);
    assert.match(m, /^mcp_sandboxd_config_info\{.*max_retained_bytes_total="65536".*\} 1$/m);
  });
});

describe('retained totals follow freed runs', () => {
  let server;
  before(async () => { server = await startServer({ args: ['--max-retained-bytes-total', '64K'] }); });
  after(async () => { await server?.stop(); });

  test("a freed run's bytes leave the totals: they never count against later runs", async () => {
    const a = await connect(server);
    await run(a.client, GEN);
    await run(a.client, GEN);
    assert.ok(sample(await metricsText(server), 'retained_output_bytes') > 2 * 25 * 1000);
    await a.transport.terminateSession(); // the session's finished runs are freed
    await a.client.close();
    await waitFor(async () => sample(await metricsText(server), 'retained_output_bytes') === 0,
      { what: 'retained_output_bytes back to 0 after the session ended' });
    const { client: b } = await connect(server);
    const r1 = await run(b, GEN);
    const r2 = await run(b, GEN);
    await assertHeld(b, r1, "the other session's first run (fits with the second)");
    await assertHeld(b, r2, "the other session's second run");
    assert.equal(sample(await metricsText(server), 'output_released_total'), 0);
    await b.close();
  });
});

describe('released output with Redis', () => {
  let redis, server, client;
  before(async () => {
    redis = await startRedis();
    server = await startServer({ env: { REDIS_URL: redis.url }, args: ['--max-retained-bytes', '64K'] });
    ({ client } = await connect(server));
  });
  after(async () => {
    await client?.close();
    await server?.stop();
    await redis?.stop();
  });

  test('is still read from Redis', async () => {
    const s1 = await run(client, GEN);
    await run(client, GEN);
    // S1's copy is in Redis before it is released here
    for (;;) {
      if (Number(await redis.acli('LLEN', `execution:${s1}:output`)) === 27) break;
      await sleep(20);
    }
    await run(client, GEN);
    assert.equal(sample(await metricsText(server), 'output_released_total'), 1);
    const r = await call(client, 'get_execution_output', { execution_id: s1 });
    assert.ok(!r._result.isError, r._result.content?.[0]?.text);
    assert.equal(r.source, 'redis');
    assert.equal(r.dropped_events, 0); // the one formatter: a remote read has it too
    assert.equal(lines(r).length, 25);
    assert.equal(r.status, 'completed');
  });
});

describe('a flood through the per-turn budget', () => {
  let server, client, other;
  before(async () => {
    server = await startServer({ args: ['--max-events', '300000', '--max-output-bytes', '64M'] });
    ({ client } = await connect(server));
    ({ client: other } = await connect(server));
  });
  after(async () => {
    await client?.close();
    await other?.close();
    await server?.stop();
  });

  test('every line arrives once, in order, on both streams; another session is served meanwhile', async () => {
    const start = await call(client, 'execute_code_async', { command: 'seq 1 200000; seq 1 50000 >&2' });
    assert.ok(!start._result.isError, start.error);
    const seen = await call(other, 'list_executions', {});
    assert.ok(!seen._result.isError, seen.error);
    const r = await finish(client, start.execution_id);
    assert.equal(r.status, 'completed');
    assert.equal(r.dropped_events, 0);
    const out = lines(r);
    assert.equal(out.length, 200000);
    for (let i = 0; i < out.length; i++) if (out[i] !== String(i + 1)) assert.fail(`stdout line ${i}: ${out[i]}`);
    const err = r.output.filter((e) => e.type === 'stderr').map((e) => e.data);
    assert.equal(err.length, 50000);
    for (let i = 0; i < err.length; i++) if (err[i] !== String(i + 1)) assert.fail(`stderr line ${i}: ${err[i]}`);
    assert.ok(!r.output.some((e) => e.partial), 'no line was cut');
  });
});

describe('/health and /metrics with a token', () => {
  const token = 'output-test-token-5b1f';
  let server;
  before(async () => { server = await startServer({ token }); });
  after(async () => { await server?.stop(); });

  test('/health without the token: status, version, uptime and sessions only', async () => {
    const r = await fetch(`${server.base}/health`);
    assert.equal(r.status, 200);
    const h = await r.json();
    assert.deepEqual(Object.keys(h).sort(), ['sessions', 'status', 'uptime_seconds', 'version']);
  });

  test('/health with the token adds the details; a wrong token does not', async () => {
    const h = await (await fetch(`${server.base}/health`, { headers: { authorization: `Bearer ${token}` } })).json();
    assert.equal(typeof h.executions?.running, 'number');
    assert.equal(h.redis, 'disabled');
    assert.equal(typeof h.sandbox?.available, 'boolean');
    assert.equal(typeof h.replica, 'string');
    const w = await (await fetch(`${server.base}/health`, { headers: { authorization: `Bearer ${token}x` } })).json();
    assert.deepEqual(Object.keys(w).sort(), ['sessions', 'status', 'uptime_seconds', 'version']);
  });

  test('/metrics needs the token and carries the configuration and retained bytes', async () => {
    assert.equal((await fetch(`${server.base}/metrics`)).status, 401);
    const m = await metricsText(server, { authorization: `Bearer ${token}` });
    assert.equal(sample(m, 'retained_output_bytes'), 0);
    assert.match(m, /^mcp_sandboxd_config_info\{isolation="[a-z]+",.*max_output_bytes="67108864",max_retained_bytes="134217728".*\} 1$/m);
    assert.match(m, /^mcp_sandboxd_sandbox_available [01]$/m);
  });
});
