// The Redis mirror, against real redis-server processes: key layout and JSON
// fields, event counts for large outputs, TTLs and their refresh, a Redis
// crash during a streaming run, a server that starts before Redis, the queue
// cap with its dirty set and resync, unix sockets, reads of a previous
// server life's runs from Redis, bad REDIS_URLs and the mirror's figures in /metrics.
//
// Every test starts its own redis-server (no persistence) and its own servers.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { BIN, call, connect, freePort, sessionKey, sleep, startRedis, startServer, waitFor } from './helpers.mjs';

// helpers.startServer gives each server a workspace root the sandbox user can reach
const start = startServer;

// /metrics as text, and one sample's value (the Redis address and mirror figures are there, not in /health)
const metricsText = async (server) => (await fetch(`${server.base}/metrics`)).text();
const sample = (text, name) => Number(text.match(new RegExp(`^mcp_sandboxd_${name} (\\S+)$`, 'm'))?.[1]);
// The Redis state and mirror figures as /health showed them before they moved to /metrics
// (/health without the token says only status, version, uptime and sessions).
async function health(server) {
  const m = await metricsText(server);
  const v = (n) => sample(m, n);
  const enabled = v('redis_enabled') === 1;
  const h = {
    status: (await (await fetch(`${server.base}/health`)).json()).status,
    redis: !enabled ? 'disabled' : v('redis_up') === 1 ? 'connected' : 'disconnected',
  };
  if (enabled) {
    h.mirror = {
      queue_bytes: v('mirror_queue_bytes'), queue_events: v('mirror_queue_events'), queue_ops: v('mirror_queue_operations'),
      drops: v('mirror_drops_total'), resyncs: v('mirror_resyncs_total'), events_written: v('mirror_events_written_total'),
      batches_lost: v('mirror_batches_lost_total'), reconnects: v('mirror_reconnects_total'),
      dirty_executions: v('mirror_dirty_executions'), url: m.match(/^mcp_sandboxd_redis_info\{url="(.*)"\} 1$/m)?.[1],
    };
  }
  return h;
}
const ids = (events) => events.map((e) => e.event_id);
const keyOf = (id) => `execution:${id}`;
const outKeyOf = (id) => `execution:${id}:output`;
const setKeyOf = (sid) => `session:${sessionKey(sid)}:executions`;
const ISO = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/;


// The output list of an execution as parsed events (db `db`).
async function redisEvents(redis, id, db = 0) {
  const out = await redis.acli({ db }, 'LRANGE', outKeyOf(id), 0, -1);
  return out === '' ? [] : out.split('\n').map((l) => JSON.parse(l));
}

const llen = async (redis, id, db = 0) => Number(await redis.acli({ db }, 'LLEN', outKeyOf(id)));

// Waits until LLEN equals n and stays there for `settle` ms.
async function waitLlen(redis, id, n, { db = 0, ms = 15000, settle = 300 } = {}) {
  let seen;
  await waitFor(async () => (seen = await llen(redis, id, db)) === n, { ms, what: () => `LLEN ${outKeyOf(id)} == ${n} (last ${seen})` });
  await sleep(settle);
  assert.equal(await llen(redis, id, db), n, 'LLEN settled');
}

async function redisMeta(redis, id, db = 0) {
  const s = await redis.acli({ db }, 'GET', keyOf(id));
  return s === '' ? null : JSON.parse(s);
}

// Waits (get_execution_output wait:true, repeated past the wait deadline) for the run to end.
async function finish(client, id) {
  for (;;) {
    const r = await call(client, 'get_execution_output', { execution_id: id, wait: true });
    assert.ok(!r._result.isError, `get_execution_output failed: ${r.error}`);
    if (r.status !== 'running' && r.status !== 'pending') return r;
  }
}

function assertNotFound(r, id) {
  assert.equal(r._result.isError, true, `expected an error, got ${JSON.stringify(r).slice(0, 300)}`);
  assert.equal(r.error, `Execution not found: ${id}`);
}

// ---------------------------------------------------------------- layout

