// Behaviour of the execution tools, driven through the official SDK client:
// output events, exit codes, streaming with last_event_id, stdin, cancel,
// timeouts, output caps, limits, session isolation, retention, workspaces,
// argument checking and session termination.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, rmSync } from 'node:fs';
import path from 'node:path';
import { call, connect, metric, sleep, startServer, waitFor } from './helpers.mjs';

// helpers.startServer gives each server a workspace root the sandbox user can reach
const start = startServer;

const ofType = (r, type) => r.output.filter((e) => e.type === type);
const lines = (r, type = 'stdout') => ofType(r, type).map((e) => e.data);
const lastEvent = (r) => r.output[r.output.length - 1];
// Exit codes of a shell killed by SIGTERM / SIGKILL.
const BY_SIGTERM = 128 + 15, BY_SIGKILL = 128 + 9;
// A command that prints `marker` once its SIGTERM trap is set (`action`: what the trap runs).
const trapped = (action, marker = 'TRAPPED') => `trap '${action}' TERM; echo ${marker}; while :; do sleep 0.1; done`;

// The value of gauge `name` in /metrics (mcp_sandboxd_<name>).
async function gauge(server, name) {
  const v = await metric(server, name);
  assert.ok(v !== undefined, `no gauge ${name} in /metrics`);
  return v;
}

// Waits (get_execution_output wait:true, repeated past the wait deadline) for the run to end.
async function finish(client, id) {
  for (;;) {
    const r = await call(client, 'get_execution_output', { execution_id: id, wait: true });
    assert.ok(!r._result.isError, `get_execution_output failed: ${r.error}`);
    if (r.status !== 'running' && r.status !== 'pending') return r;
  }
}

// Polls the whole output until pred(result) holds.
async function pollUntil(client, id, pred, ms = 10000) {
  const deadline = Date.now() + ms;
  let r;
  for (;;) {
    r = await call(client, 'get_execution_output', { execution_id: id });
    assert.ok(!r._result.isError, `get_execution_output failed: ${r.error}`);
    if (pred(r)) return r;
    if (Date.now() > deadline) assert.fail(`condition not met within ${ms} ms; output: ${JSON.stringify(r.output).slice(0, 2000)}`);
    await sleep(50);
  }
}

// Host pids whose command line matches `pattern` (pgrep -f).
function pgrep(pattern) {
  try {
    return execFileSync('pgrep', ['-f', pattern], { encoding: 'utf8' }).split('\n').filter(Boolean).map(Number)
      .filter((p) => p !== process.pid);
  } catch {
    return []; // exit 1: nothing matched
  }
}

async function waitNoProcesses(pattern, ignore = [], ms = 3000) {
  const deadline = Date.now() + ms;
  let left;
  for (;;) {
    left = pgrep(pattern).filter((p) => !ignore.includes(p));
    if (left.length === 0) return;
    if (Date.now() > deadline) break;
    await sleep(100);
  }
  const ps = (() => { try { return execFileSync('ps', ['-o', 'pid,user,args', '-p', left.join(',')], { encoding: 'utf8' }); } catch { return ''; } })();
  assert.fail(`processes matching '${pattern}' still alive after ${ms} ms:\n${ps}`);
}

function assertEventIds(output) {
  for (let i = 0; i < output.length; i++) {
    assert.equal(typeof output[i].event_id, 'string');
    assert.match(output[i].event_id, /^\d+$/);
    if (i > 0) assert.equal(Number(output[i].event_id), Number(output[i - 1].event_id) + 1, 'event ids are consecutive');
  }
}

