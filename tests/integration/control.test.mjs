// Issue 13, "Done when": a modern-era client runs, polls, sends stdin and
// cancels with nothing but handles, across replicas through Redis. Two real
// replicas share a real redis-server (keys under --redis-prefix ctl:); runs
// live on A (ctl-a) and every control call goes to B (ctl-b), which forwards
// it to A over the control channel (replica:{id}:control / :replies) and
// relays A's answer. Also: another principal, forged and malformed commands
// pushed with redis-cli, an owner that is stopped (SIGSTOP) or gone (SIGKILL).
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { Client as ClientV2, StreamableHTTPClientTransport as TransportV2 } from '@modelcontextprotocol/client';
import { call, connect, metric as metricOf, sessionKey, startRedis, startServer, waitFor } from './helpers.mjs';
import { MODERN, headersFor, modernTool, toolCall } from './modern-helpers.mjs';

const ALICE = 'alice-control-token-0123456789';
const BOB = 'bob-control-token-0123456789ab';
const PREFIX = 'ctl:';

// /metrics of `server` (it asks for a principal's token).
const metric = (server, name) => metricOf(server, name, { token: ALICE });
const stdoutOf = (out) => (out.output ?? []).filter((e) => e.type === 'stdout').map((e) => e.data);

// A TCP proxy in front of Redis that passes everything, except that once
// armed it holds the first data carrying `marker` until the client closes
// that connection, then delivers it and closes: a command written, its
// answer lost, the command landing anyway (a connection that timed out while
// the command was on its way). `caught` / `delivered` resolve on each step.
function holdingProxy(redisPort, marker) {
  const ctl = { armed: false };
  const steps = () => {
    ctl.caught = new Promise((r) => { ctl.onCaught = r; });
    ctl.delivered = new Promise((r) => { ctl.onDelivered = r; });
  };
  steps();
  ctl.arm = () => { steps(); ctl.armed = true; };
  ctl.server = net.createServer((down) => {
    const up = net.connect(redisPort, '127.0.0.1');
    let held = null;
    down.on('data', (d) => {
      if (held === null && ctl.armed && d.includes(marker)) {
        ctl.armed = false;
        held = d;
        ctl.onCaught();
      } else if (held !== null) {
        held = Buffer.concat([held, d]);
      } else {
        up.write(d);
      }
    });
    down.on('close', () => {
      if (held === null) return up.end();
      up.end(held, () => ctl.onDelivered());
      held = null;
    });
    up.on('data', (d) => { if (!down.destroyed) down.write(d); });
    up.on('close', () => down.destroy());
    up.on('error', () => down.destroy());
    down.on('error', () => {});
  });
  ctl.listen = () => new Promise((r) => ctl.server.listen(0, '127.0.0.1', () => r(ctl.server.address().port)));
  ctl.close = () => new Promise((r) => ctl.server.close(r));
  return ctl;
}

