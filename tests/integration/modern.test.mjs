// Issue 13: MCP 2026-07-28 (the modern era) on the same /mcp endpoint as the
// legacy era, the Mcp-Param-* routing headers, fail-closed startup and the
// init TTL of legacy sessions. Raw HTTP for every rule, then the official
// clients: SDK v1 (legacy) and @modelcontextprotocol/client 2.x in both eras.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Client as ClientV2, StreamableHTTPClientTransport as TransportV2 } from '@modelcontextprotocol/client';
import { BIN, startServer, startRedis, connect, call, raw, rawSession, waitFor, freePort } from './helpers.mjs';
import { MODERN, meta, rpc, toolCall, headersFor, post, expectResult, modernTool, pollToEnd } from './modern-helpers.mjs';

const LEGACY = ['2025-11-25', '2025-06-18', '2025-03-26'];
const CATALOGUE = ['execute_code', 'execute_code_async', 'send_stdin', 'cancel_execution', 'list_executions',
  'get_execution_status', 'get_execution_output'];
function expectError(r, status, code, id, substr) {
  assert.equal(r.status, status, r.text);
  assert.equal(r.json?.error?.code, code, r.text);
  assert.deepEqual(r.json.id, id, `the request's id: ${r.text}`);
  if (substr) assert.match(r.json.error.message, substr);
  assert.equal(r.headers.get('mcp-session-id'), null, 'no session id in the modern era');
}