describe('execution basics', () => {
  let server, client;
  before(async () => {
    server = await start({ args: ['--kill-grace-ms', '2000'] });
    ({ client } = await connect(server));
  });
  after(async () => {
    await client?.close();
    await server?.stop();
  });

  test('echo round trip', async () => {
    const r = await call(client, 'execute_code', { command: 'echo hello world' });
    assert.ok(!r._result.isError);
    assert.match(r.execution_id, /^[0-9a-f-]{36}$/);
    assert.equal(r.status, 'completed');
    assert.equal(r.exit_code, 0);
    assert.equal(r.output[0].type, 'ready');
    assert.deepEqual(lines(r), ['hello world']);
    assert.equal(lastEvent(r).type, 'exit');
    assert.equal(lastEvent(r).code, 0);
    assert.equal(typeof lastEvent(r).duration_ms, 'number');
    assertEventIds(r.output);
    assert.equal(r.last_event_id, lastEvent(r).event_id);
    assert.equal(r.dropped_events, 0);
    for (const e of r.output) assert.match(e.ts, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/);
  });

  test('exit codes are reported', async () => {
    const r = await call(client, 'execute_code', { command: 'echo before; exit 3' });
    assert.equal(r.status, 'completed');
    assert.equal(r.exit_code, 3);
    assert.equal(lastEvent(r).type, 'exit');
    assert.equal(lastEvent(r).code, 3);
    const st = await call(client, 'get_execution_status', { execution_id: r.execution_id });
    assert.equal(st.id, r.execution_id);
    assert.equal(st.status, 'completed');
    assert.equal(st.exit_code, 3);
    assert.equal(st.command, 'echo before; exit 3');
    assert.equal(st.interactive, false);
    assert.equal(typeof st.started_at, 'string');
    assert.equal(typeof st.completed_at, 'string');
    assert.equal(st.error_message, null);
  });

  test('stderr lines are stderr events', async () => {
    const r = await call(client, 'execute_code', { command: 'echo out; echo err1 >&2; echo err2 >&2' });
    assert.equal(r.exit_code, 0);
    assert.deepEqual(lines(r, 'stdout'), ['out']);
    assert.deepEqual(lines(r, 'stderr'), ['err1', 'err2']);
  });

  test('async start, incremental polls with last_event_id: no duplicate or missing ids, exit last', async () => {
    const start = await call(client, 'execute_code_async', {
      command: 'i=1; while [ $i -le 25 ]; do echo line$i; [ $((i % 5)) -eq 0 ] && echo warn$i >&2; i=$((i+1)); sleep 0.03; done',
    });
    assert.ok(!start._result.isError, start.error);
    assert.equal(start.status, 'running');
    assert.match(start.execution_id, /^[0-9a-f-]{36}$/);
    const seen = [];
    let last;
    let polls = 0;
    const deadline = Date.now() + 20000;
    for (;;) {
      const args = { execution_id: start.execution_id };
      if (last !== undefined) args.last_event_id = last;
      const r = await call(client, 'get_execution_output', args);
      assert.ok(!r._result.isError, r.error);
      polls++;
      for (const e of r.output) {
        if (last !== undefined) assert.ok(Number(e.event_id) > Number(last), `event ${e.event_id} not after ${last}`);
      }
      seen.push(...r.output);
      if (r.output.length > 0) {
        last = r.output[r.output.length - 1].event_id;
        assert.equal(r.last_event_id, last);
      }
      if (r.status !== 'running') {
        // the final answer must already hold the exit event
        if (seen.length && seen[seen.length - 1].type === 'exit') break;
      }
      assert.ok(Date.now() < deadline, 'run did not finish');
      await sleep(40);
    }
    assert.ok(polls > 2, 'expected several polls');
    assert.equal(seen[0].type, 'ready');
    assert.equal(seen[0].event_id, '1');
    assertEventIds(seen);
    assert.equal(seen[seen.length - 1].type, 'exit');
    assert.equal(seen.filter((e) => e.type === 'exit').length, 1);
    const out = seen.filter((e) => e.type === 'stdout').map((e) => e.data);
    assert.deepEqual(out, Array.from({ length: 25 }, (_, i) => `line${i + 1}`));
    assert.deepEqual(seen.filter((e) => e.type === 'stderr').map((e) => e.data), ['warn5', 'warn10', 'warn15', 'warn20', 'warn25']);
    // polling after the end with the last id gives nothing new
    const tail = await call(client, 'get_execution_output', { execution_id: start.execution_id, last_event_id: last });
    assert.deepEqual(tail.output, []);
    assert.equal(tail.status, 'completed');
  });

  test('get_execution_output wait:true returns the finished run', async () => {
    const start = await call(client, 'execute_code_async', { command: 'sleep 0.7; echo done; exit 4' });
    assert.equal(start.status, 'running');
    const t0 = Date.now();
    const r = await call(client, 'get_execution_output', { execution_id: start.execution_id, wait: true });
    assert.ok(!r._result.isError, r.error);
    assert.ok(Date.now() - t0 >= 400, 'wait returned before the run ended');
    assert.equal(r.status, 'completed');
    assert.equal(r.exit_code, 4);
    assert.deepEqual(lines(r), ['done']);
    assert.equal(lastEvent(r).type, 'exit');
    assert.equal(lastEvent(r).code, 4);
  });

  test('execute_code with wait_for_completion:false answers at once', async () => {
    const r = await call(client, 'execute_code', { command: 'sleep 0.5; echo late', wait_for_completion: false });
    assert.ok(!r._result.isError, r.error);
    assert.equal(r.status, 'running');
    assert.equal(typeof r.message, 'string');
    const done = await finish(client, r.execution_id);
    assert.deepEqual(lines(done), ['late']);
  });

  test('stdin into cat (interactive) echoes back', async () => {
    const start = await call(client, 'execute_code_async', { command: 'cat', interactive: true });
    assert.equal(start.status, 'running');
    const st = await call(client, 'get_execution_status', { execution_id: start.execution_id });
    assert.equal(st.interactive, true);
    let s = await call(client, 'send_stdin', { execution_id: start.execution_id, input_data: 'hello cat' });
    assert.equal(s.success, true, s.error);
    await pollUntil(client, start.execution_id, (r) => lines(r).includes('hello cat'));
    s = await call(client, 'send_stdin', { execution_id: start.execution_id, input_data: 'second\n' });
    assert.equal(s.success, true, s.error);
    const r = await pollUntil(client, start.execution_id, (x) => lines(x).includes('second'));
    assert.deepEqual(lines(r), ['hello cat', 'second']);
    const c = await call(client, 'cancel_execution', { execution_id: start.execution_id });
    assert.equal(c.success, true, c.error);
    const end = await finish(client, start.execution_id);
    assert.equal(end.status, 'cancelled');
  });

  test('stdin into `read x; echo got $x`', async () => {
    const start = await call(client, 'execute_code_async', { command: 'read x; echo got $x', interactive: true });
    const s = await call(client, 'send_stdin', { execution_id: start.execution_id, input_data: 'world' });
    assert.equal(s.success, true, s.error);
    const r = await finish(client, start.execution_id);
    assert.equal(r.status, 'completed');
    assert.equal(r.exit_code, 0);
    assert.deepEqual(lines(r), ['got world']);
    // the run is over: stdin is refused
    const late = await call(client, 'send_stdin', { execution_id: start.execution_id, input_data: 'more' });
    assert.equal(late._result.isError, true);
    assert.equal(late.success, false);
    assert.match(late.error, /completed|closed/);
  });

  test('send_stdin to a non-interactive run fails with a clear error', async () => {
    const start = await call(client, 'execute_code_async', { command: 'sleep 5' });
    const s = await call(client, 'send_stdin', { execution_id: start.execution_id, input_data: 'x' });
    assert.equal(s._result.isError, true);
    assert.equal(s.success, false);
    assert.match(s.error, /not interactive/);
    await call(client, 'cancel_execution', { execution_id: start.execution_id, force: true });
    await finish(client, start.execution_id);
  });

  test('cancel of sleep 100: status cancelled, cancelled then exit events', async () => {
    const start = await call(client, 'execute_code_async', { command: 'echo up; sleep 100' });
    await pollUntil(client, start.execution_id, (r) => lines(r).includes('up')); // the command runs
    const c = await call(client, 'cancel_execution', { execution_id: start.execution_id });
    assert.ok(!c._result.isError, c.error);
    assert.equal(c.success, true);
    assert.equal(c.was_running, true);
    const r = await finish(client, start.execution_id);
    // ended by the cancel's SIGTERM: not by sleep finishing (0), nor by the SIGKILL after the grace
    assert.equal(r.exit_code, BY_SIGTERM, JSON.stringify(r.output));
    assert.equal(r.status, 'cancelled');
    const types = r.output.map((e) => e.type);
    assert.ok(types.includes('cancelled'));
    assert.equal(types[types.length - 1], 'exit');
    assert.ok(types.indexOf('cancelled') < types.indexOf('exit'));
    assertEventIds(r.output);
    const st = await call(client, 'get_execution_status', { execution_id: start.execution_id });
    assert.equal(st.status, 'cancelled');
    assert.notEqual(st.completed_at, null);
    // cancelling again: not running any more
    const again = await call(client, 'cancel_execution', { execution_id: start.execution_id });
    assert.equal(again._result.isError, true);
    assert.equal(again.success, false);
    assert.match(again.error, /already completed/);
  });

  test('cancel right after the start still ends the run', async () => {
    const start = await call(client, 'execute_code_async', { command: 'sleep 100' });
    const c = await call(client, 'cancel_execution', { execution_id: start.execution_id });
    assert.equal(c.success, true, c.error);
    const r = await finish(client, start.execution_id);
    assert.equal(r.status, 'cancelled');
    // the cancel ended it (a signal, or before the command started), not sleep's own end
    assert.notEqual(r.exit_code, 0, JSON.stringify(r.output));
    assert.equal(lastEvent(r).type, 'exit');
  });

  test('stdin a run does not read is bounded, with a clear error', async () => {
    const start = await call(client, 'execute_code_async', { command: 'sleep 20', interactive: true });
    const chunk = 'z'.repeat(400 * 1024);
    let err;
    for (let i = 0; i < 5 && !err; i++) {
      const s = await call(client, 'send_stdin', { execution_id: start.execution_id, input_data: chunk });
      if (!s.success) err = s.error;
    }
    assert.ok(err, 'send_stdin kept accepting data nobody reads');
    assert.match(err, /stdin/);
    const st = await call(client, 'get_execution_status', { execution_id: start.execution_id });
    assert.equal(st.status, 'running');
    await call(client, 'cancel_execution', { execution_id: start.execution_id, force: true });
    await finish(client, start.execution_id);
  });

  test('force cancel of a run that traps SIGTERM: SIGKILL, with no SIGTERM first', async () => {
    const start = await call(client, 'execute_code_async', { command: trapped('echo GOT_TERM') });
    await pollUntil(client, start.execution_id, (r) => lines(r).includes('TRAPPED'));
    const c = await call(client, 'cancel_execution', { execution_id: start.execution_id, force: true });
    assert.equal(c.success, true, c.error);
    const r = await finish(client, start.execution_id);
    assert.equal(r.status, 'cancelled');
    assert.equal(r.exit_code, BY_SIGKILL, JSON.stringify(r.output));
    assert.ok(!lines(r).includes('GOT_TERM'), 'a force cancel sent SIGTERM (and so waited for the grace)');
    assert.equal(lastEvent(r).type, 'exit');
  });

  test('plain cancel of a run that survives SIGTERM ends by SIGKILL after the kill grace', async () => {
    const grace = 2000; // --kill-grace-ms of this server
    const start = await call(client, 'execute_code_async', { command: trapped('echo GOT_TERM') });
    await pollUntil(client, start.execution_id, (r) => lines(r).includes('TRAPPED')); // the trap is set
    const t0 = Date.now();
    const c = await call(client, 'cancel_execution', { execution_id: start.execution_id });
    assert.equal(c.success, true, c.error);
    const r = await finish(client, start.execution_id);
    const took = Date.now() - t0;
    assert.ok(took >= grace, `ended ${took} ms after the cancel, before the ${grace} ms grace`);
    assert.ok(lines(r).includes('GOT_TERM'), 'SIGTERM came first');
    assert.equal(r.exit_code, BY_SIGKILL, JSON.stringify(r.output));
    assert.equal(r.status, 'cancelled');
    assert.equal(lastEvent(r).type, 'exit');
  });

  test('timeout: status timeout, timeout event, exit last, no process left on the host', async () => {
    const before = pgrep('sleep 1000');
    const r = await call(client, 'execute_code', { command: "sh -c 'sleep 1000 & sleep 1000'", timeout_seconds: 1 });
    assert.ok(!r._result.isError, r.error);
    assert.equal(r.status, 'timeout');
    assert.ok(lastEvent(r).duration_ms >= 1000, `ended after ${lastEvent(r).duration_ms} ms, before its timeout`);
    const to = ofType(r, 'timeout');
    assert.equal(to.length, 1);
    assert.equal(to[0].timeout_seconds, 1);
    assert.equal(lastEvent(r).type, 'exit');
    assert.ok(r.output.indexOf(to[0]) < r.output.length - 1);
    const st = await call(client, 'get_execution_status', { execution_id: r.execution_id });
    assert.equal(st.status, 'timeout');
    assert.match(st.error_message, /timed out/);
    await waitNoProcesses('sleep 1000', before, 3000);
  });

  test('a 200,000-character line arrives whole in partial pieces, then the next line', async () => {
    const r = await call(client, 'execute_code', { command: "head -c 200000 /dev/zero | tr '\\0' a; echo; echo next" });
    assert.equal(r.exit_code, 0);
    const out = ofType(r, 'stdout');
    const nextIdx = out.findIndex((e) => e.data === 'next');
    assert.ok(nextIdx > 0, 'a "next" stdout event follows the long line');
    assert.equal(nextIdx, out.length - 1);
    const pieces = out.slice(0, nextIdx);
    assert.ok(pieces.length >= 4, `expected the line to be split (got ${pieces.length} piece(s))`);
    for (const p of pieces.slice(0, -1)) {
      assert.equal(p.partial, true);
      assert.ok(p.data.length <= 65536);
    }
    assert.notEqual(pieces[pieces.length - 1].partial, true, 'the piece ending the line is not partial');
    const whole = pieces.map((p) => p.data).join('');
    assert.equal(whole.length, 200000);
    assert.ok(/^a+$/.test(whole));
    assert.notEqual(out[nextIdx].partial, true);
  });

  test('invalid UTF-8 is replaced with U+FFFD, not dropped', async () => {
    const r = await call(client, 'execute_code', { command: "printf '\\377abc\\n'; printf 'ok \\303\\251 \\303\\n' >&2" });
    assert.equal(r.exit_code, 0);
    assert.deepEqual(lines(r), ['\uFFFDabc']);
    assert.deepEqual(lines(r, 'stderr'), ['ok \u00e9 \uFFFD']);
  });

  test('an unterminated last line and NUL bytes are kept', async () => {
    const r = await call(client, 'execute_code', { command: "printf 'a\\000b\\n'; printf 'no newline'; printf 'err tail' >&2" });
    assert.equal(r.exit_code, 0);
    assert.deepEqual(lines(r), ['a\uFFFDb', 'no newline']);
    assert.deepEqual(lines(r, 'stderr'), ['err tail']);
    assert.equal(lastEvent(r).type, 'exit');
  });

  test('a long line of multi-byte characters is split without breaking a character', async () => {
    const r = await call(client, 'execute_code', { command: "python3 -c \"import sys; sys.stdout.write('\\u00e9' * 100000 + '\\u20ac' * 30000 + '\\n')\"" });
    assert.equal(r.exit_code, 0, JSON.stringify(r.output).slice(0, 500));
    const out = ofType(r, 'stdout');
    assert.ok(out.length >= 3);
    const whole = out.map((e) => e.data).join('');
    assert.ok(!whole.includes('\uFFFD'), 'a character was broken at a piece boundary');
    assert.equal(whole, '\u00e9'.repeat(100000) + '\u20ac'.repeat(30000));
  });

  test('exit codes 152 and 153 from a plain `exit` are not resource limits', async () => {
    for (const code of [152, 153]) {
      const r = await call(client, 'execute_code', { command: `exit ${code}` });
      assert.equal(r.exit_code, code);
      assert.deepEqual(ofType(r, 'resource_limit'), [], `exit ${code} reported as a resource limit: ${JSON.stringify(r.output)}`);
      assert.equal(r.status, 'completed', `exit ${code} gave status ${r.status}`);
    }
  });

  test('a run bwrap cannot set up fails with its reason; a command exiting 1 completes', async () => {
    const bad = await call(client, 'execute_code', { command: 'echo never', working_directory: '/nonexistent-dir-xyz' });
    assert.equal(bad.status, 'failed', JSON.stringify(bad.output));
    const err = ofType(bad, 'error')[0];
    assert.match(err?.message ?? '', /Sandbox could not start the command: .*chdir/i);
    assert.equal(lastEvent(bad).type, 'exit');
    assert.deepEqual(lines(bad), []);
    // the same exit code from the command itself is an ordinary completion
    const one = await call(client, 'execute_code', { command: 'echo "bwrap: not really" >&2; exit 1' });
    assert.equal(one.status, 'completed');
    assert.equal(one.exit_code, 1);
    assert.deepEqual(ofType(one, 'error'), []);
  });

  test('exit 152 after a while under a 1 s CPU limit is still not a CPU limit', async () => {
    const r = await call(client, 'execute_code', { command: 'sleep 1.2; exit 152', sandbox_config: { resource_limits: { max_cpu_seconds: 1 } } });
    assert.equal(r.status, 'completed', JSON.stringify(r.output));
    assert.equal(r.exit_code, 152);
    assert.deepEqual(ofType(r, 'resource_limit'), []);
  });

  test('get_execution_output wait:true with last_event_id returns only the later events', async () => {
    const start = await call(client, 'execute_code_async', { command: 'echo first; sleep 0.5; echo second' });
    const first = await pollUntil(client, start.execution_id, (r) => lines(r).includes('first'));
    const mark = first.output.find((e) => e.data === 'first').event_id;
    const r = await call(client, 'get_execution_output', { execution_id: start.execution_id, wait: true, last_event_id: mark });
    assert.equal(r.status, 'completed');
    assert.equal(r.output[0].event_id, String(Number(mark) + 1));
    assert.deepEqual(lines(r), ['second']);
    assert.equal(lastEvent(r).type, 'exit');
  });

  test('a run that ignores SIGTERM still ends at its timeout', async () => {
    const r = await call(client, 'execute_code', { command: 'trap "" TERM; sleep 100', timeout_seconds: 1 });
    assert.equal(r.status, 'timeout');
    assert.equal(r.exit_code, BY_SIGKILL, 'SIGKILL after the grace ended it');
    assert.equal(ofType(r, 'timeout').length, 1);
    assert.equal(lastEvent(r).type, 'exit');
  });

  test('environment argument is visible; HOME is the working directory', async () => {
    const r = await call(client, 'execute_code', {
      command: 'echo "$FOO|$EMPTY|$HOME|$(pwd)"',
      environment: { FOO: 'bar baz', EMPTY: '' },
    });
    assert.equal(r.exit_code, 0);
    const [line] = lines(r);
    const [foo, empty, home, pwd] = line.split('|');
    assert.equal(foo, 'bar baz');
    assert.equal(empty, '');
    assert.ok(home.length > 1);
    assert.equal(home, pwd);
  });

  test('the workspace persists across runs of one session', async () => {
    const w = await call(client, 'execute_code', { command: 'echo persisted-$((6*7)) > note.txt; mkdir -p sub; pwd' });
    assert.equal(w.exit_code, 0);
    const r = await call(client, 'execute_code', { command: 'cat note.txt; pwd' });
    assert.equal(r.exit_code, 0);
    assert.deepEqual(lines(r), ['persisted-42', lines(w)[0]]);
    const sub = await call(client, 'execute_code', { command: 'pwd; cat ../note.txt', working_directory: 'sub' });
    assert.equal(sub.exit_code, 0);
    assert.deepEqual(lines(sub), [`${lines(w)[0]}/sub`, 'persisted-42']);
  });

  test('list_executions shows this session\'s runs', async () => {
    const r = await call(client, 'execute_code', { command: 'echo listed' });
    const l = await call(client, 'list_executions', {});
    assert.ok(Array.isArray(l.executions));
    const e = l.executions.find((x) => x.id === r.execution_id);
    assert.ok(e, 'the run is listed');
    assert.equal(e.status, 'completed');
    assert.equal(e.command, 'echo listed');
    assert.equal(e.interactive, false);
    assert.equal(typeof e.started_at, 'string');
    assert.equal(typeof e.completed_at, 'string');
  });

  test('bad arguments are refused with a message naming the problem', async () => {
    const cases = [
      ['execute_code', {}, /command/],
      ['execute_code', { command: '' }, /command/],
      ['execute_code', { command: 'echo', timeout_seconds: 0 }, /timeout_seconds/],
      ['execute_code', { command: 'echo', timeout_seconds: 999999 }, /timeout_seconds/],
      ['execute_code', { command: 'echo', timeout_seconds: 1.5 }, /timeout_seconds/],
      ['execute_code', { command: 'echo', bogus: 1 }, /bogus/],
      ['execute_code', { command: 'echo', environment: { X: 1 } }, /environment.*X|X.*string/],
      ['execute_code', { command: 'echo', environment: 'X=1' }, /environment/],
      ['execute_code', { command: 'echo', environment: { 'BAD-NAME': 'x' } }, /BAD-NAME/],
      ['execute_code', { command: 'echo', sandbox_config: { bogus: {} } }, /sandbox_config.*bogus/],
      ['execute_code', { command: 'echo', sandbox_config: { filesystem: { nope: [] } } }, /nope/],
      ['execute_code', { command: 'echo', sandbox_config: { resource_limits: { max_memory_mb: -1 } } }, /max_memory_mb/],
      ['execute_code', { command: 'echo', interactive: 'yes' }, /interactive/],
      ['execute_code', { command: 'echo', working_directory: '../..' }, /working_directory/],
      ['execute_code_async', { command: 'echo', wait_for_completion: true }, /wait_for_completion/],
      ['execute_code_async', { timeout_seconds: 5 }, /command/],
      ['get_execution_output', { execution_id: 'x', extra: true }, /extra/],
      ['get_execution_status', {}, /execution_id/],
      ['list_executions', { a: 1 }, /'a'/],
    ];
    for (const [tool, args, re] of cases) {
      const r = await call(client, tool, args);
      assert.equal(r._result.isError, true, `${tool} ${JSON.stringify(args)} should fail`);
      assert.equal(typeof r.error, 'string');
      assert.match(r.error, re, `${tool} ${JSON.stringify(args)}: ${r.error}`);
    }
    for (const [tool, args, re] of [
      ['send_stdin', { execution_id: 'x' }, /input_data/],
      ['cancel_execution', { execution_id: 'x', force: 'yes' }, /force/],
      ['cancel_execution', {}, /execution_id/],
    ]) {
      const r = await call(client, tool, args);
      assert.equal(r._result.isError, true);
      assert.equal(r.success, false);
      assert.match(r.error, re);
    }
  });

  test('unknown execution ids are not found', async () => {
    const id = '00000000-0000-4000-8000-000000000000';
    for (const tool of ['get_execution_status', 'get_execution_output']) {
      const r = await call(client, tool, { execution_id: id });
      assert.equal(r._result.isError, true);
      assert.match(r.error, /Execution not found/);
    }
  });
});

