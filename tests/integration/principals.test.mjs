// Issue 13, principals: ownership by principal (not by session), the tokens
// file and its SIGHUP reload, per-principal quotas, and the same rules across
// two replicas through Redis with --redis-prefix.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { call, connect, metric, raw, rawSession, sessionKey, startRedis, startServer, waitFor } from './helpers.mjs';

const ALICE = 'alice-token-0123456789abcdef';
const BOB = 'bob-token-0123456789abcdefgh';
const CAROL = 'carol-token-0123456789abcdef';
const NOWHERE = '00000000-0000-4000-8000-000000000000';

// Writes a tokens file in the server's temp dir (before start: in a dir of our own).
function tokensFile(dir, lines) {
  const p = path.join(dir, 'tokens');
  writeFileSync(p, `# principals of this test\n${lines.join('\n')}\n`);
  return p;
}

// A session-per-call client: every call opens a new SDK session (and closes its transport).
async function oneShot(server, token, name, args) {
  const { client } = await connect(server, { token });
  try {
    return await call(client, name, args);
  } finally {
    await client.close();
  }
}

// The answer to `tool` on `id`, with the id itself replaced, so that two ids' answers compare.
const shape = (r, id) => JSON.parse(JSON.stringify({ ...r, _result: undefined }).replaceAll(id, 'ID'));

// A raw list_executions in session `sid` with `tok`'s bearer.
const list = { jsonrpc: '2.0', id: 7, method: 'tools/call', params: { name: 'list_executions', arguments: {} } };
const hdr = (tok, sid) => ({ authorization: `Bearer ${tok}`, 'mcp-session-id': sid, 'mcp-protocol-version': '2025-06-18' });

// `tok` presenting session `sid` gets exactly what an unknown session id gets: 404.
async function assertSessionUnknownTo(server, tok, sid) {
  const theirs = await raw(server, { headers: hdr(tok, sid), body: list });
  const unknown = await raw(server, { headers: hdr(tok, 'f'.repeat(32)), body: list });
  assert.equal(theirs.status, 404);
  assert.deepEqual(theirs.json, unknown.json);
}

async function withTokens(lines, args = []) {
  const dir = (await import('node:fs')).mkdtempSync(path.join((await import('node:os')).tmpdir(), 'sandboxd-tokens-'));
  const file = tokensFile(dir, lines);
  const server = await startServer({ args: ['--tokens-file', file, ...args] });
  return { server, file };
}