describe('keys and fields after a run (password, db 3)', () => {
  const password = 'pw-Secr3t-9f2c';
  let redis, server, client, transport, run;
  before(async () => {
    redis = await startRedis({ requirepass: password });
    server = await start({ env: { REDIS_URL: `redis://:${password}@127.0.0.1:${redis.port}/3` }, args: ['--replica-id', 'replica-a'] });
    ({ client, transport } = await connect(server));
    run = await call(client, 'execute_code', { command: 'echo out-line; echo err-line >&2; exit 3' });
    assert.ok(!run._result.isError, run.error);
    await waitLlen(redis, run.execution_id, run.output.length, { db: 3 });
  });
  after(async () => {
    await client?.close();
    await server?.stop();
    await redis?.stop();
  });

  test('execution:{id} holds the metadata JSON', async () => {
    const m = await redisMeta(redis, run.execution_id, 3);
    assert.ok(m, 'execution key exists in db 3');
    assert.deepEqual(Object.keys(m).sort(), ['command', 'completed_at', 'error_message', 'exit_code', 'id', 'interactive',
      'replica', 'session_id', 'started_at', 'status', 'timeout_seconds', 'workspace_id']);
    assert.equal(m.id, run.execution_id);
    assert.equal(m.workspace_id, run.workspace_id); // issue 13: the workspace handle the run went to
    assert.equal(m.session_id, sessionKey(transport.sessionId));
    assert.equal(m.command, 'echo out-line; echo err-line >&2; exit 3');
    assert.equal(m.status, 'completed');
    assert.equal(m.exit_code, 3);
    assert.match(m.started_at, ISO);
    assert.match(m.completed_at, ISO);
    assert.ok(m.completed_at >= m.started_at);
    assert.equal(m.error_message, null);
    assert.equal(m.interactive, false);
    assert.equal(m.replica, 'replica-a');
    assert.equal(m.timeout_seconds, 300);
    assert.equal(await redis.acli({ db: 3 }, 'TYPE', keyOf(run.execution_id)), 'string');
  });

  test('execution:{id}:output is the event list, oldest first, identical to the tool result', async () => {
    assert.equal(await redis.acli({ db: 3 }, 'TYPE', outKeyOf(run.execution_id)), 'list');
    const evs = await redisEvents(redis, run.execution_id, 3);
    assert.deepEqual(evs, run.output);
    assert.equal(evs[0].type, 'ready');
    assert.equal(evs.at(-1).type, 'exit');
    assert.equal(evs.at(-1).code, 3);
    for (const e of evs) {
      assert.match(e.event_id, /^\d+$/);
      assert.match(e.ts, ISO);
    }
  });

  test('session:{sid}:executions is a set holding the id', async () => {
    assert.equal(await redis.acli({ db: 3 }, 'TYPE', setKeyOf(transport.sessionId)), 'set');
    assert.deepEqual((await redis.acli({ db: 3 }, 'SMEMBERS', setKeyOf(transport.sessionId))).split('\n'), [run.execution_id]);
  });

  test('every key has a TTL between 1 and 3600 s', async () => {
    for (const k of [keyOf(run.execution_id), outKeyOf(run.execution_id), setKeyOf(transport.sessionId)]) {
      const ttl = Number(await redis.acli({ db: 3 }, 'TTL', k));
      assert.ok(ttl >= 1 && ttl <= 3600, `TTL ${k} = ${ttl}`);
    }
  });

  test('database 3 is used, database 0 stays empty', async () => {
    assert.equal(await redis.acli({ db: 0 }, 'DBSIZE'), '0');
    // the run's four keys, the session record, and this replica's heartbeat and registry
    const keys = (await redis.acli({ db: 3 }, 'KEYS', '*')).split('\n').sort();
    assert.deepEqual(keys, [keyOf(run.execution_id), outKeyOf(run.execution_id), `mcp:session:${sessionKey(transport.sessionId)}`,
      'replica:replica-a', 'replicas', setKeyOf(transport.sessionId), `workspace:${run.workspace_id}:executions`].sort());
  });

  test('no key and no value in Redis holds the raw session id', async () => {
    const sid = transport.sessionId;
    const dump = [];
    for (const k of (await redis.acli({ db: 3 }, 'KEYS', '*')).split('\n')) {
      dump.push(k);
      const type = await redis.acli({ db: 3 }, 'TYPE', k);
      if (type === 'string') dump.push(await redis.acli({ db: 3 }, 'GET', k));
      else if (type === 'list') dump.push(await redis.acli({ db: 3 }, 'LRANGE', k, 0, -1));
      else if (type === 'set') dump.push(await redis.acli({ db: 3 }, 'SMEMBERS', k));
      else if (type === 'hash') dump.push(await redis.acli({ db: 3 }, 'HGETALL', k));
    }
    assert.ok(dump.join('\n').includes(sessionKey(sid)), 'control: the session key is there');
    assert.ok(!dump.join('\n').includes(sid), 'the raw session id is readable in Redis');
  });

  test('the log says connected with the URL redacted and never shows the password', async () => {
    const log = server.log();
    assert.ok(log.includes(`✅ Redis connected - distributed mode enabled (redis://***@127.0.0.1:${redis.port}/3)`), log);
    assert.ok(!log.includes(password), 'password in the log');
    assert.ok(!server.stderr().includes(password), 'password on stderr');
    const m = await metricsText(server);
    assert.ok(m.includes(`mcp_sandboxd_redis_info{url="redis://***@127.0.0.1:${redis.port}/3"} 1`), m);
    assert.ok(!m.includes(password), 'password in /metrics');
    const h = await (await fetch(`${server.base}/health`)).text();
    assert.ok(!h.includes(password) && !h.includes(String(redis.port)), `/health names the Redis: ${h}`);
  });
});