describe('the control channel: send_stdin and cancel_execution through another replica', () => {
  let redis, a, b, dir;
  before(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'sandboxd-control-'));
    writeFileSync(path.join(dir, 'tokens'), `alice:${ALICE}\nbob:${BOB}\n`);
    redis = await startRedis();
    const common = ['--tokens-file', path.join(dir, 'tokens'), '--redis-prefix', PREFIX];
    // A's heartbeat lapses 6 s after it stops; B sweeps lost replicas only every 60 s, so a stopped
    // or killed A keeps its runs "running" in Redis while B is asked to reach them
    a = await startServer({ env: { REDIS_URL: redis.url }, args: [...common, '--replica-id', 'ctl-a', '--heartbeat', '2'] });
    b = await startServer({ env: { REDIS_URL: redis.url }, args: [...common, '--replica-id', 'ctl-b', '--heartbeat', '60'] });
  });
  after(async () => { await a?.stop(); await b?.stop(); await redis?.stop(); rmSync(dir, { recursive: true, force: true }); });

  // A `cat` run on A, seen running through B (its record in Redis).
  async function catOnA() {
    const run = await modernTool(a, 'execute_code_async', { command: 'cat', interactive: true }, ALICE);
    await waitFor(async () => (await modernTool(b, 'get_execution_status', { execution_id: run.execution_id }, ALICE)).status === 'running',
      { what: 'the run on A, through B' });
    return run;
  }

  // Waits until `server` shows the run's stdout holding `line`; returns the output.
  async function outputHas(server, id, line, token = ALICE) {
    let out;
    await waitFor(async () => {
      out = await modernTool(server, 'get_execution_output', { execution_id: id }, token);
      return stdoutOf(out).includes(line);
    }, { what: `${line} in the output through ${server === a ? 'A' : 'B'}` });
    return out;
  }

  // Pushes a command onto A's control list as another replica would.
  const pushToA = (cmd) => redis.cli('RPUSH', `${PREFIX}replica:ctl-a:control`, typeof cmd === 'string' ? cmd : JSON.stringify(cmd));
  const command = (over = {}) => ({
    nonce: '0123456789abcdef0123456789abcdef', op: 'send_stdin', tenant: sessionKey('alice'), args: {},
    reply_to: `${PREFIX}replica:tester:replies`, from: 'tester', deadline_ms: Date.now() + 60000, ...over,
  });

  test('modern era, handles only: stdin, output and cancel through B; the run ends cancelled on A and B', async () => {
    const run = await catOnA();
    const sentBefore = await metric(b, 'control_commands_sent_total');
    const s = await modernTool(b, 'send_stdin', { execution_id: run.execution_id, workspace_id: run.workspace_id, input_data: 'hello-through-b' }, ALICE);
    assert.deepEqual(s, { success: true }, 'the answer a local send_stdin gives');
    await outputHas(b, run.execution_id, 'hello-through-b');
    const c = await modernTool(b, 'cancel_execution', { execution_id: run.execution_id }, ALICE);
    assert.deepEqual(c, { success: true, was_running: true }, 'the answer a local cancel_execution gives');
    for (const [name, server] of [['A', a], ['B', b]])
      await waitFor(async () => (await modernTool(server, 'get_execution_status', { execution_id: run.execution_id }, ALICE)).status === 'cancelled',
        { what: `the run cancelled, seen from ${name}` });
    const out = await modernTool(b, 'get_execution_output', { execution_id: run.execution_id }, ALICE);
    assert.equal(out.status, 'cancelled');
    const cancelled = out.output.find((e) => e.type === 'cancelled');
    assert.deepEqual({ type: cancelled?.type, force: cancelled?.force }, { type: 'cancelled', force: false }, JSON.stringify(out.output));
    const exit = out.output.find((e) => e.type === 'exit');
    assert.equal(exit?.code, 128 + 15, `killed by SIGTERM: ${JSON.stringify(out.output)}`);
    // a second cancel through B: A's own answer for a run that ended
    const again = await modernTool(b, 'cancel_execution', { execution_id: run.execution_id }, ALICE);
    assert.equal(again.success, false);
    assert.match(again.error, /already completed \(status: cancelled\)/);
    assert.ok(await metric(b, 'control_commands_sent_total') >= sentBefore + 2);
    assert.ok(await metric(a, 'control_commands_received_total') >= 2);
    assert.ok(await metric(a, 'control_commands_answered_total') >= 2);
  });

  test('another principal through B gets the unknown-id answer; A checks the tenant itself', async () => {
    const run = await catOnA();
    const unknown = 'deadbeef-dead-4eef-8eef-deadbeefdead';
    const bobStdin = await modernTool(b, 'send_stdin', { execution_id: run.execution_id, input_data: 'from-bob' }, BOB);
    const bobUnknown = await modernTool(b, 'send_stdin', { execution_id: unknown, input_data: 'from-bob' }, BOB);
    assert.deepEqual(bobStdin, { ...bobUnknown, error: `Execution not found: ${run.execution_id}` });
    const bobCancel = await modernTool(b, 'cancel_execution', { execution_id: run.execution_id }, BOB);
    assert.deepEqual(bobCancel, { success: false, was_running: false, error: `Execution not found: ${run.execution_id}` });
    // a forged command naming bob's tenant, straight onto A's list: A answers as for an unknown id
    pushToA(command({ nonce: 'b0b0000000000000000000000000b0b0', tenant: sessionKey('bob'), args: { execution_id: run.execution_id, input_data: 'forged-bob' } }));
    const bobReply = JSON.parse((await redis.acli('BLPOP', `${PREFIX}replica:tester:replies`, '10')).split('\n')[1]);
    assert.deepEqual(bobReply, { nonce: 'b0b0000000000000000000000000b0b0', from: 'ctl-a', is_error: true,
      result: { success: false, error: `Execution not found: ${run.execution_id}` } });
    // the same command with alice's tenant is run: the forged one was refused for its tenant alone
    pushToA(command({ args: { execution_id: run.execution_id, input_data: 'forged-alice' } }));
    const aliceReply = JSON.parse((await redis.acli('BLPOP', `${PREFIX}replica:tester:replies`, '10')).split('\n')[1]);
    assert.deepEqual(aliceReply.result, { success: true });
    const out = await outputHas(a, run.execution_id, 'forged-alice');
    assert.deepEqual(stdoutOf(out), ['forged-alice'], 'nothing of bob reached the run');
    assert.equal(out.status, 'running');
    assert.equal((await modernTool(a, 'cancel_execution', { execution_id: run.execution_id }, ALICE)).success, true);
  });

  test('malformed, oversized, misdirected and expired commands on A\'s list are dropped and counted; A keeps serving', async () => {
    const before = await metric(a, 'control_messages_dropped_total');
    const received = await metric(a, 'control_commands_received_total');
    pushToA('not json');
    pushToA({ nonce: 7 });
    pushToA(command({ nonce: 'NOT-HEX', args: { execution_id: 'x', input_data: 'y' } }));
    pushToA(command({ op: 'execute_code', args: { command: 'id' } }));
    pushToA(command({ reply_to: 'elsewhere', args: { execution_id: 'x', input_data: 'y' } }));
    pushToA(command({ deadline_ms: 1, args: { execution_id: 'x', input_data: 'y' } }));
    pushToA(command({ args: 'not an object' }));
    // 1.1 MB: over CONTROL_MESSAGE_MAX (built inside Redis: an argument that large cannot go on a command line)
    redis.cli('EVAL', "return redis.call('RPUSH', KEYS[1], string.rep('x', 1100000))", '1', `${PREFIX}replica:ctl-a:control`);
    await waitFor(async () => await metric(a, 'control_messages_dropped_total') >= before + 8, { what: 'eight drops counted on A' });
    assert.equal(await metric(a, 'control_commands_received_total'), received, 'none of them was run');
    assert.equal(redis.cli('EXISTS', 'elsewhere'), '0', 'no answer written to a key outside the reply lists');
    assert.match(a.log(), /control channel: dropped a command/);
    // A still serves: a forwarded call works
    const run = await catOnA();
    assert.deepEqual(await modernTool(b, 'send_stdin', { execution_id: run.execution_id, input_data: 'still-here' }, ALICE), { success: true });
    await outputHas(b, run.execution_id, 'still-here');
    assert.equal((await modernTool(b, 'cancel_execution', { execution_id: run.execution_id }, ALICE)).success, true);
  });

  test('legacy era (SDK v1) and @modelcontextprotocol/client 2.x through B', async () => {
    const run = await catOnA();
    const { client } = await connect(b, { token: ALICE });
    const s = await call(client, 'send_stdin', { execution_id: run.execution_id, input_data: 'from-v1' });
    assert.equal(s.success, true, JSON.stringify(s));
    assert.ok(!s._result.isError);
    await waitFor(async () => stdoutOf(await call(client, 'get_execution_output', { execution_id: run.execution_id })).includes('from-v1'),
      { what: 'from-v1 through the v1 client' });
    await client.close();
    const v2 = new ClientV2({ name: 'v2-control', version: '1' }, { versionNegotiation: { mode: { pin: MODERN } } });
    const transport = new TransportV2(b.url, { requestInit: { headers: { Authorization: `Bearer ${ALICE}` } } });
    await v2.connect(transport);
    assert.equal(v2.getNegotiatedProtocolVersion(), MODERN);
    const i = await v2.callTool({ name: 'send_stdin', arguments: { execution_id: run.execution_id, input_data: 'from-v2' } });
    assert.deepEqual(i.structuredContent, { success: true });
    const c = await v2.callTool({ name: 'cancel_execution', arguments: { execution_id: run.execution_id, force: true } });
    assert.deepEqual(c.structuredContent, { success: true, was_running: true });
    await v2.close();
    await waitFor(async () => (await modernTool(a, 'get_execution_status', { execution_id: run.execution_id }, ALICE)).status === 'cancelled',
      { what: 'the run cancelled on A' });
    const out = await modernTool(a, 'get_execution_output', { execution_id: run.execution_id }, ALICE);
    assert.deepEqual(stdoutOf(out), ['from-v1', 'from-v2']);
    assert.equal(out.output.find((e) => e.type === 'cancelled')?.force, true);
  });

  test('an owner that does not answer (SIGSTOP): a clear timeout on B, whose other calls still answer; the late command is not run', async () => {
    const run = await catOnA();
    const timedOut = await metric(b, 'control_calls_timed_out_total');
    const dropped = await metric(a, 'control_messages_dropped_total');
    a.proc.kill('SIGSTOP');
    let answer;
    try {
      let settled = false;
      const pending = modernTool(b, 'send_stdin', { execution_id: run.execution_id, input_data: 'late-data' }, ALICE)
        .finally(() => { settled = true; });
      const meanwhile = await modernTool(b, 'execute_code', { command: 'echo meanwhile' }, ALICE);
      assert.equal(meanwhile.status, 'completed');
      assert.equal(settled, false, 'B answered another call while the forwarded one waited');
      answer = await pending;
    } finally {
      a.proc.kill('SIGCONT');
    }
    assert.equal(answer.success, false);
    assert.match(answer.error, new RegExp(`Execution ${run.execution_id} runs on replica ctl-a, which could not be reached: replica ctl-a did not answer within 5 s`));
    assert.equal(await metric(b, 'control_calls_timed_out_total'), timedOut + 1);
    // A, back, finds the command past its deadline: dropped, not run
    await waitFor(async () => await metric(a, 'control_messages_dropped_total') >= dropped + 1, { what: 'the late command dropped on A' });
    const out = await modernTool(a, 'get_execution_output', { execution_id: run.execution_id }, ALICE);
    assert.equal(out.status, 'running');
    assert.ok(!stdoutOf(out).includes('late-data'), JSON.stringify(out.output));
    // frozen past its heartbeat's TTL, A counts as gone until its next beat: then B reaches it again
    await waitFor(() => redis.cli('EXISTS', `${PREFIX}replica:ctl-a`) === '1', { what: "A's heartbeat back" });
    assert.deepEqual(await modernTool(b, 'cancel_execution', { execution_id: run.execution_id }, ALICE), { success: true, was_running: true });
  });

  test('a flood of large messages on A\'s control list: A hands at most 16 messages, 4 MiB, to its loop at a time, and counts the waits', async () => {
    const dropped = await metric(a, 'control_messages_dropped_total');
    // 40 well-formed JSON messages of 0.5 MB, each 250,000 array elements for the loop to parse, pushed by Redis itself
    // (the thread pops one in a fraction of the time the loop spends on it): malformed commands, all dropped
    const N = 40;
    redis.cli('EVAL', `local m = '{"nonce":"flood","args":[' .. string.rep('1,', 249999) .. '1]}' `
      + `for i = 1, ${N} do redis.call('RPUSH', KEYS[1], m) end return #m`, '1', `${PREFIX}replica:ctl-a:control`);
    await waitFor(async () => await metric(a, 'control_messages_dropped_total') >= dropped + N, { ms: 60000, what: `${N} floods dropped on A` });
    assert.equal(redis.cli('LLEN', `${PREFIX}replica:ctl-a:control`), '0');
    const peak = await metric(a, 'control_popped_queued_peak');
    const peakBytes = await metric(a, 'control_popped_queued_peak_bytes');
    assert.ok(peak >= 1 && peak <= 16, `peak ${peak}`);
    assert.ok(peakBytes >= 500000 && peakBytes <= 4 * 1048576, `peak bytes ${peakBytes}`);
    assert.ok(await metric(a, 'control_pops_delayed_total') >= 1, 'the control thread waited for the loop');
    assert.equal(await metric(a, 'control_popped_queued'), 0);
    // A still answers forwarded calls
    const run = await catOnA();
    assert.deepEqual(await modernTool(b, 'send_stdin', { execution_id: run.execution_id, input_data: 'after-flood' }, ALICE), { success: true });
    await outputHas(a, run.execution_id, 'after-flood');
    assert.equal((await modernTool(b, 'cancel_execution', { execution_id: run.execution_id }, ALICE)).success, true);
  });

  test('a command whose write times out after it went out: the requester waits for the owner\'s answer, not "failed" about a line that lands', async () => {
    const proxy = holdingProxy(redis.port, '"op":"send_stdin"');
    const port = await proxy.listen();
    // C reaches Redis through the proxy (its reader times out after 2 s); A holds the run
    const c = await startServer({ env: { REDIS_URL: `redis://127.0.0.1:${port}` },
      args: ['--tokens-file', path.join(dir, 'tokens'), '--redis-prefix', PREFIX, '--replica-id', 'ctl-c2', '--heartbeat', '60'] });
    try {
      const run = await catOnA();
      const unsure = await metric(c, 'control_calls_push_unsure_total');
      proxy.arm();
      const answer = modernTool(c, 'send_stdin', { execution_id: run.execution_id, input_data: 'landed-late' }, ALICE);
      await proxy.caught;
      await proxy.delivered; // C gave up on the connection; the command reaches Redis now
      assert.deepEqual(await answer, { success: true }, 'the answer agrees with what happened');
      await outputHas(a, run.execution_id, 'landed-late');
      assert.equal(await metric(c, 'control_calls_push_unsure_total'), unsure + 1);
      assert.equal((await modernTool(b, 'cancel_execution', { execution_id: run.execution_id }, ALICE)).success, true);
    } finally {
      await c.stop();
      await proxy.close();
    }
  });

  test('a replica stopped cleanly removes its heartbeat under the prefix and leaves the replicas set', async () => {
    const c = await startServer({ env: { REDIS_URL: redis.url },
      args: ['--tokens-file', path.join(dir, 'tokens'), '--redis-prefix', PREFIX, '--replica-id', 'ctl-c', '--heartbeat', '1'] });
    await waitFor(() => redis.cli('EXISTS', `${PREFIX}replica:ctl-c`) === '1' && redis.cli('SISMEMBER', `${PREFIX}replicas`, 'ctl-c') === '1',
      { what: "C's heartbeat" });
    await c.stop();
    // at once: a forwarded call to it is "not alive", not a 5 s wait for a replica that is gone
    assert.equal(redis.cli('EXISTS', `${PREFIX}replica:ctl-c`), '0');
    assert.equal(redis.cli('SISMEMBER', `${PREFIX}replicas`, 'ctl-c'), '0');
  });

  test('an owner that is gone (SIGKILL, heartbeat expired): B says so at once', async () => {
    const run = await catOnA();
    const unreachable = await metric(b, 'control_calls_unreachable_total');
    a.proc.kill('SIGKILL');
    await waitFor(() => redis.cli('EXISTS', `${PREFIX}replica:ctl-a`) === '0', { ms: 20000, what: "A's heartbeat to expire" });
    const r = await modernTool(b, 'send_stdin', { execution_id: run.execution_id, input_data: 'x' }, ALICE);
    assert.equal(r.success, false);
    assert.match(r.error, /replica ctl-a is not alive \(its heartbeat in Redis expired\)/);
    const c = await modernTool(b, 'cancel_execution', { execution_id: run.execution_id }, ALICE);
    assert.deepEqual(Object.keys(c).sort(), ['error', 'success', 'was_running']);
    assert.match(c.error, /is not alive/);
    assert.equal(await metric(b, 'control_calls_unreachable_total'), unreachable + 2);
    assert.equal(await metric(b, 'control_calls_waiting'), 0);
  });
});