describe('principals on one server', () => {
  let server, file;
  before(async () => {
    ({ server, file } = await withTokens([`alice:${ALICE}`, `bob:${BOB}`]));
  });
  after(async () => { await server?.stop(); });

  test('a session-per-call client follows its own async run from new sessions', async () => {
    const started = await oneShot(server, ALICE, 'execute_code_async', { command: 'echo from-session-a; echo err >&2; exit 3' });
    assert.equal(started.status, 'running');
    const id = started.execution_id;
    const out = await oneShot(server, ALICE, 'get_execution_output', { execution_id: id, wait: true });
    assert.equal(out.status, 'completed');
    assert.equal(out.exit_code, 3);
    assert.ok(out.output.some((e) => e.type === 'stdout' && e.data.includes('from-session-a')));
    const st = await oneShot(server, ALICE, 'get_execution_status', { execution_id: id });
    assert.equal(st.id, id);
    const list = await oneShot(server, ALICE, 'list_executions', {});
    assert.ok(list.executions.some((e) => e.id === id));
  });

  test('another principal gets exactly the unknown-id answer on every tool, and cannot use the session', async () => {
    const { client: a } = await connect(server, { token: ALICE });
    const { client: b } = await connect(server, { token: BOB });
    const run = await call(a, 'execute_code_async', { command: 'cat', interactive: true });
    const id = run.execution_id;
    const probes = [
      ['get_execution_status', (x) => ({ execution_id: x })],
      ['get_execution_output', (x) => ({ execution_id: x })],
      ['get_execution_output', (x) => ({ execution_id: x, wait: true })],
      ['send_stdin', (x) => ({ execution_id: x, input_data: 'from bob' })],
      ['cancel_execution', (x) => ({ execution_id: x, force: true })],
    ];
    for (const [name, args] of probes) {
      const theirs = await call(b, name, args(id));
      const unknown = await call(b, name, args(NOWHERE));
      assert.deepEqual(shape(theirs, id), shape(unknown, NOWHERE), name);
      assert.match(theirs.error, /Execution not found/, name);
      assert.equal(theirs._result.isError, true, name);
    }
    const listB = await call(b, 'list_executions', {});
    assert.ok(!listB.executions.some((e) => e.id === id), 'bob lists none of alice\'s runs');
    // bob's attempts changed nothing: alice's run still reads its stdin
    assert.equal((await call(a, 'get_execution_status', { execution_id: id })).status, 'running');
    assert.equal((await call(a, 'send_stdin', { execution_id: id, input_data: 'from alice' })).success, true);
    await waitFor(async () => (await call(a, 'get_execution_output', { execution_id: id })).output
      .some((e) => e.type === 'stdout' && e.data.includes('from alice')), { what: 'alice\'s echo' });
    const out = await call(a, 'get_execution_output', { execution_id: id });
    assert.ok(!out.output.some((e) => (e.data ?? '').includes('from bob')));

    // alice's session id in bob's hands is an unknown session
    const sidA = await rawSession(server, { headers: { authorization: `Bearer ${ALICE}` } });
    await assertSessionUnknownTo(server, BOB, sidA);
    const del = await raw(server, { method: 'DELETE', headers: hdr(BOB, sidA) });
    assert.equal(del.status, 404);
    const mine = await raw(server, { headers: hdr(ALICE, sidA), body: list });
    assert.equal(mine.status, 200, 'bob\'s DELETE did not end alice\'s session');
    assert.ok(mine.json.result.structuredContent.executions.some((e) => e.id === id));
    await call(a, 'cancel_execution', { execution_id: id, force: true });
    await a.close();
    await b.close();
  });

  test('workspace handles: returned by the run tools, usable from another session of the same principal', async () => {
    const first = await oneShot(server, ALICE, 'execute_code', { command: 'echo kept > note.txt' });
    assert.match(first.workspace_id, /^w-[0-9a-f]{32}$/);
    const ws = first.workspace_id;
    const async = await oneShot(server, ALICE, 'execute_code_async', { command: 'cat note.txt', workspace_id: ws });
    assert.equal(async.workspace_id, ws);
    const out = await oneShot(server, ALICE, 'get_execution_output', { execution_id: async.execution_id, workspace_id: ws, wait: true });
    assert.ok(out.output.some((e) => e.type === 'stdout' && e.data.includes('kept')), 'the file is in the named workspace');
    const elsewhere = await oneShot(server, ALICE, 'execute_code', { command: 'test -e note.txt; echo $?' });
    assert.notEqual(elsewhere.workspace_id, ws, 'a new session without workspace_id gets its own default');
    const filtered = await oneShot(server, ALICE, 'list_executions', { workspace_id: ws });
    assert.deepEqual(filtered.executions.map((e) => e.id).sort(), [first.execution_id, async.execution_id].sort());
    // the execution named with another workspace of the same principal is not found
    const wrong = await oneShot(server, ALICE, 'get_execution_status', { execution_id: async.execution_id, workspace_id: elsewhere.workspace_id });
    assert.match(wrong.error, /Execution not found/);
    // another principal: alice's workspace is exactly an unknown one, on every tool that takes it
    const bobRun = await oneShot(server, BOB, 'execute_code', { command: 'cat note.txt', workspace_id: ws });
    const bobUnknown = await oneShot(server, BOB, 'execute_code', { command: 'cat note.txt', workspace_id: 'w-' + '0'.repeat(32) });
    assert.deepEqual(shape(bobRun, ws), shape(bobUnknown, 'w-' + '0'.repeat(32)));
    assert.match(bobRun.error, /^Workspace not found: /);
    const bobAsync = await oneShot(server, BOB, 'execute_code_async', { command: 'true', workspace_id: ws });
    assert.match(bobAsync.error, /^Workspace not found: /);
    assert.deepEqual((await oneShot(server, BOB, 'list_executions', { workspace_id: ws })).executions, []);
    for (const name of ['get_execution_status', 'get_execution_output', 'cancel_execution']) {
      const r = await oneShot(server, BOB, name, { execution_id: async.execution_id, workspace_id: ws });
      assert.match(r.error, /Execution not found/, name);
    }
  });

  test('the principal is in the logs, the tokens are not', async () => {
    await oneShot(server, BOB, 'execute_code', { command: 'true' });
    const log = server.log();
    assert.match(log, /session [0-9a-f]{8} created \(client [^,]+, protocol [^,]+, principal bob\)/);
    assert.match(log, /execution [0-9a-f-]{36} started in workspace w-[0-9a-f]{32}, principal bob/);
    assert.ok(!log.includes(ALICE) && !log.includes(BOB));
  });

  test('SIGHUP rereads the tokens file; a bad file keeps the principals in force', async () => {
    writeFileSync(file, `bob:${BOB}\ncarol:${CAROL}\n`);
    server.proc.kill('SIGHUP');
    await waitFor(() => /tokens file reloaded: 2 principals/.test(server.log()), { what: 'reload' });
    const r = await raw(server, { body: { jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'x', version: '1' } } }, headers: { authorization: `Bearer ${ALICE}` } });
    assert.equal(r.status, 401, 'alice was removed');
    assert.equal((await oneShot(server, CAROL, 'execute_code', { command: 'echo hi' })).exit_code, 0);
    writeFileSync(file, 'carol:short\n');
    server.proc.kill('SIGHUP');
    await waitFor(() => /tokens file not reloaded, the previous principals stay: line 1/.test(server.log()), { what: 'bad reload' });
    assert.equal((await oneShot(server, CAROL, 'execute_code', { command: 'echo hi' })).exit_code, 0);
  });
});