describe('output cap', () => {
  let server, client;
  before(async () => {
    server = await start({ args: ['--max-output-bytes', '1M', '--max-events', '5000', '--kill-grace-ms', '500'] });
    ({ client } = await connect(server));
  });
  after(async () => {
    await client?.close();
    await server?.stop();
  });

  test('a `yes` flood stays within the cap, ping answers meanwhile; resuming from a dropped id names the oldest', async () => {
    const start = await call(client, 'execute_code_async', { command: 'yes' });
    assert.equal(start.status, 'running');
    let pings = 0;
    let snapshot;
    // until the cap has dropped events: each ping answers while the flood runs
    while (pings < 3 || !(snapshot.dropped_events > 0)) {
      await client.ping();
      pings++;
      snapshot = await call(client, 'get_execution_output', { execution_id: start.execution_id });
      assert.equal(snapshot.status, 'running');
      assert.ok(snapshot.output.length <= 5000, `${snapshot.output.length} events held`);
    }
    assert.ok(snapshot.dropped_events > 0, 'some events were dropped');
    assert.ok(snapshot.output.length <= 5000);
    assertEventIds(snapshot.output);

    const c = await call(client, 'cancel_execution', { execution_id: start.execution_id });
    assert.equal(c.success, true, c.error);
    const r = await finish(client, start.execution_id);
    assert.equal(r.status, 'cancelled');
    assert.ok(r.output.length <= 5000, `${r.output.length} events held`);
    assert.ok(r.dropped_events > 0);
    assert.ok(JSON.stringify(r.output).length <= 1024 * 1024 + 4096, 'held output is within --max-output-bytes');
    assertEventIds(r.output);
    assert.equal(lastEvent(r).type, 'exit');
    // (the cancelled event itself may have been pushed out by output drained after it)
    assert.ok(r.output.every((e) => e.type !== 'stdout' || e.data === 'y'));
    const oldest = r.output[0].event_id;
    assert.equal(Number(oldest), r.dropped_events + 1, 'dropped count matches the oldest id held');

    const resumed = await call(client, 'get_execution_output', { execution_id: start.execution_id, last_event_id: '2' });
    assert.equal(resumed._result.isError, true);
    assert.match(resumed.error, /dropped/);
    assert.ok(resumed.error.includes(oldest), `error names the oldest id ${oldest}: ${resumed.error}`);
    // resuming right before the oldest id held is fine
    const ok = await call(client, 'get_execution_output', { execution_id: start.execution_id, last_event_id: String(Number(oldest) - 1) });
    assert.ok(!ok._result.isError, ok.error);
    assert.equal(ok.output[0].event_id, oldest);
    // an id from the future is refused
    const future = await call(client, 'get_execution_output', { execution_id: start.execution_id, last_event_id: String(Number(r.last_event_id) + 10) });
    assert.equal(future._result.isError, true);
    assert.match(future.error, /last_event_id/);
  });
});