// One request over a raw socket, for header bytes fetch refuses to send. Returns { status, json }.
function rawSocket(server, headers, body) {
  return new Promise((resolve, reject) => {
    const s = net.connect(server.port, '127.0.0.1');
    const b = Buffer.from(JSON.stringify(body));
    const head = [`POST /mcp HTTP/1.1`, `Host: 127.0.0.1:${server.port}`, 'Content-Type: application/json',
      'Accept: application/json, text/event-stream', `Content-Length: ${b.length}`, 'Connection: close',
      ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`)].join('\r\n');
    s.write(Buffer.concat([Buffer.from(head + '\r\n\r\n', 'latin1'), b]));
    let data = Buffer.alloc(0);
    s.on('data', (d) => { data = Buffer.concat([data, d]); });
    s.on('error', reject);
    s.on('end', () => {
      const text = data.toString('latin1');
      const status = Number(text.split(' ')[1]);
      const json = JSON.parse(text.slice(text.indexOf('\r\n\r\n') + 4));
      resolve({ status, json });
    });
  });
}

describe('MCP 2026-07-28 over raw HTTP', () => {
  let server;
  before(async () => { server = await startServer(); });
  after(async () => { await server.stop(); });

  test('server/discover: versions of both eras, capabilities, serverInfo, resultType, no session', async () => {
    const r = await post(server, rpc(1, 'server/discover'));
    const res = expectResult(r, 1);
    assert.deepEqual(res.supportedVersions, [MODERN, ...LEGACY]);
    assert.deepEqual(res.capabilities, { tools: { listChanged: false } });
    assert.equal(res.serverInfo.name, 'mcp-sandboxd');
    assert.ok(Number.isInteger(res.ttlMs) && res.ttlMs >= 0);
    assert.ok(['public', 'private'].includes(res.cacheScope));
  });

  test('_meta missing or malformed: 400 -32602 with the id', async () => {
    const body = rpc('m1', 'tools/list');
    delete body.params._meta;
    expectError(await post(server, body), 400, -32602, 'm1', /_meta/);
    const noParams = { jsonrpc: '2.0', id: 'm2', method: 'tools/list' };
    expectError(await post(server, noParams), 400, -32602, 'm2', /_meta/);
    for (const [i, bad] of [
      { 'io.modelcontextprotocol/protocolVersion': 20260728 },
      { 'io.modelcontextprotocol/clientCapabilities': undefined },
      { 'io.modelcontextprotocol/clientCapabilities': 'all' },
      { 'io.modelcontextprotocol/clientInfo': 'x' },
    ].entries()) {
      const b = rpc(10 + i, 'tools/list');
      b.params._meta = JSON.parse(JSON.stringify(meta(bad)));
      expectError(await post(server, b), 400, -32602, 10 + i);
    }
    const notObject = rpc(20, 'tools/list');
    notObject.params._meta = [];
    expectError(await post(server, notObject), 400, -32602, 20);
  });

  test('MCP-Protocol-Version and _meta disagree: 400 -32020 (in either direction)', async () => {
    const b = rpc(3, 'tools/list');
    b.params._meta['io.modelcontextprotocol/protocolVersion'] = '2025-11-25';
    expectError(await post(server, b), 400, -32020, 3, /does not match/);
    // a legacy header with a modern _meta: the same refusal, before any session is looked at
    const sid = await rawSession(server, { version: '2025-11-25' });
    const l = await raw(server, { headers: { 'mcp-session-id': sid, 'mcp-protocol-version': '2025-11-25' }, body: rpc(4, 'tools/list') });
    expectError(l, 400, -32020, 4);
  });

  test('unsupported MCP-Protocol-Version: 400 -32022 listing the supported versions, with the id', async () => {
    const r = await raw(server, { headers: { 'mcp-protocol-version': '2099-01-01', 'mcp-method': 'tools/list' }, body: rpc(5, 'tools/list') });
    expectError(r, 400, -32022, 5, /unsupported MCP-Protocol-Version '2099-01-01'/);
    assert.deepEqual(r.json.error.data.supported, [MODERN, ...LEGACY]);
    assert.equal(r.json.error.data.requested, '2099-01-01');
  });

  test('Mcp-Method: required, case-sensitive, must equal the body (400 -32020); whitespace around is allowed', async () => {
    const b = rpc(6, 'tools/list');
    expectError(await post(server, b, { 'mcp-method': undefined }), 400, -32020, 6, /Mcp-Method/);
    expectError(await post(server, b, { 'mcp-method': 'tools/List' }), 400, -32020, 6, /Mcp-Method/);
    expectError(await post(server, b, { 'mcp-method': 'tools/call' }), 400, -32020, 6);
    // header names in any case, values with whitespace around (fetch trims values: a raw socket does not)
    const ws = await rawSocket(server, { 'MCP-PROTOCOL-VERSION': MODERN, 'MCP-METHOD': '  tools/list\t' }, b);
    assert.equal(ws.status, 200, JSON.stringify(ws.json));
    assert.equal(ws.json.result.resultType, 'complete');
  });

  test('Mcp-Name on tools/call: required and equal to params.name (400 -32020), base64 form decoded', async () => {
    const b = toolCall(7, 'list_executions', {});
    expectError(await post(server, b, { 'mcp-name': undefined }), 400, -32020, 7, /Mcp-Name/);
    expectError(await post(server, b, { 'mcp-name': 'list_Executions' }), 400, -32020, 7, /Mcp-Name/);
    const enc = `=?base64?${Buffer.from('list_executions').toString('base64')}?=`;
    expectResult(await post(server, b, { 'mcp-name': enc }), 7);
    expectError(await post(server, b, { 'mcp-name': '=?base64?!!!?=' }), 400, -32020, 7);
  });

  test('removed and unknown methods: HTTP 404 with -32601 and the id', async () => {
    const removed = ['initialize', 'ping', 'logging/setLevel', 'resources/subscribe', 'resources/unsubscribe',
      'resources/list', 'prompts/list', 'tasks/get', 'no/such'];
    for (const [i, m] of removed.entries()) {
      const body = { jsonrpc: '2.0', id: `r${i}`, method: m, params: { _meta: meta() } };
      expectError(await post(server, body), 404, -32601, `r${i}`, /Method not found/);
    }
  });

  test('tools/list: the catalogue in a fixed order, ttlMs and cacheScope, x-mcp-header on execution_id', async () => {
    const a = expectResult(await post(server, rpc(8, 'tools/list')), 8);
    const b = expectResult(await post(server, rpc(9, 'tools/list')), 9);
    assert.deepEqual(a.tools.map((t) => t.name), CATALOGUE);
    assert.deepEqual(b.tools.map((t) => t.name), CATALOGUE);
    assert.ok(Number.isInteger(a.ttlMs) && a.ttlMs >= 0);
    assert.ok(['public', 'private'].includes(a.cacheScope));
    for (const t of a.tools) {
      const p = t.inputSchema.properties;
      if (p.execution_id) assert.equal(p.execution_id['x-mcp-header'], 'Execution-Id', t.name);
      if (p.workspace_id) assert.equal(p.workspace_id['x-mcp-header'], 'Workspace-Id', t.name);
    }
    assert.ok(a.tools.some((t) => t.inputSchema.properties.execution_id), 'some tool takes execution_id');
  });

  test('tools/call: resultType complete, serverInfo in _meta, a run and no session id', async () => {
    const res = expectResult(await post(server, toolCall(10, 'execute_code', { command: 'echo modern' })), 10);
    assert.equal(res.structuredContent.status, 'completed');
    assert.ok(res.structuredContent.output.some((e) => e.type === 'stdout' && e.data.includes('modern')));
  });

  test('progress in the modern era: a waiting call with _meta.progressToken streams notifications, then the decorated result', async () => {
    const cmd = 'i=0; while [ $i -lt 6 ]; do echo "tick $i"; i=$((i+1)); sleep 0.5; done';
    const body = { jsonrpc: '2.0', id: 17, method: 'tools/call',
      params: { name: 'execute_code', arguments: { command: cmd }, _meta: meta({ progressToken: 'm-17' }) } };
    const r = await post(server, body);
    assert.equal(r.status, 200, r.text);
    assert.match(r.headers.get('content-type'), /text\/event-stream/);
    assert.equal(r.headers.get('mcp-session-id'), null, 'no session id in the modern era');
    const events = r.text.split('\n').filter((l) => l.startsWith('data: ')).map((l) => JSON.parse(l.slice(6)));
    const progress = events.filter((e) => e.method === 'notifications/progress');
    assert.ok(progress.length >= 1, r.text);
    for (const p of progress) assert.equal(p.params.progressToken, 'm-17');
    const last = events[events.length - 1];
    assert.equal(last.id, 17, 'the result is the last event');
    assert.equal(last.result.resultType, 'complete');
    assert.equal(last.result._meta?.['io.modelcontextprotocol/serverInfo']?.name, 'mcp-sandboxd');
    assert.equal(last.result.structuredContent.status, 'completed');
    assert.match(last.result.content[0].text, /tick 5\n/);
    assert.equal(events.filter((e) => e.id !== undefined).length, 1, 'one result');
  });

  test('Mcp-Param-Execution-Id: validated against the body (missing, different, base64, invalid, extra)', async () => {
    const id = '0123abcd-0000-4000-8000-000000000000';
    const b = toolCall(11, 'get_execution_status', { execution_id: id });
    expectError(await post(server, b), 400, -32020, 11, /Mcp-Param-Execution-Id is missing/);
    expectError(await post(server, b, { 'mcp-param-execution-id': 'x' + id }), 400, -32020, 11, /does not match/);
    // matching: plain, any case of the header name, and base64: the tool answers (not found here)
    for (const v of [id, `=?base64?${Buffer.from(id).toString('base64')}?=`]) {
      const r = await post(server, b, { 'MCP-PARAM-EXECUTION-ID': v });
      const res = expectResult(r, 11);
      assert.match(res.structuredContent.error, /not found/);
    }
    expectError(await post(server, b, { 'mcp-param-execution-id': '=?base64?*?=' }), 400, -32020, 11, /invalid/);
    // bytes outside visible ASCII (fetch will not send them)
    const bad = await rawSocket(server, { ...headersFor(b), 'Mcp-Param-Execution-Id': 'ab\xe9c' }, b);
    assert.equal(bad.status, 400);
    assert.equal(bad.json.error.code, -32020);
    assert.equal(bad.json.id, 11);
    // a header for a value the body does not have
    const noValue = toolCall(12, 'list_executions', {});
    expectResult(await post(server, noValue), 12);
    const other = toolCall(13, 'get_execution_status', {});
    expectError(await post(server, other, { 'mcp-param-execution-id': id }), 400, -32020, 13);
    // a null value needs no header
    const nul = toolCall(14, 'get_execution_status', { execution_id: null });
    const r = await post(server, nul);
    assert.equal(r.status, 200, r.text);
  });

  test('batches are refused, notifications get 202, and no response carries a session id', async () => {
    const batch = await raw(server, { headers: headersFor({ method: 'tools/list' }), body: [rpc(1, 'tools/list')] });
    assert.equal(batch.status, 400);
    assert.equal(batch.json.error.code, -32600);
    const note = await raw(server, { headers: headersFor({ method: 'notifications/x' }), body: { jsonrpc: '2.0', method: 'notifications/x', params: { _meta: meta() } } });
    assert.equal(note.status, 202);
    assert.equal(note.headers.get('mcp-session-id'), null);
    // an Mcp-Session-Id sent anyway is ignored, never echoed
    const withSid = await post(server, rpc(15, 'tools/list'), { 'mcp-session-id': 'f'.repeat(32) });
    expectResult(withSid, 15);
    // SSE when that is all the client accepts: one message event, the same result
    const sse = await post(server, rpc(16, 'server/discover'), { accept: 'text/event-stream' });
    assert.equal(sse.status, 200);
    assert.match(sse.headers.get('content-type'), /text\/event-stream/);
    const data = JSON.parse(sse.text.split('\n').find((l) => l.startsWith('data: ')).slice(6));
    assert.equal(data.id, 16);
    assert.equal(data.result.resultType, 'complete');
  });

  test('a legacy client notices nothing: initialize, session id, ping, unchanged tools/list shape', async () => {
    const sid = await rawSession(server, { version: '2025-06-18' });
    assert.match(sid, /^[0-9a-f]{32}$/);
    const p = await raw(server, { headers: { 'mcp-session-id': sid, 'mcp-protocol-version': '2025-06-18' }, body: { jsonrpc: '2.0', id: 1, method: 'ping' } });
    assert.deepEqual(p.json, { jsonrpc: '2.0', id: 1, result: {} });
    const l = await raw(server, { headers: { 'mcp-session-id': sid, 'mcp-protocol-version': '2025-06-18' }, body: { jsonrpc: '2.0', id: 2, method: 'tools/list' } });
    assert.equal(l.json.result.resultType, undefined);
    assert.equal(l.json.result.ttlMs, undefined);
    assert.deepEqual(l.json.result.tools.map((t) => t.name), CATALOGUE);
  });
});

describe('official clients in both eras', () => {
  let server;
  before(async () => { server = await startServer(); });
  after(async () => { await server.stop(); });

  test('SDK v1 client (legacy era): run, async run polled to completion', async () => {
    const { client } = await connect(server);
    const r = await call(client, 'execute_code', { command: 'echo v1' });
    assert.equal(r.status, 'completed');
    const a = await call(client, 'execute_code_async', { command: 'echo v1-async' });
    const out = await call(client, 'get_execution_output', { execution_id: a.execution_id, wait: true });
    assert.equal(out.status, 'completed');
    await client.close();
  });

  for (const mode of ['legacy', { pin: MODERN }, 'auto']) {
    test(`@modelcontextprotocol/client 2.x, versionNegotiation ${JSON.stringify(mode)}`, async () => {
      const client = new ClientV2({ name: 'v2-test', version: '1' }, { versionNegotiation: { mode } });
      const transport = new TransportV2(server.url);
      await client.connect(transport);
      const modern = mode !== 'legacy';
      assert.equal(client.getNegotiatedProtocolVersion(), modern ? MODERN : '2025-11-25');
      assert.equal(transport.sessionId, modern ? undefined : transport.sessionId);
      if (!modern) assert.match(transport.sessionId, /^[0-9a-f]{32}$/);
      const tl = await client.listTools();
      assert.deepEqual(tl.tools.map((t) => t.name), CATALOGUE);
      const r = await client.callTool({ name: 'execute_code', arguments: { command: 'echo v2' } });
      assert.equal(r.structuredContent.status, 'completed');
      // the client mirrors execution_id into Mcp-Param-Execution-Id: the server accepts it
      const s = await client.callTool({ name: 'get_execution_status', arguments: { execution_id: r.structuredContent.execution_id } });
      assert.equal(s.structuredContent.status, 'completed', JSON.stringify(s.structuredContent));
      // a handle in the modern era: an async run in the workspace of the first, polled from later calls
      const w = r.structuredContent.workspace_id;
      assert.match(w, /^w-[0-9a-f]{32}$/);
      const as = await client.callTool({ name: 'execute_code_async', arguments: { command: 'echo $((6*7))', workspace_id: w } });
      assert.equal(as.structuredContent.workspace_id, w);
      let o;
      do {
        o = await client.callTool({ name: 'get_execution_output', arguments: { execution_id: as.structuredContent.execution_id, wait: true } });
      } while (o.structuredContent.status === 'running');
      assert.equal(o.structuredContent.status, 'completed', JSON.stringify(o.structuredContent));
      assert.ok(o.structuredContent.output.some((e) => e.data === '42'), JSON.stringify(o.structuredContent));
      await client.close();
    });
  }
});

// Spawns the binary with `args`; resolves { code, stderr, log } when it exits, or when `until` appears in its log.
function spawnServer(args, until) {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'sandboxd-fc-'));
  const logFile = path.join(dir, 'server.log');
  const proc = spawn(BIN, [...args, '--log-file', logFile, '--workspace-root', path.join(dir, 'ws')],
    { env: { PATH: process.env.PATH, ASAN_OPTIONS: process.env.ASAN_OPTIONS || '' }, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  proc.stderr.on('data', (d) => { stderr += d; });
  const log = () => { try { return readFileSync(logFile, 'utf8'); } catch { return ''; } };
  const exited = new Promise((resolve) => proc.on('exit', (code) => resolve(code)));
  return { proc, dir, log, stderr: () => stderr, exited };
}

describe('fail closed', () => {
  test('a non-loopback --host without a token refuses to start, saying so in one line', async () => {
    const port = await freePort();
    const s = spawnServer(['--host', '0.0.0.0', '--port', String(port)]);
    await waitFor(() => s.proc.exitCode !== null || s.log().includes('listening on'), { what: 'exit or listening' });
    if (s.proc.exitCode === null) s.proc.kill('SIGKILL');
    assert.equal(await s.exited, 2, `it served: ${s.log()}`);
    const lines = s.stderr().trim().split('\n');
    assert.equal(lines.length, 1, s.stderr());
    assert.match(lines[0], /refusing to start: --host 0\.0\.0\.0 is not a loopback address and no token/);
    assert.match(lines[0], /--insecure-no-auth/);
    rmSync(s.dir, { recursive: true, force: true });
  });

  const tokensDir = mkdtempSync(path.join(os.tmpdir(), 'sandboxd-fc-tokens-'));
  const tokens = path.join(tokensDir, 'tokens'), empty = path.join(tokensDir, 'empty');
  writeFileSync(tokens, 'alice:a-long-enough-token-0123\n');
  writeFileSync(empty, '# nobody\n');
  after(() => rmSync(tokensDir, { recursive: true, force: true }));

  test('a tokens file that names no principal refuses to start (it would turn auth off)', async () => {
    const port = await freePort();
    const s = spawnServer(['--port', String(port), '--tokens-file', empty]);
    await waitFor(() => s.proc.exitCode !== null || s.log().includes('listening on'), { what: 'exit or listening' });
    if (s.proc.exitCode === null) s.proc.kill('SIGKILL');
    assert.equal(await s.exited, 2, `it served: ${s.log()}`);
    assert.match(s.stderr(), /names no principal/);
    rmSync(s.dir, { recursive: true, force: true });
  });

  for (const [what, extra] of [['--insecure-no-auth', ['--insecure-no-auth']], ['a token', ['--token', 'a-long-enough-token-0123']],
    ['a tokens file', ['--tokens-file', tokens]]]) {
    test(`a non-loopback --host starts with ${what}`, async () => {
      const port = await freePort();
      const s = spawnServer(['--host', '0.0.0.0', '--port', String(port), ...extra]);
      await waitFor(() => s.log().includes(`listening on http://0.0.0.0:${port}/mcp`) || s.proc.exitCode !== null,
        { what: 'the listening line' });
      assert.equal(s.proc.exitCode, null, s.stderr() + s.log());
      if (extra[0] === '--insecure-no-auth') assert.match(s.log(), /with no token \(--insecure-no-auth\)/);
      s.proc.kill('SIGTERM');
      await s.exited;
      rmSync(s.dir, { recursive: true, force: true });
    });
  }

  test('loopback addresses need no token (127.0.0.2, ::1 style)', async () => {
    const port = await freePort();
    const s = spawnServer(['--host', '127.0.0.2', '--port', String(port)]);
    await waitFor(() => s.log().includes('listening on') || s.proc.exitCode !== null, { what: 'start' });
    assert.equal(s.proc.exitCode, null, s.stderr());
    s.proc.kill('SIGTERM');
    await s.exited;
    rmSync(s.dir, { recursive: true, force: true });
  });
});