describe('redaction of a password holding a raw @', () => {
  // The parser takes the LAST '@' as the end of the credentials, so
  // redis://:p@ss@host authenticates with 'p@ss'; the redaction must hide all of it.
  const password = 'left@right-part-7d1';
  let redis, server;
  before(async () => {
    redis = await startRedis({ requirepass: password });
    server = await start({ env: { REDIS_URL: `redis://:${password}@127.0.0.1:${redis.port}/2` } });
    await waitFor(async () => sample(await metricsText(server), 'redis_up') === 1, { what: 'redis connected' });
  });
  after(async () => {
    await server?.stop();
    await redis?.stop();
  });

  test('no part of the password in the log or /metrics', async () => {
    const m = await metricsText(server);
    const log = server.log();
    for (const part of ['left', 'right-part-7d1']) {
      assert.ok(!log.includes(part), `'${part}' of the password is in the log:\n${log.split('\n').filter((l) => /redis/i.test(l)).join('\n')}`);
      assert.ok(!m.includes(part), `'${part}' of the password is in /metrics: ${m.split('\n').filter((l) => /redis_info/.test(l))}`);
    }
  });
});

// ---------------------------------------------------------------- volume

describe('a 100,000-line output', () => {
  let redis, server, client;
  before(async () => {
    redis = await startRedis();
    server = await start({ env: { REDIS_URL: redis.url }, args: ['--max-events', '200000'] });
    ({ client } = await connect(server));
  });
  after(async () => {
    await client?.close();
    await server?.stop();
    await redis?.stop();
  });

  test('LLEN equals the event count and the list equals the replica\'s events', async () => {
    const r = await call(client, 'execute_code', { command: 'seq 1 100000' });
    assert.ok(!r._result.isError, r.error);
    assert.equal(r.status, 'completed');
    assert.equal(r.dropped_events, 0);
    assert.equal(r.output.length, 100002, 'ready + 100000 stdout + exit');
    await waitLlen(redis, r.execution_id, 100002, { ms: 20000 });
    const evs = await redisEvents(redis, r.execution_id);
    assert.deepEqual(ids(evs), ids(r.output));
    assert.equal(evs[0].type, 'ready');
    assert.equal(evs[1].data, '1');
    assert.equal(evs[100000].data, '100000');
    assert.equal(evs.at(-1).type, 'exit');
    assert.equal((await redisMeta(redis, r.execution_id)).status, 'completed');
    const m = await metricsText(server);
    assert.equal(sample(m, 'mirror_drops_total'), 0);
    assert.equal(sample(m, 'mirror_events_written_total'), 100002);
  });
});

