// Replicas sharing one Redis, each started directly (no nginx: cluster.test.mjs
// covers the path through nginx): heartbeats, a replica killed with runs in
// flight (its runs become failed / "replica lost", read through a survivor
// that adopts the session), a restart under the same id, a clean stop, a
// replica that was frozen past its heartbeat and comes back, session records,
// and /metrics checked by Prometheus' own promtool.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { ROOT, call, connect, metric, raw, rawSession, sessionKey, sleep, startRedis, startServer, waitFor } from './helpers.mjs';
import { removeRunCgroups, replicaOf } from './cgroup-helpers.mjs';

const PROMTOOL = path.join(ROOT, '.tools', 'promtool');


const meta = async (redis, id) => {
  const s = await redis.acli('GET', `execution:${id}`);
  return s === '' ? null : JSON.parse(s);
};
const events = async (redis, id) => {
  const s = await redis.acli('LRANGE', `execution:${id}:output`, 0, -1);
  return s === '' ? [] : s.split('\n').map((l) => JSON.parse(l));
};

// A replica on `redis` with a short heartbeat.
const replica = (redis, id, { heartbeat = 1, args = [], env = {} } = {}) =>
  startServer({ env: { REDIS_URL: redis.url, ...env }, args: ['--replica-id', id, '--heartbeat', String(heartbeat), ...args] });

// tools/call over raw HTTP with a given session id (a client whose replica changed).
async function rawTool(server, sid, name, args) {
  const r = await raw(server, {
    headers: { 'mcp-session-id': sid, 'mcp-protocol-version': '2025-06-18' },
    body: { jsonrpc: '2.0', id: 7, method: 'tools/call', params: { name, arguments: args } },
  });
  return { status: r.status, json: r.json, result: r.json?.result?.structuredContent, text: r.text };
}

// The replica watcher's completed lost-replica sweeps (/metrics).
const sweeps = (server) => metric(server, 'replica_sweeps_total');
// Waits until `server` has completed `n` more sweeps than now: what it would
// have done by then, it has done.
const moreSweeps = async (server, n = 2) => {
  const from = await sweeps(server);
  await waitFor(async () => (await sweeps(server)) >= from + n, { what: `${n} more sweeps` });
};

const killHard = async (server) => {
  server.proc.kill('SIGKILL');
  await server.exited;
  await removeRunCgroups(replicaOf(server)); // what the killed server could not remove itself
};

