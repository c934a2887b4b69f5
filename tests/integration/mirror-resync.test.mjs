// The mirror's resync of a large run (issue: resync built over several loop
// turns): a 200,000-line run whose events were dropped while Redis was down
// is rewritten from memory once Redis answers, copied a bounded step per loop
// turn, and Redis ends up holding exactly the events memory holds, in order
// (trimmed to --max-events), output written during the copy included; a run
// freed (its session ended) while its copy is under way has it finished first.
//
// Every test starts its own redis-server (no persistence) and its own server.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { WHOLE_OUTPUT, call, connect, freePort, metric, startRedis, startServer, waitFor } from './helpers.mjs';

const outKeyOf = (id) => `execution:${id}:output`;
const llen = async (redis, id) => Number(await redis.acli('LLEN', outKeyOf(id)));

// The output list of an execution as parsed events.
async function redisEvents(redis, id) {
  const out = await redis.acli('LRANGE', outKeyOf(id), 0, -1);
  return out === '' ? [] : out.split('\n').map((l) => JSON.parse(l));
}

// Every event memory holds for the run (the whole output, no budget cut).
async function heldEvents(client, id) {
  const r = await call(client, 'get_execution_output', { execution_id: id, max_output_chars: WHOLE_OUTPUT });
  assert.ok(!r._result.isError, r.error);
  assert.ok(!r.truncated, 'the whole output was returned');
  return r;
}

// Waits until Redis holds `n` events for `id` and the mirror has nothing left to resync or copy.
async function waitResynced(server, redis, id, n) {
  await waitFor(async () => (await llen(redis, id)) === n && (await metric(server, 'mirror_dirty_executions')) === 0 &&
      (await metric(server, 'mirror_resyncs_building')) === 0 && (await metric(server, 'mirror_queue_operations')) === 0,
    { ms: 120000, every: 100, what: async () => `LLEN ${await llen(redis, id)} of ${n}, building ${await metric(server, 'mirror_resyncs_building')}` });
}

// The line events of a held log are `seq from to` in order, with consecutive ids.
function assertLines(events, from, to) {
  const lines = events.filter((e) => e.type === 'stdout');
  assert.equal(lines.length, to - from + 1);
  for (let i = 0; i < lines.length; i++)
    if (lines[i].data !== String(from + i)) assert.fail(`line ${i} is ${JSON.stringify(lines[i])}, not ${from + i}`);
  for (let i = 1; i < events.length; i++)
    if (Number(events[i].event_id) !== Number(events[i - 1].event_id) + 1) assert.fail(`event ${i} does not follow ${i - 1}`);
}

describe('a 200,000-line run dropped while Redis was down (--mirror-queue-bytes 64K)', () => {
  let redis, port, server, client, run;
  before(async () => {
    port = await freePort();
    server = await startServer({ env: { REDIS_URL: `redis://127.0.0.1:${port}` }, args: ['--mirror-queue-bytes', '64K'] });
    ({ client } = await connect(server));
    run = await call(client, 'execute_code', { command: 'seq 1 200000', max_output_chars: 1000 });
    assert.ok(!run._result.isError, run.error);
    assert.equal(await metric(server, 'mirror_dirty_executions'), 1, 'the run was dropped from the queue');
    redis = await startRedis({ port });
  });
  after(async () => {
    await client?.close();
    await server?.stop();
    await redis?.stop();
  });

  test('Redis ends with exactly the held events, in order, copied over several loop turns', async () => {
    const held = await heldEvents(client, run.execution_id);
    assert.equal(held.dropped_events, 0);
    assertLines(held.output, 1, 200000);
    await waitResynced(server, redis, run.execution_id, held.output.length);
    assert.deepEqual(await redisEvents(redis, run.execution_id), held.output);
    const meta = JSON.parse(await redis.acli('GET', `execution:${run.execution_id}`));
    assert.equal(meta.status, 'completed');
    assert.ok(await metric(server, 'mirror_resyncs_total') >= 1);
    // the copy was spread over loop turns, not made in one
    assert.ok(await metric(server, 'mirror_resync_steps_total') > 1, `steps ${await metric(server, 'mirror_resync_steps_total')}`);
  });
});