// ---------------------------------------------------------------- TTL

describe('TTLs (--redis-ttl 100)', () => {
  let redis, server, client, transport, run;
  before(async () => {
    redis = await startRedis();
    server = await start({ env: { REDIS_URL: redis.url }, args: ['--redis-ttl', '100'] });
    ({ client, transport } = await connect(server));
    run = await call(client, 'execute_code', { command: 'echo ttl' });
    await waitLlen(redis, run.execution_id, run.output.length);
  });
  after(async () => {
    await client?.close();
    await server?.stop();
    await redis?.stop();
  });

  const keys = () => [keyOf(run.execution_id), outKeyOf(run.execution_id), setKeyOf(transport.sessionId)];
  const ttls = async () => Promise.all(keys().map(async (k) => Number(await redis.acli('TTL', k))));

  test('every key is set with the configured TTL', async () => {
    for (const [i, t] of (await ttls()).entries()) assert.ok(t > 90 && t <= 100, `TTL ${keys()[i]} = ${t}`);
  });

  test('get_execution_status refreshes the TTLs', async () => {
    for (const k of keys()) assert.equal(await redis.acli('EXPIRE', k, 10), '1');
    for (const t of await ttls()) assert.ok(t <= 10);
    const st = await call(client, 'get_execution_status', { execution_id: run.execution_id });
    assert.equal(st.status, 'completed');
    await waitFor(async () => (await ttls()).every((t) => t > 90), { what: async () => `TTLs back near 100` });
  });

  test('get_execution_output refreshes the TTLs', async () => {
    for (const k of keys()) await redis.acli('EXPIRE', k, 10);
    const out = await call(client, 'get_execution_output', { execution_id: run.execution_id });
    assert.equal(out.status, 'completed');
    await waitFor(async () => (await ttls()).every((t) => t > 90), { what: 'TTLs back near 100' });
  });
});

// ---------------------------------------------------------------- Redis crash