describe('a session that expires while its runs are followed from other sessions', () => {
  let server;
  before(async () => {
    ({ server } = await withTokens([`alice:${ALICE}`], ['--session-ttl', '1']));
  });
  after(async () => { await server?.stop(); });

  test('its workspace outlives it while used by handle; an unused one ends with its session', async () => {
    const { client: a, transport: ta } = await connect(server, { token: ALICE });
    const run = await call(a, 'execute_code_async', { command: 'cat', interactive: true });
    const sidA = ta.sessionId;
    const { client: idle, transport: ti } = await connect(server, { token: ALICE });
    const idleRun = await call(idle, 'execute_code_async', { command: 'cat', interactive: true });
    // followed from a new session after A's last request
    const polled = await oneShot(server, ALICE, 'get_execution_status', { execution_id: run.execution_id });
    assert.equal(polled.status, 'running');
    await waitFor(() => server.log().includes(`session ${sidA.slice(0, 8)} expired`) &&
      server.log().includes(`session ${ti.sessionId.slice(0, 8)} expired`), { what: 'both sessions expired' });
    assert.match(server.log(), new RegExp(`workspace ${run.workspace_id} outlives its session`));
    assert.ok(await metric(server, 'workspaces', { token: ALICE }) >= 1, 'the released workspace is counted');
    assert.equal((await oneShot(server, ALICE, 'send_stdin', { execution_id: run.execution_id, input_data: 'still here' })).success, true);
    const out = await oneShot(server, ALICE, 'get_execution_output', { execution_id: run.execution_id });
    await waitFor(async () => (await oneShot(server, ALICE, 'get_execution_output', { execution_id: run.execution_id })).output
      .some((e) => e.type === 'stdout' && e.data.includes('still here')), { what: 'the echo' });
    assert.equal(out.status, 'running');
    // the run nobody followed ended with its session, as before
    const gone = await oneShot(server, ALICE, 'get_execution_status', { execution_id: idleRun.execution_id });
    assert.match(gone.error ?? gone.status, /not found|cancelled|failed/);
    await oneShot(server, ALICE, 'cancel_execution', { execution_id: run.execution_id, force: true });
    await a.close().catch(() => {});
    await idle.close().catch(() => {});
  });
});

describe('per-principal quotas', () => {
  let server, flood;
  before(async () => {
    // one server per quota: the session-per-call helper opens a session for every call
    ({ server } = await withTokens([`alice:${ALICE}`, `bob:${BOB}`], ['--max-concurrent-per-principal', '1', '--max-per-session', '5']));
    ({ server: flood } = await withTokens([`alice:${ALICE}`, `bob:${BOB}`], ['--max-sessions-per-principal', '5', '--max-sessions', '100']));
  });
  after(async () => { await server?.stop(); await flood?.stop(); });

  test('--max-concurrent-per-principal counts runs of every session of the principal', async () => {
    const first = await oneShot(server, ALICE, 'execute_code_async', { command: 'cat', interactive: true });
    const second = await oneShot(server, ALICE, 'execute_code_async', { command: 'true' });
    assert.equal(second._result.isError, true);
    assert.match(second.error, /Per-principal execution limit reached: 1 of your executions are running/);
    const bobs = await oneShot(server, BOB, 'execute_code', { command: 'echo bob' });
    assert.equal(bobs.exit_code, 0, 'bob is not held back by alice');
    await oneShot(server, ALICE, 'cancel_execution', { execution_id: first.execution_id, force: true });
    await waitFor(async () => (await oneShot(server, ALICE, 'get_execution_status', { execution_id: first.execution_id })).status !== 'running');
    assert.equal((await oneShot(server, ALICE, 'execute_code', { command: 'true' })).exit_code, 0);
  });

  test('a session flood by one principal leaves the other able to connect', async () => {
    const init = (tok) => raw(flood, { headers: { authorization: `Bearer ${tok}` }, body: { jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'flood', version: '1' } } } });
    const answers = await Promise.all(Array.from({ length: 40 }, () => init(ALICE)));
    const opened = answers.filter((r) => r.headers.get('mcp-session-id')).length;
    assert.ok(opened <= 5, `alice opened ${opened} sessions`);
    const refused = answers.find((r) => !r.headers.get('mcp-session-id'));
    assert.match(refused.json.error.message, /--max-sessions-per-principal/);
    const { client } = await connect(flood, { token: BOB });
    assert.equal((await call(client, 'execute_code', { command: 'echo ok' })).exit_code, 0);
    await client.close();
  });
});