describe('limits', () => {
  test('per-session limit: the third run of a session fails', async () => {
    const server = await start({ args: ['--max-per-session', '2', '--kill-grace-ms', '200'] });
    const { client } = await connect(server);
    const { client: other } = await connect(server);
    try {
      const a = await call(client, 'execute_code_async', { command: 'sleep 30' });
      const b = await call(client, 'execute_code_async', { command: 'sleep 30' });
      assert.equal(a.status, 'running');
      assert.equal(b.status, 'running');
      const c = await call(client, 'execute_code_async', { command: 'sleep 30' });
      assert.equal(c._result.isError, true);
      assert.equal(c.status, 'failed');
      assert.match(c.error, /limit/i);
      assert.match(c.error, /session/i);
      const w = await call(client, 'execute_code', { command: 'echo no' });
      assert.equal(w._result.isError, true);
      assert.match(w.error, /limit/i);
      // another session is not affected
      const o = await call(other, 'execute_code', { command: 'echo other' });
      assert.equal(o.exit_code, 0);
      // after one ends, the session may start again
      await call(client, 'cancel_execution', { execution_id: a.execution_id, force: true });
      await finish(client, a.execution_id);
      const d = await call(client, 'execute_code', { command: 'echo again' });
      assert.equal(d.exit_code, 0, d.error);
      await call(client, 'cancel_execution', { execution_id: b.execution_id, force: true });
      await finish(client, b.execution_id);
    } finally {
      await client.close();
      await other.close();
      await server.stop();
    }
  });

  test('global limit across two sessions', async () => {
    const server = await start({ args: ['--max-concurrent', '2', '--kill-grace-ms', '200'] });
    const { client: a } = await connect(server);
    const { client: b } = await connect(server);
    try {
      const r1 = await call(a, 'execute_code_async', { command: 'sleep 30' });
      const r2 = await call(b, 'execute_code_async', { command: 'sleep 30' });
      assert.equal(r1.status, 'running');
      assert.equal(r2.status, 'running');
      for (const c of [a, b]) {
        const r3 = await call(c, 'execute_code_async', { command: 'sleep 30' });
        assert.equal(r3._result.isError, true);
        assert.equal(r3.status, 'failed');
        assert.match(r3.error, /limit/i);
        assert.match(r3.error, /concurrent|server/i);
      }
      await call(a, 'cancel_execution', { execution_id: r1.execution_id, force: true });
      await finish(a, r1.execution_id);
      const r4 = await call(b, 'execute_code', { command: 'echo room' });
      assert.equal(r4.exit_code, 0, r4.error);
      await call(b, 'cancel_execution', { execution_id: r2.execution_id, force: true });
      await finish(b, r2.execution_id);
    } finally {
      await a.close();
      await b.close();
      await server.stop();
    }
  });
});