describe('Redis killed (SIGKILL) during a streaming run and restarted on the same port', () => {
  // 50 bursts of 1000 lines, 80 ms apart: about 5 s of output.
  const COMMAND = 'for i in $(seq 1 50); do seq -f "line %.0f" $((i*1000-999)) $((i*1000)); sleep 0.08; done';
  let redis, port, server, client, before_, run, final;
  const pings = [];
  let healthDuringOutage;
  before(async () => {
    redis = await startRedis();
    port = redis.port;
    server = await start({ env: { REDIS_URL: redis.url }, args: ['--max-events', '100000'] });
    ({ client } = await connect(server));
    // a run that ends before the crash: Redis loses it with its memory
    before_ = await call(client, 'execute_code', { command: 'echo finished-before-the-crash' });
    await waitLlen(redis, before_.execution_id, before_.output.length, { settle: 0 });
    const start_ = await call(client, 'execute_code_async', { command: COMMAND });
    assert.ok(!start_._result.isError, start_.error);
    run = { execution_id: start_.execution_id };
    await waitFor(async () => (await llen(redis, run.execution_id)) > 2000, { what: 'streaming under way' });
    await redis.kill();
    // the outage: ping keeps answering
    const outageEnd = Date.now() + 1500;
    while (Date.now() < outageEnd) {
      const t0 = performance.now();
      let ok = true;
      try { await client.ping({ timeout: 5000 }); } catch { ok = false; }
      pings.push({ ok, ms: performance.now() - t0 });
      await sleep(20);
    }
    healthDuringOutage = await health(server);
    redis = await startRedis({ port });
    final = await finish(client, run.execution_id);
  });
  after(async () => {
    await client?.close();
    await server?.stop();
    await redis?.stop();
  });

  test('the server kept answering ping during the outage', () => {
    assert.ok(pings.length >= 10, `only ${pings.length} pings`);
    assert.ok(pings.every((p) => p.ok), 'a ping failed');
    const worst = Math.max(...pings.map((p) => p.ms));
    assert.ok(worst < 1000, `slowest ping ${worst.toFixed(1)} ms`);
  });

  test('/health said disconnected during the outage', () => {
    assert.equal(healthDuringOutage.redis, 'disconnected');
    assert.equal(healthDuringOutage.status, 'ok');
  });

  test('the run completed with every event in memory', () => {
    const notStdout = JSON.stringify(final.output.filter((e) => e.type !== 'stdout')).slice(0, 2000);
    assert.equal(final.status, 'completed', notStdout);
    assert.equal(final.exit_code, 0, notStdout);
    assert.equal(final.dropped_events, 0);
    assert.equal(final.output.length, 50002);
  });

  test('Redis ends up holding exactly the events the replica holds, and the final status', async () => {
    await waitFor(async () => (await health(server)).redis === 'connected', { ms: 10000, what: 'reconnected' });
    await waitLlen(redis, run.execution_id, final.output.length, { ms: 15000, settle: 500 });
    const mem = await call(client, 'get_execution_output', { execution_id: run.execution_id });
    const evs = await redisEvents(redis, run.execution_id);
    assert.deepEqual(ids(evs), ids(mem.output));
    assert.deepEqual(evs, mem.output);
    const m = await redisMeta(redis, run.execution_id);
    assert.equal(m.status, 'completed');
    assert.equal(m.exit_code, 0);
    assert.match(m.completed_at, ISO);
    const h = await health(server);
    assert.ok(h.mirror.reconnects >= 1, JSON.stringify(h.mirror));
    assert.equal(h.mirror.dirty_executions, 0);
    assert.equal(h.mirror.queue_ops, 0);
  });

  test('a run that finished before the crash is mirrored again after the restart', async () => {
    // the restarted Redis is empty; the replica still holds this run
    await waitFor(async () => (await llen(redis, before_.execution_id)) === before_.output.length,
      { ms: 8000, what: `execution ${before_.execution_id} (finished before the crash) back in Redis` });
    assert.deepEqual(await redisEvents(redis, before_.execution_id), before_.output);
    assert.equal((await redisMeta(redis, before_.execution_id))?.status, 'completed');
  });
});

// ---------------------------------------------------------------- Redis late

describe('server started while Redis is down', () => {
  let redis, port, server, client, run, healthBefore, listWhileDown;
  before(async () => {
    port = await freePort();
    server = await start({ env: { REDIS_URL: `redis://127.0.0.1:${port}` } });
    ({ client } = await connect(server));
    healthBefore = await health(server);
    run = await call(client, 'execute_code', { command: 'seq 1 500' });
    listWhileDown = await call(client, 'list_executions', {});
    redis = await startRedis({ port });
  });
  after(async () => {
    await client?.close();
    await server?.stop();
    await redis?.stop();
  });

  test('runs work from memory while Redis is down', () => {
    assert.equal(healthBefore.redis, 'disconnected');
    assert.equal(run.status, 'completed');
    assert.equal(run.output.length, 502);
    assert.ok(!listWhileDown._result.isError, listWhileDown.error);
    assert.deepEqual(listWhileDown.executions.map((e) => e.id), [run.execution_id]);
    assert.match(server.log(), /unreachable/);
  });

  test('it catches up once Redis starts: keys with the full event list, /health connected', async () => {
    await waitFor(async () => (await health(server)).redis === 'connected', { ms: 10000, what: '/health connected' });
    await waitLlen(redis, run.execution_id, 502);
    assert.deepEqual(await redisEvents(redis, run.execution_id), run.output);
    const m = await redisMeta(redis, run.execution_id);
    assert.equal(m.status, 'completed');
    assert.equal(m.exit_code, 0);
    assert.match(server.log(), /✅ Redis connected - distributed mode enabled \(redis:\/\/127\.0\.0\.1:\d+\)/);
    const h = await health(server);
    assert.equal(h.mirror.queue_ops, 0);
    assert.equal(h.mirror.events_written, 502);
  });
});

