// Client side of scripts/bench-load.sh (phases b and c). Plain JSON-RPC over
// keep-alive connections (scripts/mcp-http.mjs).
//
//   node scripts/bench-load.mjs stream --url URL [--runs 100] [--sessions 10]
//        [--lines 2000] [--poll-ms 10] [--json FILE]
//     --runs execute_code_async runs of `for i in $(seq 1 LINES); do echo line $i; done`,
//     spread over --sessions sessions, all started at once; each followed with
//     get_execution_output + last_event_id (every --poll-ms) until its exit event.
//     Checks every run: status completed, exit 0, no dropped events, event ids
//     1..n without gap, and stdout "line 1".."line LINES" in order.
//
//   node scripts/bench-load.mjs mix --url URL [--clients 8] [--duration 10] [--json FILE]
//     --clients sessions each calling execute_code (waiting) in a loop for
//     --duration seconds, alternating `true` and `echo x`; checks each result.
//
// Prints a summary line and the first errors; --json writes the figures.
import { writeFileSync } from 'node:fs';
import { Session, pct, sleep } from './mcp-http.mjs';

const mode = process.argv[2];
const opts = { url: '', runs: 100, sessions: 10, lines: 2000, 'poll-ms': 10, clients: 8, duration: 10, json: '' };
const argv = process.argv.slice(3);
for (let i = 0; i < argv.length; i++) {
  const k = argv[i].replace(/^--/, '');
  if (!(k in opts) || i + 1 >= argv.length) {
    console.error(`usage: bench-load.mjs stream|mix --url URL [options] (bad: ${argv[i]})`);
    process.exit(2);
  }
  const v = argv[++i];
  opts[k] = typeof opts[k] === 'number' ? Number(v) : v;
}
if (!opts.url || (mode !== 'stream' && mode !== 'mix')) {
  console.error('usage: bench-load.mjs stream|mix --url URL [options]');
  process.exit(2);
}

const errors = new Map(); // message -> count
function err(msg) {
  errors.set(msg, (errors.get(msg) || 0) + 1);
}
const f = (x, d = 2) => (Number.isFinite(x) ? x.toFixed(d) : '-');

async function stream() {
  const nsess = Math.max(1, Math.min(opts.sessions, opts.runs));
  const perSession = Math.ceil(opts.runs / nsess);
  const sessions = await Promise.all(Array.from({ length: nsess }, (_, i) =>
    new Session(opts.url, { name: `bench-load-stream-${i}`, sockets: perSession }).open()));
  const command = `for i in $(seq 1 ${opts.lines}); do echo line $i; done`;
  let events = 0, bytes = 0, lost = 0, ok = 0, polls = 0;
  const t0 = performance.now();

  async function one(n) {
    const s = sessions[n % nsess];
    let r;
    try {
      r = await s.call('execute_code_async', { command });
    } catch (e) {
      err(`execute_code_async: ${e.message}`);
      lost += opts.lines;
      return;
    }
    if (r.isError || r.sc?.status !== 'running') {
      err(`execute_code_async: ${r.text?.slice(0, 200)}`);
      lost += opts.lines;
      return;
    }
    const id = r.sc.execution_id;
    let last, expectSeq = 1, nextLine = 1, done = false, status, exitCode, dropped = 0, runOk = true;
    while (!done) {
      let o;
      try {
        o = await s.call('get_execution_output', last === undefined ? { execution_id: id } : { execution_id: id, last_event_id: last });
      } catch (e) {
        err(`get_execution_output: ${e.message}`);
        runOk = false;
        break;
      }
      polls++;
      if (o.isError) {
        err(`get_execution_output: ${o.text?.slice(0, 200)}`);
        runOk = false;
        break;
      }
      dropped = o.sc.dropped_events;
      for (const ev of o.sc.output) {
        if (Number(ev.event_id) !== expectSeq) {
          err(`event id ${ev.event_id} where ${expectSeq} was expected`);
          runOk = false;
        }
        expectSeq = Number(ev.event_id) + 1;
        events++;
        if (ev.type === 'stdout') {
          bytes += ev.data.length + 1;
          if (ev.data === `line ${nextLine}`) nextLine++;
          else {
            err(`stdout ${JSON.stringify(ev.data)} where "line ${nextLine}" was expected`);
            runOk = false;
          }
        } else if (ev.type === 'exit') {
          done = true;
          exitCode = ev.code;
        }
      }
      if (o.sc.last_event_id !== undefined) last = o.sc.last_event_id;
      status = o.sc.status;
      if (!done) await sleep(opts['poll-ms']);
    }
    lost += opts.lines - (nextLine - 1);
    if (done && (status !== 'completed' || exitCode !== 0)) {
      err(`run ended ${status}, exit ${exitCode}`);
      runOk = false;
    }
    if (dropped) {
      err(`${dropped} dropped events`);
      runOk = false;
    }
    if (runOk && nextLine - 1 === opts.lines) ok++;
  }

  await Promise.all(Array.from({ length: opts.runs }, (_, n) => one(n)));
  const wall = (performance.now() - t0) / 1000;
  await Promise.all(sessions.map((s) => s.close().catch(() => 0)));
  return {
    runs: opts.runs, sessions: nsess, lines: opts.lines, ok, failed: opts.runs - ok, lost, events, bytes, polls,
    wall_s: wall, events_per_s: events / wall, mb_per_s: bytes / wall / 1048576,
    summary: `${opts.runs} runs x ${opts.lines} lines over ${nsess} sessions in ${f(wall)} s: ${events} events ` +
      `(${f(events / wall, 0)} events/s, ${f(bytes / wall / 1048576)} MiB/s), ${polls} polls, ${ok} runs complete, lost lines ${lost}`,
  };
}

