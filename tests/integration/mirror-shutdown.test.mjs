// The shutdown deadline binds with Redis hung: redis-server is SIGSTOPped
// with mirror writes in flight and queued, then the server gets SIGTERM. It
// exits by itself (no SIGKILL), cuts the Redis connections when its deadline
// passes (not when hiredis' 5 s command timeout would have fired), and logs
// how many operations it did not write.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { call, connect, metric, sleep, startRedis, startServer, waitFor } from './helpers.mjs';


const gauge = async (server, name) => {
  const text = await (await fetch(`${server.base}/metrics`)).text();
  const m = new RegExp(`^mcp_sandboxd_${name} (\\S+)$`, 'm').exec(text);
  return m ? Number(m[1]) : NaN;
};

test('a hung Redis cannot hold the server past its shutdown deadline; the unwritten operations are counted', async () => {
  const redis = await startRedis();
  const server = await startServer({ env: { REDIS_URL: redis.url }, args: ['--replica-id', 'hung', '--heartbeat', '1', '--shutdown-grace', '2'] });
  let thawed = false;
  try {
    await waitFor(async () => (await metric(server, 'redis_up')) === 1, { what: 'connected' });
    const { client } = await connect(server);
    redis.proc.kill('SIGSTOP');
    // output events the writer sends (and then waits on) or queues behind the stuck batch
    for (let i = 0; i < 3; i++) await call(client, 'execute_code', { command: 'seq 1 200' });
    await waitFor(async () => (await gauge(server, 'mirror_queue_operations')) > 0, { what: 'operations queued behind the hung Redis' });
    await client.close();
    server.proc.kill('SIGTERM');
    const { code, signal } = await server.exited;
    assert.equal(signal, null, 'exited by itself');
    assert.equal(code, 0);
    const log = server.log();
    assert.match(log, /shutdown deadline passed with Redis still busy: cutting its connections/);
    const m = /redis mirror: (\d+) operations not written to Redis at shutdown \(the shutdown deadline passed first\)/.exec(log);
    assert.ok(m, log);
    assert.ok(Number(m[1]) > 0);
    // no blocked call waited for hiredis' own timeout
    assert.doesNotMatch(log, /Resource temporarily unavailable/);
    assert.match(log, /shutdown complete/);
    redis.proc.kill('SIGCONT');
    thawed = true;
  } finally {
    if (!thawed) redis.proc.kill('SIGCONT');
    await server.stop();
    await redis.stop();
  }
});
