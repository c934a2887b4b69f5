// The mirror's resync of a 250,000-line run: the loop's longest stall and the
// time to the resynced state, for each binary given (e.g. the start commit's,
// built elsewhere, then this build), in the same run. Usage:
//   node scripts/bench-resync.mjs OLD_BIN NEW_BIN [ROUNDS]
// Per binary and round: a server whose Redis is down at first (REDIS_URL on a
// free port, --mirror-queue-bytes 64K, so the run's events are dropped and
// the run marked dirty) runs 250,000 lines of BENCH_LINE_CHARS (120) characters
// (about 45 MB of event JSON, under the default --max-output-bytes 64M); then
//  (a) redis-server starts: the run is resynced from memory;
//  (b) redis-server is SIGKILLed (a one-line run makes the writer notice)
//      and started again (empty): the reconnect resyncs every held run again.
// During each, a client sends GET /health back to back (one at a time) and
// records each round trip: its p50 / p99 / max say how long the loop went
// without answering. "to resynced" is from redis-server's start until LLEN is
// the run's event count and the mirror has nothing dirty, building or queued;
// "loop cpu" the loop thread's CPU time (its /proc schedstat) over that span.
// An idle window first (500 ms of probes, nothing to resync) gives the
// probe's noise floor on the machine. Prints figures only; no thresholds.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import { call, connect, freePort, metric, startRedis, startServer, waitFor } from '../tests/integration/helpers.mjs';

const LINES = 250000, WIDTH = Number(process.env.BENCH_LINE_CHARS ?? 120);
const loopNs = (pid) => Number(fs.readFileSync(`/proc/${pid}/task/${pid}/schedstat`, 'utf8').split(' ')[0]);
const pct = (a, p) => a.slice().sort((x, y) => x - y)[Math.min(a.length - 1, Math.floor(a.length * p))];

// Probes /health back to back until stop() is called; returns the round trips (ms).
function probe(server) {
  const rt = [];
  let running = true;
  const done = (async () => {
    while (running) {
      const t = performance.now();
      await (await fetch(`${server.base}/health`)).arrayBuffer();
      rt.push(performance.now() - t);
    }
  })();
  return async () => { running = false; await done; return rt; };
}

// Starts Redis on `port` while probing; returns the figures once the run is resynced.
async function measure(server, port, id, held, redises) {
  const stop = probe(server);
  const cpu0 = loopNs(server.proc.pid), t0 = performance.now();
  const redis = await startRedis({ port });
  redises.push(redis);
  await waitFor(async () => Number(await redis.acli('LLEN', `execution:${id}:output`)) === held &&
      (await metric(server, 'mirror_dirty_executions')) === 0 && ((await metric(server, 'mirror_resyncs_building')) ?? 0) === 0 &&
      (await metric(server, 'mirror_queue_operations')) === 0,
    { ms: 300000, every: 50, what: 'resynced' });
  const total = performance.now() - t0, cpu = (loopNs(server.proc.pid) - cpu0) / 1e6;
  const rt = await stop();
  return { redis, fig: { probes: rt.length, p50: pct(rt, 0.5), p99: pct(rt, 0.99), max: Math.max(...rt), total, cpu } };
}

// One binary (helpers' BIN, from SANDBOXD_BIN): both measurements (server and Redis stopped even on failure).
async function one() {
  const port = await freePort();
  const server = await startServer({ env: { REDIS_URL: `redis://127.0.0.1:${port}` }, args: ['--mirror-queue-bytes', '64K'] });
  const redises = [];
  try {
    const { client } = await connect(server);
    const run = await call(client, 'execute_code', { command: `yes "$(printf '%0${WIDTH}d' 0)" | head -n ${LINES}`, max_output_chars: 1000 });
    if (run._result.isError) throw new Error(run.error);
    const held = Number(run.last_event_id) - run.dropped_events; /* --max-events 250000 keeps the last 250,000 */
    const idleStop = probe(server); /* the probe's noise floor on this machine: nothing to resync */
    await new Promise((r) => setTimeout(r, 500));
    const rt = await idleStop();
    const idle = { probes: rt.length, p50: pct(rt, 0.5), p99: pct(rt, 0.99), max: Math.max(...rt), total: 500, cpu: 0 };
    const a = await measure(server, port, run.execution_id, held, redises);
    await a.redis.kill();
    await call(client, 'execute_code', { command: 'echo x' }); /* a write: the writer finds the connection gone */
    await waitFor(async () => (await metric(server, 'redis_up')) === 0, { what: 'redis down' });
    const b = await measure(server, port, run.execution_id, held, redises);
    await client.close();
    return [idle, a.fig, b.fig];
  } finally {
    await server.stop();
    for (const r of redises) await r.stop().catch(() => {});
  }
}

const fmt = (f) => `probes ${String(f.probes).padStart(5)}  p50 ${f.p50.toFixed(2)}  p99 ${f.p99.toFixed(2)}  max ${f.max.toFixed(2)} ms` +
  `  to resynced ${f.total.toFixed(0)} ms  loop cpu ${f.cpu.toFixed(1)} ms`;

if (process.env.BENCH_RESYNC_CHILD) {
  console.log(JSON.stringify(await one()));
} else {
  const bins = process.argv.slice(2).filter((a) => !/^\d+$/.test(a));
  const rounds = Number(process.argv.slice(2).find((a) => /^\d+$/.test(a)) ?? 3);
  for (let r = 0; r < rounds; r++)
    for (const bin of bins) { /* a child per binary: helpers.mjs takes SANDBOXD_BIN when imported */
      const out = execFileSync(process.execPath, [new URL(import.meta.url).pathname],
        { env: { ...process.env, SANDBOXD_BIN: bin, BENCH_RESYNC_CHILD: '1' }, encoding: 'utf8' });
      const [idle, a, b] = JSON.parse(out.trim().split('\n').at(-1));
      console.log(`${bin}\n  round ${r + 1} idle (500 ms):       ${fmt(idle).replace(/  to resynced.*/, '')}\n  round ${r + 1} (a) redis started:   ${fmt(a)}\n  round ${r + 1} (b) redis restarted: ${fmt(b)}`);
    }
}