async function mix() {
  const lat = [];
  let runs = 0;
  const cmds = ['true', 'echo x'];
  const sessions = await Promise.all(Array.from({ length: opts.clients }, (_, i) =>
    new Session(opts.url, { name: `bench-load-mix-${i}` }).open()));
  // warm-up: the first run of a session creates its workspace
  await Promise.all(sessions.map((s) => s.call('execute_code', { command: 'true' })));
  const t0 = performance.now();
  const end = t0 + opts.duration * 1000;
  await Promise.all(sessions.map(async (s, i) => {
    for (let k = i; performance.now() < end; k++) {
      const command = cmds[k % cmds.length];
      const a = performance.now();
      let r;
      try {
        r = await s.call('execute_code', { command });
      } catch (e) {
        err(`execute_code: ${e.message}`);
        continue;
      }
      const ms = performance.now() - a;
      const out = r.sc?.output || [];
      const stdout = out.filter((e) => e.type === 'stdout').map((e) => e.data).join('\n');
      if (r.isError || r.sc.status !== 'completed' || r.sc.exit_code !== 0 || stdout !== (command === 'true' ? '' : 'x')) {
        err(`execute_code ${command}: ${r.text?.slice(0, 200)}`);
        continue;
      }
      runs++;
      lat.push(ms);
    }
  }));
  const wall = (performance.now() - t0) / 1000;
  await Promise.all(sessions.map((s) => s.close().catch(() => 0)));
  lat.sort((a, b) => a - b);
  const res = {
    clients: opts.clients, runs, wall_s: wall, runs_per_s: runs / wall,
    p50_ms: pct(lat, 50), p90_ms: pct(lat, 90), p99_ms: pct(lat, 99), max_ms: lat[lat.length - 1] ?? NaN,
  };
  res.summary = `execute_code true/echo x, ${opts.clients} clients, ${f(wall)} s: ${runs} runs, ${f(res.runs_per_s)} runs/s, ` +
    `p50 ${f(res.p50_ms)} ms, p90 ${f(res.p90_ms)} ms, p99 ${f(res.p99_ms)} ms, max ${f(res.max_ms)} ms`;
  return res;
}

const res = await (mode === 'stream' ? stream() : mix()).catch((e) => {
  err(`${mode}: ${e.message}`);
  return { summary: `${mode} aborted: ${e.message}` };
});
res.errors = [...errors.values()].reduce((a, b) => a + b, 0);
res.error_kinds = Object.fromEntries(errors);
console.log(res.summary);
for (const [msg, n] of [...errors].sort((a, b) => b[1] - a[1]).slice(0, 5)) console.log(`  error x${n}: ${msg}`);
if (opts.json) writeFileSync(opts.json, JSON.stringify(res) + '\n');
process.exit(res.errors ? 1 : 0);