describe('legacy sessions: the init TTL', () => {
  let server;
  before(async () => { server = await startServer({ args: ['--session-init-ttl', '1'] }); });
  after(async () => { await server.stop(); });

  test('a session no request used after initialize expires; one a request used stays', async () => {
    const h = (sid) => ({ 'mcp-session-id': sid, 'mcp-protocol-version': '2025-06-18' });
    const idle = await rawSession(server);
    const notified = await rawSession(server);
    const used = await rawSession(server);
    const n = await raw(server, { headers: h(notified), body: { jsonrpc: '2.0', method: 'notifications/initialized' } });
    assert.equal(n.status, 202);
    const p = await raw(server, { headers: h(used), body: { jsonrpc: '2.0', id: 1, method: 'ping' } });
    assert.equal(p.status, 200);
    await waitFor(() => server.log().includes(`session ${idle.slice(0, 8)} expired`) &&
      server.log().includes(`session ${notified.slice(0, 8)} expired`), { what: 'both unused sessions expired' });
    const gone = await raw(server, { headers: h(idle), body: { jsonrpc: '2.0', id: 2, method: 'ping' } });
    assert.equal(gone.status, 404);
    const alive = await raw(server, { headers: h(used), body: { jsonrpc: '2.0', id: 3, method: 'ping' } });
    assert.deepEqual(alive.json, { jsonrpc: '2.0', id: 3, result: {} });
    assert.ok(!server.log().includes(`session ${used.slice(0, 8)} expired`));
  });
});