describe('heartbeat', () => {
  let redis, a;
  before(async () => {
    redis = await startRedis();
    a = await replica(redis, 'hb-a:1', { heartbeat: 2 });
  });
  after(async () => {
    await a?.stop();
    await redis?.stop();
  });

  test('replica:{id} names this process with a TTL of three heartbeats, and the id is in `replicas`', async () => {
    await waitFor(async () => (await redis.acli('EXISTS', 'replica:hb-a:1')) === '1', { what: 'heartbeat key' });
    const hb = JSON.parse(await redis.acli('GET', 'replica:hb-a:1'));
    assert.equal(hb.replica, 'hb-a:1');
    assert.equal(hb.pid, a.proc.pid);
    assert.equal(hb.heartbeat_seconds, 2);
    assert.match(hb.instance, /^[0-9a-f]{16}$/);
    const ttl = Number(await redis.acli('TTL', 'replica:hb-a:1'));
    assert.ok(ttl > 0 && ttl <= 6, `TTL ${ttl}`);
    assert.match(await redis.acli('SMEMBERS', 'replicas'), /hb-a:1/);
    const m = await (await fetch(`${a.base}/metrics`)).text();
    assert.match(m, /^mcp_sandboxd_build_info\{version="[^"]*",replica="hb-a:1"\} 1$/m);
    assert.match(m, /^mcp_sandboxd_config_info\{.*heartbeat_seconds="2".*\} 1$/m);
  });

  test('a running execution is listed in replica:{id}:running until it ends', async () => {
    const { client } = await connect(a);
    const r = await call(client, 'execute_code_async', { command: 'sleep 2' });
    await waitFor(async () => (await redis.acli('HEXISTS', 'replica:hb-a:1:running', r.execution_id)) === '1',
      { what: 'running entry' });
    const hb = JSON.parse(await redis.acli('GET', 'replica:hb-a:1'));
    assert.equal(await redis.acli('HGET', 'replica:hb-a:1:running', r.execution_id), hb.instance);
    await call(client, 'get_execution_output', { execution_id: r.execution_id, wait: true });
    await waitFor(async () => (await redis.acli('HEXISTS', 'replica:hb-a:1:running', r.execution_id)) === '0',
      { what: 'running entry removed' });
    await client.close();
  });

  test('a clean stop removes the heartbeat and leaves no run to sweep', async () => {
    const b = await replica(redis, 'hb-b:1');
    const { client } = await connect(b);
    const r = await call(client, 'execute_code_async', { command: 'sleep 300' });
    await waitFor(async () => (await meta(redis, r.execution_id))?.status === 'running', { what: 'running in Redis' });
    await client.close();
    await b.stop();
    assert.equal(await redis.acli('EXISTS', 'replica:hb-b:1'), '0');
    assert.doesNotMatch(await redis.acli('SMEMBERS', 'replicas'), /hb-b:1/);
    const m = await meta(redis, r.execution_id);
    assert.equal(m.status, 'cancelled', 'the run stopped by the shutdown is recorded as cancelled, not lost');
    assert.equal(await redis.acli('HLEN', 'replica:hb-b:1:running'), '0');
    await moreSweeps(a); /* a whole sweep of the survivor began after the stop */
    assert.doesNotMatch(a.log(), /replica hb-b:1 lost/);
  });
});

describe('a replica is killed with runs in flight', () => {
  let redis, a, b, sid, runId, doneId, beforeKill;
  before(async () => {
    redis = await startRedis();
    a = await replica(redis, 'node-a');
    b = await replica(redis, 'node-b');
    const { client, transport } = await connect(a);
    sid = transport.sessionId;
    const done = await call(client, 'execute_code', { command: 'echo finished' });
    doneId = done.execution_id;
    const r = await call(client, 'execute_code_async', { command: 'echo started; sleep 300' });
    runId = r.execution_id;
    await waitFor(async () => (await events(redis, runId)).some((e) => e.data === 'started'), { what: 'first line mirrored' });
    beforeKill = await events(redis, runId);
    await killHard(a);
  });
  after(async () => {
    await b?.stop();
    await redis?.stop();
  });

  test('a survivor marks its running execution failed / "replica lost"', async () => {
    const m = await waitFor(async () => {
      const x = await meta(redis, runId);
      return x?.status === 'failed' ? x : null;
    }, { ms: 15000, what: 'status failed in Redis' });
    assert.equal(m.error_message, 'replica lost');
    assert.equal(m.replica, 'node-a');
    assert.match(m.completed_at, /^\d{4}-\d\d-\d\dT/);
    const evs = await events(redis, runId);
    assert.deepEqual(evs.slice(0, beforeKill.length), beforeKill, 'earlier events kept');
    const last = evs[evs.length - 1];
    assert.equal(last.type, 'error');
    assert.equal(last.message, 'replica lost');
    assert.equal(last.event_id, String(Number(beforeKill[beforeKill.length - 1].event_id) + 1));
    assert.match(b.log(), /replica node-a lost \(no heartbeat for 3 s\): marked its 1 running executions failed/);
    assert.equal(await redis.acli('EXISTS', 'replica:node-a:running'), '0');
    assert.doesNotMatch(await redis.acli('SMEMBERS', 'replicas'), /node-a/);
  });

  test('a finished execution of the lost replica keeps its status', async () => {
    const m = await meta(redis, doneId);
    assert.equal(m.status, 'completed');
    assert.equal(m.exit_code, 0);
  });

  test('the survivor adopts the session and answers from Redis', async () => {
    await waitFor(async () => (await meta(redis, runId))?.status === 'failed', { what: 'marked' });
    const st = await rawTool(b, sid, 'get_execution_status', { execution_id: runId });
    assert.equal(st.status, 200, st.text);
    assert.equal(st.result.status, 'failed');
    assert.equal(st.result.error_message, 'replica lost');
    const out = await rawTool(b, sid, 'get_execution_output', { execution_id: runId });
    assert.equal(out.result.source, 'redis');
    assert.equal(out.result.output.at(-1).message, 'replica lost');
    const list = await rawTool(b, sid, 'list_executions', {});
    assert.deepEqual(list.result.executions.map((e) => e.id).sort(), [doneId, runId].sort());
    assert.match(b.log(), /session [0-9a-f]{8} adopted from replica node-a/);
    const rec = JSON.parse(await redis.acli('GET', `mcp:session:${sessionKey(sid)}`));
    assert.equal(rec.replica, 'node-b', 'the record now names the adopter');
    // new runs in the adopted session work on the survivor
    const again = await rawTool(b, sid, 'execute_code', { command: 'echo on-b' });
    assert.equal(again.result.status, 'completed');
    assert.equal(again.result.output.find((e) => e.type === 'stdout').data, 'on-b');
  });

  test('/metrics on the survivor counts the lost replica and its run', async () => {
    const text = await (await fetch(`${b.base}/metrics`)).text();
    assert.match(text, /^mcp_sandboxd_replicas_lost_total 1$/m);
    assert.match(text, /^mcp_sandboxd_executions_marked_lost_total 1$/m);
  });
});

describe('restart under the same id, and a frozen replica', () => {
  let redis, b;
  before(async () => {
    redis = await startRedis();
    b = await replica(redis, 'watch-b');
  });
  after(async () => {
    await b?.stop();
    await redis?.stop();
  });

  test('a restarted replica settles what its previous process left running', async () => {
    // a heartbeat long enough that nobody else notices the restart
    const a1 = await replica(redis, 'same-id', { heartbeat: 20 });
    const { client } = await connect(a1);
    const r = await call(client, 'execute_code_async', { command: 'sleep 300' });
    await waitFor(async () => (await meta(redis, r.execution_id))?.status === 'running', { what: 'running' });
    await killHard(a1);
    const a2 = await replica(redis, 'same-id', { heartbeat: 20 });
    try {
      const m = await waitFor(async () => {
        const x = await meta(redis, r.execution_id);
        return x?.status === 'failed' ? x : null;
      }, { ms: 5000, what: 'previous run settled by the new process' });
      assert.equal(m.error_message, 'replica lost');
      assert.match(a2.log(), /replica same-id restarted: marked 1 executions of its previous process failed/);
      // the new process's own runs are not touched
      const { client: c2 } = await connect(a2);
      const r2 = await call(c2, 'execute_code_async', { command: 'sleep 300' });
      await waitFor(async () => (await meta(redis, r2.execution_id))?.status === 'running', { what: 'new run' });
      await moreSweeps(b); /* the survivor swept (twice) while the new run was listed */
      assert.equal((await meta(redis, r2.execution_id)).status, 'running');
      await c2.close();
    } finally {
      await a2.stop();
    }
  });

  test('a replica frozen past its heartbeat is marked lost, then rewrites the truth when it thaws', async () => {
    const a = await replica(redis, 'frozen-a');
    try {
      const { client } = await connect(a);
      const r = await call(client, 'execute_code_async', { command: 'echo one; sleep 300' });
      await waitFor(async () => (await events(redis, r.execution_id)).length >= 2, { what: 'events mirrored' });
      a.proc.kill('SIGSTOP');
      await waitFor(async () => (await meta(redis, r.execution_id))?.status === 'failed', { what: 'marked lost while frozen' });
      a.proc.kill('SIGCONT');
      // the thawed replica finds its heartbeat had lapsed and rewrites every execution it holds
      const m = await waitFor(async () => {
        const x = await meta(redis, r.execution_id);
        return x?.status === 'running' ? x : null;
      }, { what: 'status rewritten by the owner' });
      assert.equal(m.error_message, null);
      const evs = await events(redis, r.execution_id);
      assert.ok(!evs.some((e) => e.type === 'error'), 'the "replica lost" event is gone: the list was rewritten from memory');
      assert.match(a.log(), /our heartbeat had expired; rewriting every execution held here/);
      assert.equal(await redis.acli('HEXISTS', 'replica:frozen-a:running', r.execution_id), '1');
      const st = await call(client, 'get_execution_status', { execution_id: r.execution_id });
      assert.equal(st.status, 'running', 'the owner was right all along');
      await client.close();
    } finally {
      await a.stop();
    }
  });
});

describe('session records', () => {
  let redis, a, b;
  before(async () => {
    redis = await startRedis();
    a = await replica(redis, 'sess-a');
    b = await replica(redis, 'sess-b', { args: ['--session-ttl', '600'] });
  });
  after(async () => {
    await a?.stop();
    await b?.stop();
    await redis?.stop();
  });

  test('initialize writes mcp:session:{sha256 of the id} with the session TTL; the record holds no id', async () => {
    const sid = await rawSession(b);
    const rec = await waitFor(async () => {
      const s = await redis.acli('GET', `mcp:session:${sessionKey(sid)}`);
      return s ? JSON.parse(s) : null;
    }, { what: 'session record' });
    assert.equal(rec.id, undefined, 'the record must not hold the raw session id');
    assert.ok(!JSON.stringify(rec).includes(sid));
    assert.equal(rec.replica, 'sess-b');
    assert.equal(rec.protocol, '2025-06-18');
    assert.equal(rec.client, 'raw');
    const ttl = Number(await redis.acli('TTL', `mcp:session:${sessionKey(sid)}`));
    assert.ok(ttl > 590 && ttl <= 600, `TTL ${ttl}`);
  });

  test('a session nobody knows is still 404, without and with a well-formed id', async () => {
    for (const sid of ['0123456789abcdef0123456789abcdef', 'not-a-session-id']) {
      const r = await raw(a, { headers: { 'mcp-session-id': sid }, body: { jsonrpc: '2.0', id: 1, method: 'tools/list' } });
      assert.equal(r.status, 404);
      assert.equal(r.json.error.code, -32001);
    }
  });

  test('a session opened on one replica works on another (affinity moved while both live)', async () => {
    const { client, transport } = await connect(a);
    const sid = transport.sessionId;
    const r = await call(client, 'execute_code', { command: 'echo from-a' });
    await waitFor(async () => (await meta(redis, r.execution_id))?.status === 'completed', { what: 'mirrored' });
    const st = await rawTool(b, sid, 'get_execution_status', { execution_id: r.execution_id });
    assert.equal(st.status, 200, st.text);
    assert.equal(st.result.status, 'completed');
    // both replicas now serve it; the original keeps its own runs
    const again = await call(client, 'get_execution_status', { execution_id: r.execution_id });
    assert.equal(again.status, 'completed');
    await client.close();
  });

  test('cancel and stdin for a run held by another live replica are forwarded to it (legacy session, no auth)', async () => {
    const { client, transport } = await connect(a);
    const sid = transport.sessionId;
    const live = await call(client, 'execute_code_async', { command: 'cat', interactive: true });
    const done = await call(client, 'execute_code', { command: 'true' });
    await waitFor(async () => (await meta(redis, live.execution_id))?.status === 'running', { what: 'mirrored' });
    await waitFor(async () => (await meta(redis, done.execution_id))?.status === 'completed', { what: 'mirrored' });
    // the session (adopted on B) is the tenant: B forwards to A, which checks it owns the run
    const i = await rawTool(b, sid, 'send_stdin', { execution_id: live.execution_id, input_data: 'via-b' });
    assert.deepEqual(i.result, { success: true });
    await waitFor(async () => (await call(client, 'get_execution_output', { execution_id: live.execution_id })).output
      .some((e) => e.type === 'stdout' && e.data === 'via-b'), { what: 'the line sent through B, on A' });
    const c = await rawTool(b, sid, 'cancel_execution', { execution_id: live.execution_id });
    assert.deepEqual(c.result, { success: true, was_running: true });
    const f = await rawTool(b, sid, 'cancel_execution', { execution_id: done.execution_id });
    assert.equal(f.result.error, `Execution ${done.execution_id} already completed (status: completed)`);
    const n = await rawTool(b, sid, 'cancel_execution', { execution_id: '00000000-0000-4000-8000-000000000000' });
    assert.equal(n.result.error, 'Execution not found: 00000000-0000-4000-8000-000000000000');
    // another session (another tenant without auth) through B: the unknown-id answer
    const other = await rawSession(b);
    const o = await rawTool(b, other, 'send_stdin', { execution_id: live.execution_id, input_data: 'x' });
    assert.equal(o.result.error, `Execution not found: ${live.execution_id}`);
    await waitFor(async () => (await call(client, 'get_execution_status', { execution_id: live.execution_id })).status === 'cancelled',
      { what: 'the run cancelled on A' });
    await client.close();
  });


  test('DELETE ends the session and removes its record; then every replica answers 404', async () => {
    const sid = await rawSession(a);
    await waitFor(async () => (await redis.acli('EXISTS', `mcp:session:${sessionKey(sid)}`)) === '1', { what: 'record' });
    const d = await raw(a, { method: 'DELETE', headers: { 'mcp-session-id': sid } });
    assert.equal(d.status, 200);
    await waitFor(async () => (await redis.acli('EXISTS', `mcp:session:${sessionKey(sid)}`)) === '0', { what: 'record deleted' });
    const r = await raw(b, { headers: { 'mcp-session-id': sid }, body: { jsonrpc: '2.0', id: 1, method: 'tools/list' } });
    assert.equal(r.status, 404);
  });

  test('DELETE through another replica ends a session it never held', async () => {
    const sid = await rawSession(a);
    await waitFor(async () => (await redis.acli('EXISTS', `mcp:session:${sessionKey(sid)}`)) === '1', { what: 'record' });
    const d = await raw(b, { method: 'DELETE', headers: { 'mcp-session-id': sid } });
    assert.equal(d.status, 200);
    await waitFor(async () => (await redis.acli('EXISTS', `mcp:session:${sessionKey(sid)}`)) === '0', { what: 'record deleted' });
  });
});

describe('/metrics', () => {
  let redis, server, plain;
  before(async () => {
    redis = await startRedis();
    server = await replica(redis, 'metrics-a', { env: { SANDBOX_AUTH_TOKEN: 'metrics-token-1' } });
    plain = await startServer();
  });
  after(async () => {
    await server?.stop();
    await plain?.stop();
    await redis?.stop();
  });

  const scrape = async (s, token) => {
    const r = await fetch(`${s.base}/metrics`, { headers: token ? { authorization: `Bearer ${token}` } : {} });
    return { status: r.status, type: r.headers.get('content-type'), text: await r.text() };
  };
  const value = (text, re) => {
    const m = text.match(re);
    return m ? Number(m[1]) : 0;
  };

  test('needs the bearer token when one is set; GET only', async () => {
    assert.equal((await scrape(server)).status, 401);
    assert.equal((await scrape(server, 'wrong')).status, 401);
    const ok = await scrape(server, 'metrics-token-1');
    assert.equal(ok.status, 200);
    assert.equal(ok.type, 'text/plain; version=0.0.4; charset=utf-8');
    const p = await fetch(`${plain.base}/metrics`, { method: 'POST' });
    assert.equal(p.status, 405);
  });

  test('counts requests, tool calls by outcome and executions by final status', async () => {
    const before = (await scrape(plain)).text;
    const { client } = await connect(plain);
    await call(client, 'execute_code', { command: 'true' });
    await call(client, 'execute_code', { command: 'exit 3' });
    await call(client, 'get_execution_status', { execution_id: '00000000-0000-4000-8000-000000000000' });
    const r = await call(client, 'execute_code', { command: 'sleep 5', timeout_seconds: 1 });
    assert.equal(r.status, 'timeout');
    await client.close();
    const after = (await scrape(plain)).text;
    const delta = (re) => value(after, re) - value(before, re);
    assert.equal(delta(/^mcp_sandboxd_tool_calls_total\{tool="execute_code",outcome="ok"\} (\d+)$/m), 3);
    assert.equal(delta(/^mcp_sandboxd_tool_calls_total\{tool="get_execution_status",outcome="error"\} (\d+)$/m), 1);
    assert.equal(delta(/^mcp_sandboxd_executions_total\{status="completed"\} (\d+)$/m), 2);
    assert.equal(delta(/^mcp_sandboxd_executions_total\{status="timeout"\} (\d+)$/m), 1);
    assert.ok(delta(/^mcp_sandboxd_http_requests_total\{method="POST",status="200"\} (\d+)$/m) >= 5);
    assert.match(after, /^mcp_sandboxd_redis_enabled 0$/m);
    assert.match(after, /^mcp_sandboxd_executions_running 0$/m);
    assert.match(after, /^mcp_sandboxd_sessions \d+$/m);
  });

  test('promtool accepts the exposition, with and without Redis', async (t) => {
    assert.ok(existsSync(PROMTOOL), `${PROMTOOL} missing: scripts/deps.sh extracts it`);
    const { client } = await connect(server, { token: 'metrics-token-1' });
    await call(client, 'execute_code', { command: 'echo x' });
    await client.close();
    for (const [s, token] of [[server, 'metrics-token-1'], [plain, undefined]]) {
      const { text } = await scrape(s, token);
      // promtool exits non-zero on a malformed exposition and prints lint findings
      const out = execFileSync(PROMTOOL, ['check', 'metrics'], { input: text, encoding: 'utf8' });
      assert.equal(out.trim(), '', `promtool lint: ${out}`);
    }
    const { text } = await scrape(server, 'metrics-token-1');
    assert.match(text, /^mcp_sandboxd_redis_up 1$/m);
    assert.match(text, /^mcp_sandboxd_build_info\{version="[0-9.]+",replica="metrics-a"\} 1$/m);
    for (const name of ['mirror_queue_bytes', 'mirror_drops_total', 'mirror_resyncs_total', 'executions_running', 'sessions'])
      assert.match(text, new RegExp(`^mcp_sandboxd_${name} \\d+$`, 'm'));
  });
});