describe('principals across two replicas through Redis, keys under --redis-prefix', () => {
  let redis, r1, r2;
  before(async () => {
    redis = await startRedis();
    const common = ['--redis-url', redis.url, '--redis-prefix', 't13:', '--heartbeat', '1'];
    ({ server: r1 } = await withTokens([`alice:${ALICE}`, `bob:${BOB}`], [...common, '--replica-id', 'r1']));
    ({ server: r2 } = await withTokens([`alice:${ALICE}`, `bob:${BOB}`], [...common, '--replica-id', 'r2']));
  });
  after(async () => { await r1?.stop(); await r2?.stop(); await redis?.stop(); });

  test('the owner reads its run on the other replica, another principal gets the unknown-id answer', async () => {
    const done = await oneShot(r1, ALICE, 'execute_code', { command: 'echo across' });
    const id = done.execution_id;
    await waitFor(async () => {
      const m = await redis.cli('GET', `t13:execution:${id}`);
      return m && JSON.parse(m).status === 'completed';
    }, { what: 'the record in Redis' });
    const rec = JSON.parse(await redis.cli('GET', `t13:execution:${id}`));
    assert.equal(rec.principal, 'alice');
    assert.equal(rec.workspace_id, done.workspace_id);
    assert.equal(await redis.cli('SISMEMBER', `t13:workspace:${done.workspace_id}:executions`, id), '1');
    assert.equal(await redis.cli('EXISTS', `execution:${id}`), '0', 'no key outside the prefix');
    const keys = (await redis.cli('KEYS', '*')).split('\n').filter(Boolean);
    assert.ok(keys.length > 0 && keys.every((k) => k.startsWith('t13:')), keys.join(' '));

    const out = await oneShot(r2, ALICE, 'get_execution_output', { execution_id: id });
    assert.equal(out.source, 'redis');
    assert.ok(out.output.some((e) => e.type === 'stdout' && e.data.includes('across')));
    const list = await oneShot(r2, ALICE, 'list_executions', {});
    assert.ok(list.executions.some((e) => e.id === id), 'alice lists it on r2 from another session');
    const inWs = await oneShot(r2, ALICE, 'list_executions', { workspace_id: done.workspace_id });
    assert.deepEqual(inWs.executions.map((e) => e.id), [id], 'the workspace filter applies to what Redis holds');
    const remoteWrongWs = await oneShot(r2, ALICE, 'get_execution_status', { execution_id: id, workspace_id: 'w-' + '1'.repeat(32) });
    assert.match(remoteWrongWs.error, /Execution not found/);
    for (const name of ['get_execution_status', 'get_execution_output', 'cancel_execution']) {
      const theirs = await oneShot(r2, BOB, name, { execution_id: id });
      const unknown = await oneShot(r2, BOB, name, { execution_id: NOWHERE });
      assert.deepEqual(shape(theirs, id), shape(unknown, NOWHERE), name);
    }
    assert.ok(!(await oneShot(r2, BOB, 'list_executions', {})).executions.some((e) => e.id === id));
  });

  test('a session opened on one replica is adopted on the other by its principal only', async () => {
    const sid = await rawSession(r1, { headers: { authorization: `Bearer ${ALICE}` } });
    await waitFor(async () => (await redis.cli('EXISTS', `t13:mcp:session:${sessionKey(sid)}`)) === '1', { what: 'the session record' });
    const rec = JSON.parse(await redis.cli('GET', `t13:mcp:session:${sessionKey(sid)}`));
    assert.equal(rec.principal, 'alice');
    await assertSessionUnknownTo(r2, BOB, sid);
    const alices = await raw(r2, { headers: hdr(ALICE, sid), body: list });
    assert.equal(alices.status, 200);
    assert.match(r2.log(), new RegExp(`session ${sid.slice(0, 8)} adopted from replica r1`));
  });
});
