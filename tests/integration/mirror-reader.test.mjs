// The mirror's reader pipelines: a session's list read from Redis costs a
// couple of round trips, not three per execution. A TCP proxy between the
// server and redis-server counts the bursts the server sends on the reader's
// connection (each burst is one round trip: the reader waits for the replies
// before it sends again).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import net from 'node:net';
import { call, connect, sessionKey, startRedis, startServer } from './helpers.mjs';

// A proxy to 127.0.0.1:`port`; `conns` holds, per client connection, the chunks it sent.
async function countingProxy(port) {
  const conns = [];
  const server = net.createServer((client) => {
    const chunks = [];
    conns.push(chunks);
    const upstream = net.connect(port, '127.0.0.1');
    client.on('data', (d) => { chunks.push(d.toString('latin1')); upstream.write(d); });
    upstream.on('data', (d) => client.write(d));
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
    client.on('error', () => upstream.destroy());
    upstream.on('error', () => client.destroy());
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  return { port: server.address().port, conns, close: () => new Promise((r) => server.close(r)) };
}

test('list_executions reads 60 executions from Redis in a few round trips, not 3 per execution', async () => {
  const redis = await startRedis();
  const proxy = await countingProxy(redis.port);
  const server = await startServer({ env: { REDIS_URL: `redis://127.0.0.1:${proxy.port}` } });
  try {
    const { client, transport } = await connect(server);
    const sid = transport.sessionId;
    const ids = Array.from({ length: 60 }, () => randomBytes(16).toString('hex'));
    for (const id of ids) {
      const meta = { id, session_id: sessionKey(sid), status: 'completed', command: `echo ${id}`, interactive: false,
        started_at: '2026-01-01T00:00:00.000Z', completed_at: '2026-01-01T00:00:01.000Z', exit_code: 0 };
      await redis.acli('SET', `execution:${id}`, JSON.stringify(meta), 'EX', 100);
      await redis.acli('SADD', `session:${sessionKey(sid)}:executions`, id);
    }
    const l = await call(client, 'list_executions', {});
    assert.ok(!l._result.isError, l.error);
    assert.deepEqual(l.executions.map((e) => e.id).sort(), [...ids].sort());
    // every execution's TTLs were refreshed too
    assert.ok(Number(await redis.acli('TTL', `execution:${ids[0]}`)) > 100);
    const isList = (x) => x.includes('SMEMBERS') && x.includes(`session:${sessionKey(sid)}:executions`);
    const reader = proxy.conns.find((c) => c.some(isList));
    assert.ok(reader, 'the reader connection went through the proxy');
    const bursts = reader.length - reader.findIndex(isList);
    // SMEMBERS with the set's EXPIRE, then the pipelined GET/EXPIREs (a large pipeline may cross a few TCP writes)
    assert.ok(bursts <= 10, `${bursts} bursts for 60 executions`);
    await client.close();
  } finally {
    await server.stop();
    await proxy.close();
    await redis.stop();
  }
});