// ---- the handle model in the modern era: no session, only execution_id and workspace_id

describe('modern era: handles only, no session', () => {
  const ALICE = 'alice-modern-token-0123456789';
  const BOB = 'bob-modern-token-0123456789ab';
  let server, dir;
  before(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'sandboxd-modern-tokens-'));
    writeFileSync(path.join(dir, 'tokens'), `alice:${ALICE}\nbob:${BOB}\n`);
    server = await startServer({ args: ['--tokens-file', path.join(dir, 'tokens')] });
  });
  after(async () => { await server?.stop(); rmSync(dir, { recursive: true, force: true }); });

  test('run async, poll to completion, reuse the workspace, send stdin, cancel: by handle from separate calls', async () => {
    const a = await modernTool(server, 'execute_code_async', { command: 'echo first > f; for i in 1 2 3; do echo line$i; done' }, ALICE);
    assert.equal(a.status, 'running');
    assert.match(a.workspace_id, /^w-[0-9a-f]{32}$/, 'a new workspace comes back');
    const done = await pollToEnd(server, a.execution_id, ALICE);
    assert.equal(done.status, 'completed');
    assert.match(done.text, /line1\nline2\nline3\n/);
    assert.equal((await modernTool(server, 'get_execution_status', { execution_id: a.execution_id }, ALICE)).status, 'completed');
    // the same workspace by its handle; a run without one gets a new workspace
    const again = await modernTool(server, 'execute_code', { command: 'cat f', workspace_id: a.workspace_id }, ALICE);
    assert.equal(again.workspace_id, a.workspace_id);
    assert.ok(again.output.some((e) => e.type === 'stdout' && e.data === 'first'), JSON.stringify(again));
    const fresh = await modernTool(server, 'execute_code', { command: 'cat f' }, ALICE);
    assert.notEqual(fresh.workspace_id, a.workspace_id);
    assert.notEqual(fresh.exit_code, 0, 'a new workspace has no f');
    // stdin to an interactive run
    const i = await modernTool(server, 'execute_code_async', { command: 'read x; echo got:$x', interactive: true }, ALICE);
    const s = await modernTool(server, 'send_stdin', { execution_id: i.execution_id, input_data: 'hello\n' }, ALICE);
    assert.equal(s.success, true, JSON.stringify(s));
    const fed = await pollToEnd(server, i.execution_id, ALICE);
    assert.equal(fed.status, 'completed');
    assert.match(fed.text, /got:hello/);
    // cancel another
    const c = await modernTool(server, 'execute_code_async', { command: 'sleep 300' }, ALICE);
    const k = await modernTool(server, 'cancel_execution', { execution_id: c.execution_id }, ALICE);
    assert.equal(k.success, true, JSON.stringify(k));
    assert.equal((await pollToEnd(server, c.execution_id, ALICE)).status, 'cancelled');
    // list_executions: the principal's runs, filtered by workspace
    const all = await modernTool(server, 'list_executions', {}, ALICE);
    for (const r of [a, i, c]) assert.ok(all.executions.some((e) => e.id === r.execution_id), JSON.stringify(all));
    const one = await modernTool(server, 'list_executions', { workspace_id: a.workspace_id }, ALICE);
    assert.deepEqual(one.executions.map((e) => e.id).sort(), [a.execution_id, again.execution_id].sort());
    // the same principal in a legacy session follows the modern run too (either era)
    const { client } = await connect(server, { token: ALICE });
    assert.equal((await call(client, 'get_execution_status', { execution_id: a.execution_id })).status, 'completed');
    await client.close();
  });

  test('another principal gets the unknown-id answer on every handle', async () => {
    const NOWHERE = '00000000-0000-4000-8000-000000000000';
    const live = await modernTool(server, 'execute_code_async', { command: 'cat', interactive: true }, ALICE);
    const same = (r, id) => JSON.parse(JSON.stringify(r).replaceAll(id, 'ID'));
    for (const [tool, args] of [['get_execution_status', {}], ['get_execution_output', {}],
      ['send_stdin', { input_data: 'x' }], ['cancel_execution', {}]]) {
      const theirs = await modernTool(server, tool, { execution_id: live.execution_id, ...args }, BOB);
      const unknown = await modernTool(server, tool, { execution_id: NOWHERE, ...args }, BOB);
      assert.match(JSON.stringify(theirs), /not found/, `${tool}: ${JSON.stringify(theirs)}`);
      assert.deepEqual(same(theirs, live.execution_id), same(unknown, NOWHERE), tool);
    }
    const wsUnknown = 'w-' + '0'.repeat(32);
    const theirs = await modernTool(server, 'execute_code', { command: 'true', workspace_id: live.workspace_id }, BOB);
    const unknown = await modernTool(server, 'execute_code', { command: 'true', workspace_id: wsUnknown }, BOB);
    assert.deepEqual(same(theirs, live.workspace_id), same(unknown, wsUnknown));
    assert.ok(!(await modernTool(server, 'list_executions', {}, BOB)).executions.some((e) => e.id === live.execution_id));
    // still alice's, untouched
    assert.equal((await modernTool(server, 'get_execution_status', { execution_id: live.execution_id }, ALICE)).status, 'running');
    assert.equal((await modernTool(server, 'cancel_execution', { execution_id: live.execution_id }, ALICE)).success, true);
  });
});