describe('sessions', () => {
  let server;
  before(async () => {
    server = await start({ args: ['--kill-grace-ms', '1000'] });
  });
  after(async () => {
    await server?.stop();
  });

  test('session B cannot see or touch session A\'s executions', async () => {
    const { client: a } = await connect(server, { name: 'A' });
    const { client: b } = await connect(server, { name: 'B' });
    try {
      const run = await call(a, 'execute_code_async', { command: 'cat', interactive: true });
      const id = run.execution_id;
      for (const tool of ['get_execution_status', 'get_execution_output']) {
        const r = await call(b, tool, { execution_id: id });
        assert.equal(r._result.isError, true, tool);
        assert.match(r.error, /Execution not found/, tool);
      }
      const c = await call(b, 'cancel_execution', { execution_id: id });
      assert.equal(c._result.isError, true);
      assert.equal(c.success, false);
      assert.match(c.error, /Execution not found/);
      const s = await call(b, 'send_stdin', { execution_id: id, input_data: 'from B' });
      assert.equal(s._result.isError, true);
      assert.equal(s.success, false);
      assert.match(s.error, /Execution not found/);
      const l = await call(b, 'list_executions', {});
      assert.ok(!l.executions.some((e) => e.id === id));
      // A's run was not touched
      const st = await call(a, 'get_execution_status', { execution_id: id });
      assert.equal(st.status, 'running');
      const out = await call(a, 'get_execution_output', { execution_id: id });
      assert.ok(!lines(out).includes('from B'));
      const la = await call(a, 'list_executions', {});
      assert.ok(la.executions.some((e) => e.id === id && e.status === 'running' && e.interactive === true));
      await call(a, 'cancel_execution', { execution_id: id, force: true });
      await finish(a, id);
    } finally {
      await a.close();
      await b.close();
    }
  });

  test('terminating a session kills its running executions', async () => {
    const marker = 4000 + Math.floor(Math.random() * 50000);
    const pattern = `sleep ${marker}`;
    const { client, transport } = await connect(server);
    const ws = lines(await call(client, 'execute_code', { command: 'echo data > f; pwd' }))[0];
    assert.ok(existsSync(path.join(ws, 'f')), 'the workspace is on the host');
    const before = pgrep(pattern);
    const run = await call(client, 'execute_code_async', { command: `sleep ${marker}` });
    assert.equal(run.status, 'running');
    const run2 = await call(client, 'execute_code_async', { command: `trap "" TERM; sleep ${marker}` });
    assert.equal(run2.status, 'running');
    // positive control: the runs are visible on the host
    const deadline = Date.now() + 3000;
    while (pgrep(pattern).filter((p) => !before.includes(p)).length === 0 && Date.now() < deadline) await sleep(50);
    assert.ok(pgrep(pattern).filter((p) => !before.includes(p)).length > 0, 'the run is visible on the host');
    await transport.terminateSession();
    await client.close();
    await waitNoProcesses(pattern, before, 4000);
    // and its workspace is removed
    const wsDeadline = Date.now() + 3000;
    while (existsSync(ws) && Date.now() < wsDeadline) await sleep(100);
    assert.ok(!existsSync(ws), `workspace ${ws} still exists after the session ended`);
    // the server carries on
    const { client: c2 } = await connect(server);
    const r = await call(c2, 'execute_code', { command: 'echo still here' });
    assert.deepEqual(lines(r), ['still here']);
    await c2.close();
  });
});

