// The output formatter at scale (issue 15): for each binary given (e.g. the
// start commit's, built elsewhere, then this build), in the same run:
//  - the server's RSS growth per 200,000-line run held (seq 1 200000, and
//    200,000 lines of 80 characters);
//  - the loop thread's CPU time (its /proc schedstat, the whole call: parse,
//    format, send) of get_execution_output on the seq run: default budget,
//    tail 20, head 20, head 20 after last_event_id "100"; locally on replica a
//    and through Redis on replica b (which reads the run from Redis); and,
//    for scale, the same call on a one-line run. The round trips (wall
//    clock, client side) include the reader thread's Redis reads.
// Both servers keep every event (--max-events 300000, --max-output-bytes 64M,
// --max-retained-bytes 1G: both runs stay held on replica a),
// so the old binary holds the run too. Prints figures only; no thresholds.
import fs from 'node:fs';
import { connect, metric, raw, startRedis, waitFor } from '../tests/integration/helpers.mjs';

const REPEAT = 5;
const rssKib = (pid) => Number(fs.readFileSync(`/proc/${pid}/status`, 'utf8').match(/VmRSS:\s+(\d+)/)[1]);
const loopNs = (pid) => Number(fs.readFileSync(`/proc/${pid}/task/${pid}/schedstat`, 'utf8').split(' ')[0]);
const median = (a) => a.slice().sort((x, y) => x - y)[Math.floor(a.length / 2)];

const QUERIES = [
  ['default budget', {}],
  ['tail 20', { tail: 20 }],
  ['head 20', { head: 20 }],
  ['last_event_id 100 head 20', { last_event_id: '100', head: 20 }],
];

// The loop's CPU ms and the wall ms (medians of REPEAT) of one call, sent by `send` to the server with pid `pid`.
async function loopMs(pid, send) {
  const t = [], wall = [];
  for (let i = 0; i < REPEAT; i++) {
    const before = loopNs(pid), start = performance.now();
    const r = await send();
    wall.push(performance.now() - start);
    if (r?.isError) throw new Error(JSON.stringify(r).slice(0, 300));
    t.push((loopNs(pid) - before) / 1e6);
    if (process.env.BENCH_VERBOSE) console.log(`  sample ${t.at(-1).toFixed(3)} ms`);
  }
  return [median(t), median(wall)];
}

// RSS growth (KiB) of server `s` for one run of `command` (held after it ends), the bytes it counts, its id.
async function rssGrowth(s, client, command) {
  const before = rssKib(s.proc.pid), counted = await metric(s, 'retained_output_bytes');
  const r = await client.callTool({ name: 'execute_code', arguments: { command } }, undefined, { timeout: 300000 });
  if (r.structuredContent.status !== 'completed') throw new Error(r.content[0].text.slice(0, 300));
  return [rssKib(s.proc.pid) - before, (await metric(s, 'retained_output_bytes')) - counted, r.structuredContent.execution_id];
}

const bins = process.argv.slice(2);
const redis = await startRedis();
for (const bin of bins) {
  process.env.SANDBOXD_BIN = bin;
  const { BIN, startServer } = await import(`../tests/integration/helpers.mjs?bin=${encodeURIComponent(bin)}`);
  const args = ['--max-events', '300000', '--max-output-bytes', '64M', '--max-retained-bytes', '1G'];
  const name = BIN.split('/').slice(-3).join('/');
  const a = await startServer({ env: { REDIS_URL: redis.url }, args: [...args, '--replica-id', 'a'] });
  const b = await startServer({ env: { REDIS_URL: redis.url }, args: [...args, '--replica-id', 'b'] });
  const { client, transport } = await connect(a);
  const [seqKib, seqCounted, id] = await rssGrowth(a, client, 'seq 1 200000');
  const [wideKib, wideCounted] = await rssGrowth(a, client, "seq 1 200000 | awk '{ printf \"%080d\\n\", $1 }'");
  const per = (kib, counted) => `RSS +${(kib / 1024).toFixed(1)} MiB (${Math.round((kib * 1024) / 200002)} B/event), counted ${(counted / 1048576).toFixed(1)} MiB (${Math.round(counted / 200002)} B/event)`;
  console.log(`${name}\t200,000-line run held: seq ${per(seqKib, seqCounted)}; 80-char lines ${per(wideKib, wideCounted)}`);
  const viaB = (args) => async () => (await raw(b, {
    headers: { 'mcp-session-id': transport.sessionId, 'mcp-protocol-version': '2025-06-18' },
    body: { jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'get_execution_output', arguments: { execution_id: id, ...args } } },
  })).json?.result;
  await waitFor(async () => (await viaB({ tail: 1 })())?.structuredContent?.output?.some((e) => e.type === 'exit'), { ms: 120000, what: 'mirrored' });
  // the mirror settled (its writes and resyncs are loop work too): the figures below are the calls' own
  await waitFor(async () => (await metric(a, 'mirror_queue_operations')) === 0 && (await metric(a, 'mirror_dirty_executions')) === 0,
    { ms: 120000, what: 'mirror settled' });
  const small = (await client.callTool({ name: 'execute_code', arguments: { command: 'echo x' } })).structuredContent.execution_id;
  const [base] = await loopMs(a.proc.pid, () => client.callTool({ name: 'get_execution_output', arguments: { execution_id: small } }));
  console.log(`${name}\tget_execution_output of a one-line run (the call's fixed cost): loop ${base.toFixed(2)} ms`);
  for (const [label, q] of QUERIES) {
    const [local, localWall] = await loopMs(a.proc.pid, () => client.callTool({ name: 'get_execution_output', arguments: { execution_id: id, ...q } }));
    const [remote, remoteWall] = await loopMs(b.proc.pid, viaB(q));
    console.log(`${name}\tget_execution_output ${label}: loop ${local.toFixed(2)} ms local, ${remote.toFixed(2)} ms through Redis` +
      ` (round trip ${localWall.toFixed(1)} / ${remoteWall.toFixed(1)} ms)`);
  }
  await client.close();
  await a.stop();
  await b.stop();
}
await redis.stop();
process.exit(0);