describe('a running 200,000-line run trimmed to --max-events 120000, with output during and after its resync', () => {
  let redis, port, server, client, run;
  before(async () => {
    port = await freePort();
    server = await startServer({ env: { REDIS_URL: `redis://127.0.0.1:${port}` },
      args: ['--mirror-queue-bytes', '64K', '--max-events', '120000'] });
    ({ client } = await connect(server));
    run = await call(client, 'execute_code', { command: 'seq 1 200000; read x; echo "got $x"; seq 200001 200100',
      interactive: true, wait_for_completion: false });
    assert.ok(!run._result.isError, run.error);
    // every line of the first part is in memory (and most were dropped from the queue)
    await waitFor(async () => {
      const r = await call(client, 'get_execution_output', { execution_id: run.execution_id, max_output_chars: 200 });
      return r.output?.some((e) => e.data === '200000') || r.output?.at(-1)?.data === '200000';
    }, { ms: 60000, every: 100, what: 'line 200000 in memory' });
    redis = await startRedis({ port });
    // the run writes again while (or soon after) its resync is copied
    await waitFor(async () => (await metric(server, 'mirror_resyncs_building')) > 0 || (await metric(server, 'mirror_resyncs_total')) > 0,
      { ms: 30000, every: 5, what: 'a resync started' });
    const s = await call(client, 'send_stdin', { execution_id: run.execution_id, input_data: 'hello' });
    assert.ok(s.success, JSON.stringify(s));
  });
  after(async () => {
    await client?.close();
    await server?.stop();
    await redis?.stop();
  });

  test('Redis ends with the last 120,000 events memory holds, in order, the later output included', async () => {
    await waitFor(async () => (await call(client, 'get_execution_status', { execution_id: run.execution_id })).status === 'completed',
      { ms: 60000, every: 100, what: 'the run completed' });
    const held = await heldEvents(client, run.execution_id);
    assert.equal(held.output.length, 120000);
    assert.ok(held.dropped_events > 0);
    assert.ok(held.output.some((e) => e.data === 'got hello'));
    await waitResynced(server, redis, run.execution_id, held.output.length);
    assert.deepEqual(await redisEvents(redis, run.execution_id), held.output);
    assert.ok(await metric(server, 'mirror_resync_steps_total') > 1);
  });
});

describe('a 200,000-line run freed (its session ended) while its resync is being copied', () => {
  let redis, port, server, client, transport, run, held, sawBuilding;
  before(async () => {
    port = await freePort();
    server = await startServer({ env: { REDIS_URL: `redis://127.0.0.1:${port}` }, args: ['--mirror-queue-bytes', '64K'] });
    ({ client, transport } = await connect(server));
    run = await call(client, 'execute_code', { command: 'seq 1 200000', max_output_chars: 1000 });
    assert.ok(!run._result.isError, run.error);
    held = (await heldEvents(client, run.execution_id)).output;
    redis = await startRedis({ port });
    // end the session (its finished run is freed) as soon as the copy is under way
    await waitFor(async () => (sawBuilding = (await metric(server, 'mirror_resyncs_building')) > 0) ||
        (await metric(server, 'mirror_resyncs_total')) > 0, { ms: 30000, every: 2, what: 'a resync started' });
    await transport.terminateSession();
  });
  after(async () => {
    await client?.close();
    await server?.stop();
    await redis?.stop();
  });

  test('the copy is finished before the run goes: Redis holds every event it held, in order', async () => {
    await waitResynced(server, redis, run.execution_id, held.length);
    assert.deepEqual(await redisEvents(redis, run.execution_id), held);
    const meta = JSON.parse(await redis.acli('GET', `execution:${run.execution_id}`));
    assert.equal(meta.status, 'completed');
    if (!sawBuilding) console.log('# note: the copy had ended before the session did (the freed-during-copy path was not taken)');
  });
});