describe('waiting', () => {
  let server, client;
  before(async () => {
    server = await start({ args: ['--wait-deadline', '1'] });
    ({ client } = await connect(server));
  });
  after(async () => {
    await client?.close();
    await server?.stop();
  });

  test('execute_code answers at the wait deadline with the run still going', async () => {
    const t0 = Date.now();
    const r = await call(client, 'execute_code', { command: 'echo early; sleep 2.5; echo late' });
    const took = Date.now() - t0;
    assert.ok(took >= 1000, `answered after ${took} ms with --wait-deadline 1`);
    assert.ok(!r._result.isError, r.error);
    assert.equal(r.status, 'running'); // answered at the deadline, not when the run ended
    assert.equal(r.exit_code, null);
    assert.equal(typeof r.message, 'string');
    assert.deepEqual(lines(r), ['early']);
    const w = await call(client, 'get_execution_output', { execution_id: r.execution_id, wait: true });
    assert.equal(w.status, 'running', 'get_execution_output wait:true also stops at the deadline');
    const done = await finish(client, r.execution_id);
    assert.deepEqual(lines(done), ['early', 'late']);
  });

  test('a waiting call whose client goes away does not disturb the server', async () => {
    const { rawSession, raw } = await import('./helpers.mjs');
    const sid = await rawSession(server);
    const headers = { 'mcp-session-id': sid, 'mcp-protocol-version': '2025-06-18' };
    await raw(server, { headers, body: { jsonrpc: '2.0', method: 'notifications/initialized' } });
    const tool = (id, command) => ({ jsonrpc: '2.0', id, method: 'tools/call', params: { name: 'execute_code', arguments: { command } } });
    assert.equal(await gauge(server, 'requests_waiting'), 0);
    const ac = new AbortController();
    const pending = fetch(`${server.base}/mcp`, {
      method: 'POST',
      signal: ac.signal,
      headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', ...headers },
      // runs until the file `go` appears in the session's workspace
      body: JSON.stringify(tool(2, 'while [ ! -e go ]; do sleep 0.05; done; echo x')),
    }).catch((e) => e);
    await waitFor(async () => (await gauge(server, 'requests_waiting')) === 1, { what: 'the call to be parked' });
    ac.abort();
    await pending;
    const go = await raw(server, { headers, body: tool(3, 'touch go') });
    assert.equal(go.json?.result?.structuredContent?.status, 'completed', go.text);
    // the run ends and the parked call is answered into the void: nothing stays parked
    await waitFor(async () => (await gauge(server, 'requests_waiting')) === 0, { what: 'the parked call to be answered' });
    const h = await fetch(`${server.base}/health`);
    assert.equal(h.status, 200);
    const r = await call(client, 'execute_code', { command: 'echo alive' });
    assert.deepEqual(lines(r), ['alive']);
    await raw(server, { method: 'DELETE', headers });
  });
});