describe('queue cap (--mirror-queue-bytes 64K) while Redis is down', () => {
  let redis, port, server, client, run, healthDown;
  before(async () => {
    port = await freePort();
    server = await start({ env: { REDIS_URL: `redis://127.0.0.1:${port}` }, args: ['--mirror-queue-bytes', '64K'] });
    ({ client } = await connect(server));
    run = await call(client, 'execute_code', { command: 'seq 1 5000' });
    healthDown = await health(server);
    redis = await startRedis({ port });
  });
  after(async () => {
    await client?.close();
    await server?.stop();
    await redis?.stop();
  });

  test('the queue stays under its cap and overflow is counted as drops', () => {
    assert.equal(run.output.length, 5002);
    assert.equal(healthDown.redis, 'disconnected');
    assert.ok(healthDown.mirror.queue_bytes <= 65536, `queue_bytes ${healthDown.mirror.queue_bytes}`);
    assert.ok(healthDown.mirror.drops > 0, 'drops counted');
    assert.equal(healthDown.mirror.dirty_executions, 1);
  });

  test('the dropped execution is resynced from memory once Redis answers', async () => {
    await waitFor(async () => (await health(server)).redis === 'connected', { what: '/health connected' });
    let h;
    await waitFor(async () => (await llen(redis, run.execution_id)) === 5002 && (h = await health(server)).mirror.dirty_executions === 0,
      { ms: 6000, what: async () => `full resync (LLEN ${await llen(redis, run.execution_id)} of 5002, /health mirror ${JSON.stringify((await health(server)).mirror)})` });
    assert.deepEqual(await redisEvents(redis, run.execution_id), run.output);
    assert.equal((await redisMeta(redis, run.execution_id))?.status, 'completed');
    assert.ok(h.mirror.resyncs >= 1);
  });
});

// ---------------------------------------------------------------- unix socket