describe('the control channel\'s limits: 256 forwarded calls waiting, 64 a principal, and the answer they get at shutdown', () => {
  let redis, a, b, dir;
  // five principals: four fill the 256 slots, 64 each; the fifth finds none left
  const tokens = [['alice', ALICE], ...['bob', 'carol', 'dave', 'eve'].map((n) => [n, `${n}-control-cap-token-0123456789`])];
  before(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'sandboxd-control-cap-'));
    writeFileSync(path.join(dir, 'tokens'), tokens.map(([n, t]) => `${n}:${t}\n`).join(''));
    redis = await startRedis();
    const common = ['--tokens-file', path.join(dir, 'tokens'), '--redis-prefix', PREFIX];
    // A's heartbeat outlives the test while it is stopped: its calls wait rather than being "not alive"
    a = await startServer({ env: { REDIS_URL: redis.url }, args: [...common, '--replica-id', 'cap-a', '--heartbeat', '60'] });
    // B's shutdown grace (1 s) is shorter than a forwarded call's 5 s: its waiting calls are still waiting when its loop ends
    b = await startServer({ env: { REDIS_URL: redis.url }, args: [...common, '--replica-id', 'cap-b', '--heartbeat', '60', '--shutdown-grace', '1'] });
  });
  after(async () => {
    a?.proc.kill('SIGCONT');
    await a?.stop(); await b?.stop(); await redis?.stop(); rmSync(dir, { recursive: true, force: true });
  });

  test('a client that goes away while its forwarded call waits: the owner\'s answer is dropped with the request, B keeps serving', async () => {
    const run = await modernTool(a, 'execute_code_async', { command: 'cat', interactive: true }, ALICE);
    await waitFor(async () => (await modernTool(b, 'get_execution_status', { execution_id: run.execution_id }, ALICE)).status === 'running',
      { what: 'the run on A, through B' });
    const late = await metric(b, 'control_replies_late_total');
    a.proc.kill('SIGSTOP');
    try {
      const body = toolCall(7, 'send_stdin', { execution_id: run.execution_id, input_data: 'client-gone' });
      const req = http.request(b.url, { method: 'POST', headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream',
        authorization: `Bearer ${ALICE}`, 'mcp-param-execution-id': run.execution_id, ...headersFor(body) } });
      req.on('error', () => {});
      req.end(JSON.stringify(body));
      await waitFor(async () => await metric(b, 'control_calls_waiting') === 1, { what: 'the call waiting on B' });
      req.destroy();
    } finally {
      a.proc.kill('SIGCONT');
    }
    // A takes the command (its deadline is 4 s after it was sent) and answers; B finishes the call for nobody
    await waitFor(async () => stdoutOf(await modernTool(a, 'get_execution_output', { execution_id: run.execution_id }, ALICE)).includes('client-gone'),
      { what: 'the line on A' });
    await waitFor(async () => await metric(b, 'control_calls_waiting') === 0, { what: 'no call waiting on B' });
    assert.equal(await metric(b, 'control_replies_late_total'), late, 'answered in time, to a request that is gone');
    assert.deepEqual(await modernTool(b, 'send_stdin', { execution_id: run.execution_id, input_data: 'next' }, ALICE), { success: true });
    assert.deepEqual(await modernTool(b, 'cancel_execution', { execution_id: run.execution_id }, ALICE), { success: true, was_running: true });
  });

  test('a legacy session that ends (DELETE) while its forwarded call waits: the call still gets the owner\'s answer', async () => {
    const run = await modernTool(a, 'execute_code_async', { command: 'cat', interactive: true }, ALICE);
    await waitFor(async () => (await modernTool(b, 'get_execution_status', { execution_id: run.execution_id }, ALICE)).status === 'running',
      { what: 'the run on A, through B' });
    const { client, transport } = await connect(b, { token: ALICE });
    a.proc.kill('SIGSTOP');
    let pending;
    try {
      pending = call(client, 'send_stdin', { execution_id: run.execution_id, input_data: 'session-gone' });
      await waitFor(async () => await metric(b, 'control_calls_waiting') === 1, { what: 'the call waiting on B' });
      const del = await fetch(b.url, { method: 'DELETE', headers: { authorization: `Bearer ${ALICE}`, 'mcp-session-id': transport.sessionId,
        'mcp-protocol-version': '2025-06-18' } });
      assert.equal(del.status, 200);
    } finally {
      a.proc.kill('SIGCONT');
    }
    const r = await pending;
    assert.equal(r.success, true, JSON.stringify(r));
    await waitFor(async () => stdoutOf(await modernTool(a, 'get_execution_output', { execution_id: run.execution_id }, ALICE)).includes('session-gone'),
      { what: 'the line on A' });
    await client.close().catch(() => {});
    assert.deepEqual(await modernTool(b, 'cancel_execution', { execution_id: run.execution_id }, ALICE), { success: true, was_running: true });
  });

  test('a principal\'s 65th waiting call and the 257th in all are refused at once; a shutdown answers the 256 waiting, saying the command may still run', async () => {
    const runs = [];
    for (const [, token] of tokens) {
      const run = await modernTool(a, 'execute_code_async', { command: 'cat', interactive: true }, token);
      await waitFor(async () => (await modernTool(b, 'get_execution_status', { execution_id: run.execution_id }, token)).status === 'running',
        { what: 'the run on A, through B' });
      runs.push(run);
    }
    a.proc.kill('SIGSTOP');
    const waiting = [];
    try {
      // four principals, 64 calls each, each batch seen waiting on B before the next (B's Redis reads stay under their own cap)
      for (let k = 0; k < 4; k++) {
        for (let i = 0; i < 64; i++)
          waiting.push([runs[k], modernTool(b, 'send_stdin', { execution_id: runs[k].execution_id, input_data: `w${k}-${i}` }, tokens[k][1])]);
        await waitFor(async () => await metric(b, 'control_calls_waiting') === 64 * (k + 1), { what: `${64 * (k + 1)} calls waiting on B` });
        if (k === 0) {
          const mine = await modernTool(b, 'cancel_execution', { execution_id: runs[0].execution_id }, tokens[0][1]);
          assert.deepEqual(mine, { success: false, was_running: false, error: `Execution ${runs[0].execution_id} runs on replica cap-a and too `
            + 'many of your calls to other replicas are waiting for an answer; try again' });
        }
      }
      const refused = await modernTool(b, 'cancel_execution', { execution_id: runs[4].execution_id }, tokens[4][1]);
      assert.deepEqual(refused, { success: false, was_running: false, error: `Execution ${runs[4].execution_id} runs on replica cap-a and too `
        + 'many calls to other replicas are waiting for an answer; try again' });
      assert.equal(await metric(b, 'control_calls_waiting'), 256, 'the refused calls took no slot');
      const exited = b.exited;
      b.proc.kill('SIGTERM');
      for (const [run, answer] of waiting)
        assert.deepEqual(await answer, { success: false, error: `Execution ${run.execution_id} runs on replica cap-a, which could not be reached: `
          + 'the server is shutting down (the command was sent: replica cap-a may still run it)' });
      assert.equal((await exited).code, 0);
      assert.match(b.log(), /shutdown complete/);
    } finally {
      a.proc.kill('SIGCONT');
    }
    // A, back, still serves; the runs are cancelled locally
    for (let k = 0; k < runs.length; k++)
      assert.deepEqual(await modernTool(a, 'cancel_execution', { execution_id: runs[k].execution_id }, tokens[k][1]), { success: true, was_running: true });
  });
});