describe('retention', () => {
  test('a finished run is forgotten after --retention seconds', async () => {
    const server = await start({ args: ['--retention', '1'] });
    const { client } = await connect(server);
    try {
      const r = await call(client, 'execute_code', { command: 'echo short-lived' });
      assert.equal(r.exit_code, 0);
      const st = await call(client, 'get_execution_status', { execution_id: r.execution_id });
      assert.equal(st.status, 'completed');
      const gone = await waitFor(async () => {
        const g = await call(client, 'get_execution_status', { execution_id: r.execution_id });
        return g._result.isError ? g : undefined;
      }, { what: 'the run to be forgotten' });
      assert.match(gone.error, /not found/i);
      const out = await call(client, 'get_execution_output', { execution_id: r.execution_id });
      assert.equal(out._result.isError, true);
      assert.match(out.error, /not found/i);
      const l = await call(client, 'list_executions', {});
      assert.ok(!l.executions.some((e) => e.id === r.execution_id));
      // the workspace itself stays for the session
      const w = await call(client, 'execute_code', { command: 'echo x > f; cat f' });
      assert.deepEqual(lines(w), ['x']);
    } finally {
      await client.close();
      await server.stop();
    }
  });
});

describe('shutdown', () => {
  test('SIGTERM ends running runs (recorded as cancelled) and removes every workspace before exit', async () => {
    const server = await start({ args: ['--shutdown-grace', '4', '--kill-grace-ms', '500'] });
    const { client } = await connect(server);
    const done = await call(client, 'execute_code', { command: 'for i in $(seq 200); do echo x > f$i; done; pwd' });
    const home = lines(done).at(-1);
    assert.ok(existsSync(home), home);
    const running = await call(client, 'execute_code_async', { command: 'trap "" TERM; sleep 100' });
    assert.equal(running.status, 'running');
    await client.close();
    const res = await server.stop({ keepDir: true });
    try {
      assert.equal(res.code, 0);
      assert.ok(!existsSync(home), `workspace ${home} left behind`);
      assert.match(server.log(), /shutdown complete/);
      assert.match(server.log(), new RegExp(`execution ${running.execution_id} cancelled`));
    } finally {
      rmSync(server.dir, { recursive: true, force: true });
    }
  });
});