describe('unix socket URL', () => {
  let redis, server, client;
  before(async () => {
    redis = await startRedis({ unixsocket: true });
    server = await start({ env: { REDIS_URL: `unix://${redis.socket}?db=1` } });
    ({ client } = await connect(server));
  });
  after(async () => {
    await client?.close();
    await server?.stop();
    await redis?.stop();
  });

  test('unix:///path/redis.sock?db=1 mirrors into db 1', async () => {
    const r = await call(client, 'execute_code', { command: 'echo via-socket' });
    await waitLlen(redis, r.execution_id, r.output.length, { db: 1 });
    assert.deepEqual(await redisEvents(redis, r.execution_id, 1), r.output);
    assert.equal((await redisMeta(redis, r.execution_id, 1)).status, 'completed');
    assert.equal(await redis.acli({ db: 0 }, 'DBSIZE'), '0');
    const h = await health(server);
    assert.equal(h.redis, 'connected');
    assert.equal(h.mirror.url, `unix://${redis.socket}?db=1`);
    assert.match(server.log(), /✅ Redis connected - distributed mode enabled \(unix:\/\//);
  });
});

// ---------------------------------------------------------------- restart

describe('a restarted server reads runs of its previous life from Redis', () => {
  let redis, first, firstRun, second, c1, c2, sid1, c3;
  before(async () => {
    redis = await startRedis();
    first = await start({ env: { REDIS_URL: redis.url } });
    const a = await connect(first);
    firstRun = await call(a.client, 'execute_code', { command: 'echo one; echo two >&2; seq 1 3; exit 4' });
    assert.ok(!firstRun._result.isError, firstRun.error);
    await waitLlen(redis, firstRun.execution_id, firstRun.output.length, { settle: 0 });
    await a.client.close();
    assert.equal((await first.stop()).code, 0);
    second = await start({ env: { REDIS_URL: redis.url } });
    ({ client: c1, transport: { sessionId: sid1 } } = await connect(second));
    ({ client: c2 } = await connect(second));
  });
  after(async () => {
    await c1?.close();
    await c2?.close();
    await c3?.close();
    await second?.stop();
    await redis?.stop();
  });

  test('the first life left its run in Redis', async () => {
    assert.deepEqual(await redisEvents(redis, firstRun.execution_id), firstRun.output);
    assert.equal((await redisMeta(redis, firstRun.execution_id)).status, 'completed');
  });

  test('a session of the new server that does not own the run gets Execution not found', async () => {
    const id = firstRun.execution_id;
    assertNotFound(await call(c1, 'get_execution_status', { execution_id: id }), id);
    assertNotFound(await call(c1, 'get_execution_output', { execution_id: id }), id);
    const l = await call(c1, 'list_executions', {});
    assert.deepEqual(l.executions, []);
  });

  test('once the run belongs to a session of the new server (seeded), status, output and list come from Redis', async () => {
    const id = firstRun.execution_id;
    const meta = await redisMeta(redis, id);
    await redis.acli('SET', keyOf(id), JSON.stringify({ ...meta, session_id: sessionKey(sid1) }), 'EX', 3600);
    await redis.acli('SADD', setKeyOf(sid1), id);

    const st = await call(c1, 'get_execution_status', { execution_id: id });
    assert.ok(!st._result.isError, st.error);
    assert.equal(st.id, id);
    assert.equal(st.status, 'completed');
    assert.equal(st.exit_code, 4);
    assert.equal(st.command, 'echo one; echo two >&2; seq 1 3; exit 4');
    assert.equal(st.interactive, false);
    assert.equal(st.started_at, meta.started_at);
    assert.equal(st.completed_at, meta.completed_at);
    assert.equal(st.error_message, null);

    const out = await call(c1, 'get_execution_output', { execution_id: id });
    assert.ok(!out._result.isError, out.error);
    assert.equal(out.source, 'redis');
    assert.equal(out.execution_id, id);
    assert.equal(out.status, 'completed');
    assert.equal(out.exit_code, 4);
    assert.deepEqual(out.output, firstRun.output);
    assert.equal(out.last_event_id, firstRun.last_event_id);
    // the same formatter as a local read: dropped_events is there (none were dropped)
    assert.equal(out.dropped_events, firstRun.dropped_events);

    const tail = await call(c1, 'get_execution_output', { execution_id: id, last_event_id: '3' });
    assert.deepEqual(tail.output, firstRun.output.filter((e) => Number(e.event_id) > 3));

    const l = await call(c1, 'list_executions', {});
    assert.ok(!l._result.isError, l.error);
    const item = l.executions.find((e) => e.id === id);
    assert.ok(item, `list_executions: ${JSON.stringify(l.executions)}`);
    assert.equal(item.status, 'completed');
    assert.equal(item.command, meta.command);

    // ownership still holds for the other session
    assertNotFound(await call(c2, 'get_execution_status', { execution_id: id }), id);
    assert.deepEqual((await call(c2, 'list_executions', {})).executions, []);
  });

  test('runs of the new life and of the old one are listed together', async () => {
    const fresh = await call(c1, 'execute_code', { command: 'echo second-life' });
    const l = await call(c1, 'list_executions', {});
    assert.deepEqual(l.executions.map((e) => e.id).sort(), [fresh.execution_id, firstRun.execution_id].sort());
  });

  test('reads through Redis refresh the TTLs of execution:{id} and its output', async () => {
    const id = firstRun.execution_id;
    await redis.acli('EXPIRE', keyOf(id), 10);
    await redis.acli('EXPIRE', outKeyOf(id), 10);
    assert.ok(!(await call(c1, 'get_execution_status', { execution_id: id }))._result.isError);
    assert.ok(Number(await redis.acli('TTL', keyOf(id))) > 3500);
    assert.ok(Number(await redis.acli('TTL', outKeyOf(id))) > 3500);
  });

  test('reads through Redis refresh the TTL of the session set too', async () => {
    const id = firstRun.execution_id;
    // a fresh session that owns only the old run: no write of this life touches its set
    const third = await connect(second);
    c3 = third.client;
    const sid3 = third.transport.sessionId;
    const meta = await redisMeta(redis, id);
    await redis.acli('SET', keyOf(id), JSON.stringify({ ...meta, session_id: sessionKey(sid3) }), 'EX', 3600);
    await redis.acli('SADD', setKeyOf(sid3), id);
    await redis.acli('EXPIRE', setKeyOf(sid3), 10);
    assert.ok(!(await call(c3, 'get_execution_output', { execution_id: id }))._result.isError);
    assert.ok(!(await call(c3, 'list_executions', {}))._result.isError);
    const ttl = Number(await redis.acli('TTL', setKeyOf(sid3)));
    assert.ok(ttl > 3500, `TTL ${setKeyOf(sid3)} = ${ttl} after reads of its run`);
  });
});

// ---------------------------------------------------------------- bad URLs

describe('bad REDIS_URL', () => {
  const cases = [
    { url: 'http://x', msg: /REDIS_URL: expected redis:\/\/\[\[user\]:password@\]host\[:port\]\[\/db\] or unix:\/\/\/path/ },
    { url: 'redis://host:99999', msg: /REDIS_URL: port must be 1\.\.65535/ },
    { url: 'redis://:hunter2-secret@host:0', msg: /REDIS_URL: port must be 1\.\.65535/, secret: 'hunter2-secret' },
    { url: 'redis://127.0.0.1:6379/notadb', msg: /REDIS_URL: the path must be a database number/ },
    { url: 'unix://relative.sock', msg: /REDIS_URL: expected unix:\/\/\/absolute/ },
    { url: 'rediss://127.0.0.1', msg: /REDIS_URL: rediss:\/\/ \(TLS\) is not supported/ },
  ];
  for (const c of cases) {
    test(`${c.url} exits with status 2 and says why`, async () => {
      const port = await freePort();
      const r = spawnSync(BIN, ['--host', '127.0.0.1', '--port', String(port), '--workspace-root', '/tmp/sandboxd-badurl'], {
        env: { PATH: process.env.PATH, REDIS_URL: c.url, ASAN_OPTIONS: process.env.ASAN_OPTIONS || '' },
        encoding: 'utf8', timeout: 10000,
      });
      assert.equal(r.status, 2, `exit status ${r.status} (signal ${r.signal}); stderr: ${r.stderr}`);
      assert.match(r.stderr, c.msg);
      if (c.secret) assert.ok(!r.stderr.includes(c.secret), 'password on stderr');
    });
  }

  test('--redis-url is checked the same way', async () => {
    const port = await freePort();
    const r = spawnSync(BIN, ['--host', '127.0.0.1', '--port', String(port), '--redis-url', 'http://x'], {
      env: { PATH: process.env.PATH, ASAN_OPTIONS: process.env.ASAN_OPTIONS || '' }, encoding: 'utf8', timeout: 10000,
    });
    assert.equal(r.status, 2, r.stderr);
    assert.match(r.stderr, /expected redis:\/\//);
  });
});

// ---------------------------------------------------------------- /health

describe('/health', () => {
  test('redis is "disabled" without REDIS_URL, with no mirror figures', async () => {
    const server = await start();
    try {
      const h = await health(server);
      assert.equal(h.redis, 'disabled');
      assert.equal(h.mirror, undefined);
    } finally {
      await server.stop();
    }
  });

  test('redis "connected" with the queue figures', async () => {
    const redis = await startRedis();
    const server = await start({ env: { REDIS_URL: redis.url } });
    try {
      const { client } = await connect(server);
      const r = await call(client, 'execute_code', { command: 'seq 1 10' });
      await waitLlen(redis, r.execution_id, 12);
      const h = await health(server);
      assert.equal(h.redis, 'connected');
      for (const k of ['queue_bytes', 'queue_events', 'queue_ops', 'drops', 'resyncs', 'events_written', 'batches_lost',
        'reconnects', 'dirty_executions']) assert.equal(typeof h.mirror[k], 'number', `mirror.${k}`);
      assert.equal(h.mirror.queue_bytes, 0);
      assert.equal(h.mirror.queue_events, 0);
      assert.equal(h.mirror.drops, 0);
      assert.equal(h.mirror.resyncs, 0);
      assert.equal(h.mirror.events_written, 12);
      assert.equal(h.mirror.url, redis.url);
      await client.close();
    } finally {
      await server.stop();
      await redis.stop();
    }
  });
});