describe('modern era without auth: the anonymous tenant', () => {
  let server;
  before(async () => { server = await startServer(); });
  after(async () => { await server?.stop(); });

  test('a run started in one call is polled from another; a legacy session (its own owner) does not see it', async () => {
    const a = await modernTool(server, 'execute_code_async', { command: 'echo anon' });
    const done = await pollToEnd(server, a.execution_id);
    assert.equal(done.status, 'completed');
    assert.match(done.text, /anon/);
    const { client } = await connect(server);
    const st = await call(client, 'get_execution_status', { execution_id: a.execution_id });
    assert.match(st.error, /not found/);
    await client.close();
  });
});

describe('modern era across two replicas through Redis', () => {
  const ALICE = 'alice-replica-token-0123456789';
  const BOB = 'bob-replica-token-0123456789ab';
  let redis, a, b, dir;
  before(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'sandboxd-modern-replicas-'));
    writeFileSync(path.join(dir, 'tokens'), `alice:${ALICE}\nbob:${BOB}\n`);
    redis = await startRedis();
    const common = ['--tokens-file', path.join(dir, 'tokens'), '--heartbeat', '1'];
    a = await startServer({ env: { REDIS_URL: redis.url }, args: [...common, '--replica-id', 'mod-a'] });
    b = await startServer({ env: { REDIS_URL: redis.url }, args: [...common, '--replica-id', 'mod-b'] });
  });
  after(async () => { await a?.stop(); await b?.stop(); await redis?.stop(); rmSync(dir, { recursive: true, force: true }); });

  test('a run started on A is polled to completion through B; stdin and cancel through B reach A', async () => {
    const r = await modernTool(a, 'execute_code_async', { command: 'echo on-a; echo done-a' }, ALICE);
    await waitFor(async () => (await modernTool(b, 'get_execution_status', { execution_id: r.execution_id }, ALICE)).status === 'completed',
      { what: 'the status through B' });
    const done = await pollToEnd(b, r.execution_id, ALICE);
    assert.equal(done.status, 'completed');
    assert.match(done.text, /on-a\ndone-a\n/);
    const list = await modernTool(b, 'list_executions', { workspace_id: r.workspace_id }, ALICE);
    assert.ok(list.executions.some((e) => e.id === r.execution_id), JSON.stringify(list));
    // bob through B: the unknown-id answer
    const theirs = await modernTool(b, 'get_execution_status', { execution_id: r.execution_id }, BOB);
    assert.equal(theirs.error, `Execution not found: ${r.execution_id}`);
    // a live run on A: stdin and signals sent to B are forwarded to A (the control channel, control.test.mjs)
    const live = await modernTool(a, 'execute_code_async', { command: 'cat', interactive: true }, ALICE);
    await waitFor(async () => (await modernTool(b, 'get_execution_status', { execution_id: live.execution_id }, ALICE)).status === 'running',
      { what: 'the live run through B' });
    assert.deepEqual(await modernTool(b, 'send_stdin', { execution_id: live.execution_id, input_data: 'x' }, ALICE), { success: true });
    assert.equal((await modernTool(b, 'cancel_execution', { execution_id: live.execution_id }, BOB)).error,
      `Execution not found: ${live.execution_id}`);
    assert.deepEqual(await modernTool(b, 'cancel_execution', { execution_id: live.execution_id }, ALICE), { success: true, was_running: true });
    await waitFor(async () => (await modernTool(a, 'get_execution_status', { execution_id: live.execution_id }, ALICE)).status === 'cancelled',
      { what: 'the run cancelled on A' });
  });
});