describe('parked waits per execution are capped', () => {
  let server;
  before(async () => { server = await start(); });
  after(async () => { await server?.stop(); });

  test(`past 64 waiting calls on one run, further calls answer at once and say why`, async () => {
    const { client, transport } = await connect(server);
    // runs until the test creates `go` in the workspace: every call below arrives while it runs
    const r = await call(client, 'execute_code_async', { command: 'while [ ! -e go ]; do sleep 0.05; done; echo done' });
    const sid = transport.sessionId;
    const body = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/call',
      params: { name: 'get_execution_output', arguments: { execution_id: r.execution_id, wait: true } } });
    let answered = 0;
    const calls = Array.from({ length: 70 }, async () => {
      const res = await fetch(`${server.base}/mcp`, {
        method: 'POST', body,
        headers: { 'content-type': 'application/json', accept: 'application/json', 'mcp-session-id': sid, 'mcp-protocol-version': '2025-06-18' },
      });
      const j = await res.json();
      answered++;
      return { sc: j.result.structuredContent };
    });
    // six answer while the run still waits for `go` (at once: the wait deadline is 55 s), 64 stay parked
    await waitFor(() => answered === 6, { what: 'six answers over the cap' });
    await waitFor(async () => (await gauge(server, 'requests_waiting')) === 64, { what: '64 parked calls' });
    assert.equal(answered, 6);
    const go = await call(client, 'execute_code', { command: 'touch go' });
    assert.equal(go.status, 'completed');
    const answers = await Promise.all(calls);
    const early = answers.filter((a) => a.sc.status === 'running');
    const waited = answers.filter((a) => a.sc.status === 'completed');
    assert.equal(early.length, 6, 'six over the cap');
    assert.equal(waited.length, 64);
    for (const a of early)
      assert.match(a.sc.message, /^Still running; 64 requests already wait on this execution, so this one did not/);
    for (const a of waited) assert.ok(a.sc.output.some((e) => e.data === 'done'));
    assert.match(server.log(), /requests already wait on it; answering without waiting/);
    await client.close();
  });
});
