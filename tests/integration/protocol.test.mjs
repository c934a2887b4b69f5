// Protocol conformance of the Streamable HTTP transport at /mcp: the official
// SDK client end to end, raw HTTP status codes and JSON-RPC error codes,
// version negotiation and batches, sessions (DELETE, TTL), /health,
// configuration errors, logging hygiene and SIGHUP, and orderly shutdown.
import { after, afterEach, before, beforeEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readFileSync, renameSync, rmSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { BIN, connect, raw, rawSession, sleep, startServer } from './helpers.mjs';

const TOOL_NAMES = ['execute_code', 'execute_code_async', 'send_stdin', 'cancel_execution', 'list_executions',
  'get_execution_status', 'get_execution_output'];

const ping = (id = 1) => ({ jsonrpc: '2.0', id, method: 'ping' });

// Low-level HTTP through node:http, for what fetch cannot do: a forged Host
// header, or a large body the server may refuse before reading it all.
function httpReq(server, { method = 'POST', path = '/mcp', headers = {}, body } = {}) {
  return new Promise((resolve, reject) => {
    let gotResponse = false;
    const req = http.request({ host: '127.0.0.1', port: server.port, method, path, headers, agent: false }, (res) => {
      gotResponse = true;
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d) => { text += d; });
      res.on('end', () => {
        let json;
        try { json = JSON.parse(text); } catch { json = undefined; }
        resolve({ status: res.statusCode, headers: res.headers, text, json });
      });
      res.on('error', reject);
    });
    // The server may answer (413) and close before the whole body is written;
    // an EPIPE/ECONNRESET on the write side then is expected, the response still counts.
    req.on('error', (e) => { if (!gotResponse) setTimeout(() => { if (!gotResponse) reject(e); }, 200); });
    if (body !== undefined) req.end(body); else req.end();
  });
}

// Polls fn() until it returns truthy (or the time runs out); returns the last value.
async function waitFor(fn, ms = 3000, step = 25) {
  const deadline = Date.now() + ms;
  let v;
  while (!(v = fn()) && Date.now() < deadline) await sleep(step);
  return v;
}

// startServer's temp dir is mode 0700, so when the server runs as root its
// sandbox user (nobody) cannot reach a workspace root inside it, the startup
// sandbox probe fails and /health says "degraded". Servers whose /health status
// is checked get a workspace root in a traversable dir (the last flag wins).
async function startHealthyServer(opts = {}) {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'sandboxd-ws-'));
  chmodSync(dir, 0o755);
  const server = await startServer({ ...opts, args: [...(opts.args ?? []), '--workspace-root', path.join(dir, 'ws')] });
  const stop = server.stop.bind(server);
  server.stop = async (o) => {
    try { return await stop(o); } finally { rmSync(dir, { recursive: true, force: true }); }
  };
  return server;
}

async function stopOk(server) {
  const res = await server.stop();
  assert.deepEqual(res, { code: 0, signal: null }, `server exit: ${JSON.stringify(res)} stderr: ${server.stderr()}`);
}

function assertToolList(tools) {
  assert.equal(tools.length, 7);
  assert.deepEqual(tools.map((t) => t.name).sort(), [...TOOL_NAMES].sort());
  for (const t of tools) {
    assert.equal(t.inputSchema?.type, 'object', `${t.name} inputSchema`);
    assert.equal(typeof t.outputSchema, 'object', `${t.name} outputSchema`);
    assert.equal(t.outputSchema.type, 'object', `${t.name} outputSchema.type`);
  }
}

// ---------------------------------------------------------------- 1. SDK client

describe('official SDK client', () => {
  let server;
  before(async () => { server = await startServer(); });
  after(async () => { await stopOk(server); });

  test('connect, tools/list, ping, terminateSession', async () => {
    const { client, transport } = await connect(server);
    const sid = transport.sessionId;
    assert.match(sid, /^[0-9a-f]{32}$/);
    assert.equal(client.getServerVersion()?.name, 'mcp-sandboxd');
    assert.ok(client.getServerCapabilities()?.tools, 'tools capability');
    const { tools } = await client.listTools();
    assertToolList(tools);
    assert.deepEqual(await client.ping(), {});
    await transport.terminateSession();
    assert.equal(transport.sessionId, undefined);
    const r = await raw(server, { headers: { 'mcp-session-id': sid, 'mcp-protocol-version': '2025-06-18' }, body: ping() });
    assert.equal(r.status, 404);
    await client.close();
  });
});

describe('official SDK client with a token', () => {
  const token = 'sdk-test-token-0123456789';
  let server;
  before(async () => { server = await startServer({ token }); });
  after(async () => { await stopOk(server); });

  test('connects with the token, terminateSession ends the session', async () => {
    const { client, transport } = await connect(server, { token });
    const sid = transport.sessionId;
    const { tools } = await client.listTools();
    assertToolList(tools);
    assert.deepEqual(await client.ping(), {});
    await transport.terminateSession();
    const r = await raw(server, {
      headers: { authorization: `Bearer ${token}`, 'mcp-session-id': sid, 'mcp-protocol-version': '2025-06-18' },
      body: ping(),
    });
    assert.equal(r.status, 404);
    await client.close();
  });

  test('connecting without the token fails', async () => {
    const transport = new StreamableHTTPClientTransport(server.url);
    const client = new Client({ name: 'no-token', version: '1.0.0' });
    await assert.rejects(client.connect(transport), (e) => /401|nauthorized/.test(String(e?.message ?? e)));
    await client.close().catch(() => {});
  });

  test('connecting with a wrong token fails', async () => {
    await assert.rejects(connect(server, { token: 'wrong-token' }), (e) => /401|nauthorized/.test(String(e?.message ?? e)));
  });
});

// ---------------------------------------------------------------- 2. raw HTTP statuses

describe('raw HTTP statuses and JSON-RPC errors', () => {
  let server, good, sid;
  before(async () => {
    server = await startServer({ args: ['--max-body', '64K'] });
    good = await connect(server, { name: 'bystander' });
    sid = await rawSession(server);
  });
  after(async () => {
    await good.client.close();
    await stopOk(server);
  });
  // After every bad request the other, live session must still work.
  afterEach(async () => {
    assert.deepEqual(await good.client.ping(), {});
  });

  const withSid = (extra = {}) => ({ 'mcp-session-id': sid, 'mcp-protocol-version': '2025-06-18', ...extra });

  test('202 for notifications/initialized', async () => {
    const r = await raw(server, { headers: withSid(), body: { jsonrpc: '2.0', method: 'notifications/initialized' } });
    assert.equal(r.status, 202);
    assert.equal(r.text, '');
  });

  test('202 for a JSON-RPC response body', async () => {
    const r = await raw(server, { headers: withSid(), body: { jsonrpc: '2.0', id: 99, result: {} } });
    assert.equal(r.status, 202);
    assert.equal(r.text, '');
    const e = await raw(server, { headers: withSid(), body: { jsonrpc: '2.0', id: 'x', error: { code: -1, message: 'no' } } });
    assert.equal(e.status, 202);
  });

  test('200 with application/json for a ping', async () => {
    const r = await raw(server, { headers: withSid(), body: ping(5) });
    assert.equal(r.status, 200);
    assert.match(r.headers.get('content-type'), /^application\/json/);
    assert.deepEqual(r.json, { jsonrpc: '2.0', id: 5, result: {} });
  });

  test('400 without Mcp-Session-Id', async () => {
    const r = await raw(server, { headers: { 'mcp-protocol-version': '2025-06-18' }, body: ping() });
    assert.equal(r.status, 400);
    assert.equal(r.json?.jsonrpc, '2.0');
    assert.equal(typeof r.json?.error?.code, 'number');
  });

  test('404 for an unknown session id', async () => {
    const r = await raw(server, { headers: withSid({ 'mcp-session-id': '0123456789abcdef0123456789abcdef' }), body: ping() });
    assert.equal(r.status, 404);
    const r2 = await raw(server, { headers: withSid({ 'mcp-session-id': 'not-a-session' }), body: ping() });
    assert.equal(r2.status, 404);
  });

  test('403 for a foreign Origin, loopback Origins allowed', async () => {
    const bad = await raw(server, { headers: withSid({ origin: 'http://evil.example' }), body: ping() });
    assert.equal(bad.status, 403);
    for (const origin of ['http://localhost:3000', 'http://127.0.0.1']) {
      const ok = await raw(server, { headers: withSid({ origin }), body: ping(7) });
      assert.equal(ok.status, 200, origin);
      assert.deepEqual(ok.json?.result, {}, origin);
    }
    // Look-alikes of loopback names are foreign too.
    for (const origin of ['http://localhost.evil.example', 'http://127.0.0.1.evil.example', 'null']) {
      const r = await raw(server, { headers: withSid({ origin }), body: ping() });
      assert.equal(r.status, 403, origin);
    }
  });

  test('403 for a foreign Host while bound to loopback', async () => {
    const body = JSON.stringify(ping(3));
    const base = { 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-session-id': sid, 'mcp-protocol-version': '2025-06-18' };
    const bad = await httpReq(server, { headers: { ...base, host: 'evil.example:1234' }, body });
    assert.equal(bad.status, 403);
    const ok = await httpReq(server, { headers: { ...base, host: `localhost:${server.port}` }, body });
    assert.equal(ok.status, 200);
    assert.deepEqual(ok.json, { jsonrpc: '2.0', id: 3, result: {} });
  });

  test('405 for GET and PUT /mcp', async () => {
    const g = await raw(server, { method: 'GET', headers: withSid({ accept: 'text/event-stream', 'content-type': undefined }) });
    assert.equal(g.status, 405);
    assert.ok(g.headers.get('allow'), 'Allow header on 405');
    const p = await raw(server, { method: 'PUT', headers: withSid(), body: ping() });
    assert.equal(p.status, 405);
  });

  test('406 for Accept: text/html', async () => {
    const r = await raw(server, { headers: withSid({ accept: 'text/html' }), body: ping() });
    assert.equal(r.status, 406);
  });

  test('413 for a body over --max-body', async () => {
    const filler = 'x'.repeat(100 * 1024);
    const body = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'ping', params: { filler } });
    const r = await httpReq(server, {
      headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-session-id': sid, 'content-length': Buffer.byteLength(body) },
      body,
    });
    assert.equal(r.status, 413);
    // A body just under the cap is still fine.
    const small = JSON.stringify({ jsonrpc: '2.0', id: 2, method: 'ping', params: { filler: 'x'.repeat(60 * 1024) } });
    const ok = await raw(server, { headers: withSid(), body: small });
    assert.equal(ok.status, 200);
  });

  test('415 for Content-Type text/plain', async () => {
    const r = await raw(server, { headers: withSid({ 'content-type': 'text/plain' }), body: JSON.stringify(ping()) });
    assert.equal(r.status, 415);
  });

  test('404 for a path other than /mcp', async () => {
    const r = await raw(server, { path: '/other', headers: withSid(), body: ping() });
    assert.equal(r.status, 404);
  });

  test('malformed JSON: 400, -32700, id null', async () => {
    const r = await raw(server, { headers: withSid(), body: '{"jsonrpc":"2.0","id":1,"method":' });
    assert.equal(r.status, 400);
    assert.equal(r.json?.error?.code, -32700);
    assert.equal(r.json?.id, null);
    assert.ok('id' in r.json, 'id present (null)');
  });

  test('empty or blank body: 400 -32700', async () => {
    for (const body of ['', '   ']) {
      const r = await raw(server, { headers: withSid(), body });
      assert.equal(r.status, 400, JSON.stringify(body));
      assert.equal(r.json?.error?.code, -32700, JSON.stringify(body));
    }
  });

  test('trailing garbage after the JSON value: 400 -32700', async () => {
    // A body that is not one JSON text is a parse error, not "the first value wins".
    for (const body of ['{"jsonrpc":"2.0","id":41,"method":"ping"}xyz',
      '{"jsonrpc":"2.0","id":42,"method":"ping"}{"jsonrpc":"2.0","id":43,"method":"ping"}']) {
      const r = await raw(server, { headers: withSid(), body });
      assert.equal(r.status, 400, `${body} -> ${r.status} ${r.text}`);
      assert.equal(r.json?.error?.code, -32700, `${body} -> ${r.text}`);
      assert.equal(r.json?.id, null);
    }
  });

  test('ids: null and boolean are invalid requests', async () => {
    for (const id of [null, true, [1]]) {
      const r = await raw(server, { headers: withSid(), body: { jsonrpc: '2.0', id, method: 'ping' } });
      assert.equal(r.json?.error?.code, -32600, JSON.stringify(id));
      assert.equal(r.json?.id, null);
    }
  });

  test('wrong JSON-RPC shapes: -32600 with the readable id', async () => {
    const cases = [
      [{ jsonrpc: '1.0', id: 11, method: 'ping' }, 11],
      [{ jsonrpc: '2.0', id: 12, method: 42 }, 12],
      [{ jsonrpc: '2.0', id: { a: 1 }, method: 'ping' }, null],
      [{ jsonrpc: '2.0', id: 'str-13', method: 'ping', params: 'oops' }, 'str-13'],
    ];
    for (const [body, id] of cases) {
      const r = await raw(server, { headers: withSid(), body });
      const what = JSON.stringify(body);
      assert.ok(r.status === 200 || r.status === 400, `${what}: status ${r.status}`);
      assert.equal(r.json?.jsonrpc, '2.0', what);
      assert.equal(r.json?.error?.code, -32600, what);
      assert.equal(typeof r.json?.error?.message, 'string', what);
      assert.equal(r.json?.id, id, what);
      assert.equal(r.json?.result, undefined, what);
    }
  });

  test('unknown method: -32601', async () => {
    const r = await raw(server, { headers: withSid(), body: { jsonrpc: '2.0', id: 21, method: 'no/such/method' } });
    assert.equal(r.status, 200);
    assert.equal(r.json?.id, 21);
    assert.equal(r.json?.error?.code, -32601);
  });

  test('tools/call with an unknown tool: -32602', async () => {
    const r = await raw(server, { headers: withSid(), body: { jsonrpc: '2.0', id: 22, method: 'tools/call', params: { name: 'no_such_tool', arguments: {} } } });
    assert.equal(r.json?.id, 22);
    assert.equal(r.json?.error?.code, -32602);
  });

  test('tools/call without a name: -32602', async () => {
    const r = await raw(server, { headers: withSid(), body: { jsonrpc: '2.0', id: 23, method: 'tools/call', params: { arguments: {} } } });
    assert.equal(r.json?.id, 23);
    assert.equal(r.json?.error?.code, -32602);
    const r2 = await raw(server, { headers: withSid(), body: { jsonrpc: '2.0', id: 24, method: 'tools/call' } });
    assert.equal(r2.json?.id, 24);
    assert.equal(r2.json?.error?.code, -32602);
  });

  test('tools/call with non-object arguments and tools/list with a bad cursor: -32602', async () => {
    const a = await raw(server, { headers: withSid(), body: { jsonrpc: '2.0', id: 26, method: 'tools/call', params: { name: 'list_executions', arguments: [] } } });
    assert.equal(a.json?.id, 26);
    assert.equal(a.json?.error?.code, -32602);
    const c = await raw(server, { headers: withSid(), body: { jsonrpc: '2.0', id: 27, method: 'tools/list', params: { cursor: 'bogus' } } });
    assert.equal(c.json?.id, 27);
    assert.equal(c.json?.error?.code, -32602);
  });

  test('415 without Content-Type', async () => {
    const r = await raw(server, { headers: withSid({ 'content-type': undefined }), body: JSON.stringify(ping()) });
    assert.equal(r.status, 415);
  });

  test('initialize without protocolVersion: -32602 and no session', async () => {
    const r = await raw(server, { body: { jsonrpc: '2.0', id: 25, method: 'initialize', params: { capabilities: {}, clientInfo: { name: 'x', version: '1' } } } });
    assert.equal(r.json?.id, 25);
    assert.equal(r.json?.error?.code, -32602);
    assert.equal(r.headers.get('mcp-session-id'), null);
  });

  test('MCP-Protocol-Version 1999-01-01: 400', async () => {
    const r = await raw(server, { headers: withSid({ 'mcp-protocol-version': '1999-01-01' }), body: ping() });
    assert.equal(r.status, 400);
  });

  test('the raw session still works after all of that', async () => {
    const r = await raw(server, { headers: withSid(), body: ping(77) });
    assert.deepEqual(r.json, { jsonrpc: '2.0', id: 77, result: {} });
  });
});

describe('authentication', () => {
  const token = 'auth-test-token-abcdef';
  let server, good;
  before(async () => {
    server = await startHealthyServer({ token });
    good = await connect(server, { token, name: 'bystander' });
  });
  after(async () => {
    await good.client.close();
    await stopOk(server);
  });
  afterEach(async () => {
    assert.deepEqual(await good.client.ping(), {});
  });

  const initBody = { jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'raw', version: '1' } } };

  for (const [label, authorization] of [
    ['missing', undefined],
    ['malformed Basic', 'Basic x'],
    ['wrong bearer', 'Bearer not-the-token'],
    ['empty bearer', 'Bearer '],
    ['token prefix', `Bearer ${token.slice(0, -1)}`],
    ['token plus suffix', `Bearer ${token}x`],
  ]) {
    test(`401 with WWW-Authenticate for ${label} Authorization`, async () => {
      const r = await raw(server, { headers: { authorization }, body: initBody });
      assert.equal(r.status, 401);
      assert.match(r.headers.get('www-authenticate') ?? '', /^Bearer/);
      assert.equal(r.headers.get('mcp-session-id'), null);
    });
  }

  test('401 also for other paths and methods before anything else', async () => {
    const r = await raw(server, { path: '/other', body: initBody });
    assert.equal(r.status, 401);
    const d = await raw(server, { method: 'DELETE', headers: { 'mcp-session-id': '0123456789abcdef0123456789abcdef' } });
    assert.equal(d.status, 401);
  });

  test('the right bearer token is accepted', async () => {
    const r = await raw(server, { headers: { authorization: `Bearer ${token}` }, body: initBody });
    assert.equal(r.status, 200);
    assert.match(r.headers.get('mcp-session-id') ?? '', /^[0-9a-f]{32}$/);
  });

  test('/health needs no token', async () => {
    const r = await raw(server, { method: 'GET', path: '/health', headers: { 'content-type': undefined } });
    assert.equal(r.status, 200);
    assert.equal(r.json?.status, 'ok');
  });
});

// Each id gets a fresh server: a server that dies on one must not hide the others.
describe('JSON-RPC ids are echoed exactly', () => {
  let server, sid;
  beforeEach(async () => {
    server = await startServer();
    sid = await rawSession(server);
  });
  afterEach(async () => { await stopOk(server); });

  const cases = [
    ['0', 0], ['-7', -7], ['2^53-1', Number.MAX_SAFE_INTEGER], ['a plain string', 'abc'],
    ['unicode, quotes, backslash, newline', 'ünï "quoted" \\ \n'],
    ['the empty string', ''],
    ['one control character', '\u0001'],
    ['only control characters', '\u0001\u0002\u001f'],
    ['a string with an embedded NUL', 'a\u0000b'],
  ];
  for (const [label, id] of cases) {
    test(`ping with id ${label}`, async () => {
      const r = await raw(server, { headers: { 'mcp-session-id': sid, 'mcp-protocol-version': '2025-06-18' }, body: { jsonrpc: '2.0', id, method: 'ping' } });
      assert.equal(r.status, 200);
      // Echo the id exactly, or (for an id the server cannot represent) refuse it as invalid.
      if (r.json?.error) assert.equal(r.json.error.code, -32600, r.text);
      else assert.deepEqual(r.json, { jsonrpc: '2.0', id, result: {} });
    });
  }

  test('initialize with the empty string id (no session needed)', async () => {
    const r = await raw(server, { body: { jsonrpc: '2.0', id: '', method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'x', version: '1' } } } });
    assert.equal(r.status, 200);
    assert.equal(r.json?.id, '');
    assert.equal(r.json?.result?.protocolVersion, '2025-06-18');
  });
});

// ---------------------------------------------------------------- 3. versions, batches, SSE

describe('version negotiation, batches, SSE answers', () => {
  let server;
  before(async () => { server = await startServer(); });
  after(async () => { await stopOk(server); });

  const init = (protocolVersion, id = 1) => ({
    jsonrpc: '2.0', id, method: 'initialize',
    params: { protocolVersion, capabilities: {}, clientInfo: { name: 'neg', version: '1' } },
  });

  for (const [asked, answered] of [
    ['2025-03-26', '2025-03-26'],
    ['2025-06-18', '2025-06-18'],
    ['2025-11-25', '2025-11-25'],
    ['2099-01-01', '2025-11-25'],
  ]) {
    test(`initialize ${asked} -> ${answered}`, async () => {
      const r = await raw(server, { body: init(asked, 'init-1') });
      assert.equal(r.status, 200);
      assert.equal(r.json?.id, 'init-1');
      assert.equal(r.json?.result?.protocolVersion, answered);
      assert.equal(r.json?.result?.serverInfo?.name, 'mcp-sandboxd');
      assert.equal(typeof r.json?.result?.serverInfo?.version, 'string');
      assert.ok(r.json?.result?.capabilities?.tools, 'tools capability');
      const sid = r.headers.get('mcp-session-id');
      assert.match(sid ?? '', /^[0-9a-f]{32}$/);
      // The session works under the negotiated version.
      const p = await raw(server, { headers: { 'mcp-session-id': sid, 'mcp-protocol-version': answered }, body: ping(2) });
      assert.deepEqual(p.json, { jsonrpc: '2.0', id: 2, result: {} });
    });
  }

  test('session ids are distinct', async () => {
    const ids = new Set();
    for (let i = 0; i < 5; i++) ids.add(await rawSession(server));
    assert.equal(ids.size, 5);
    for (const id of ids) assert.match(id, /^[0-9a-f]{32}$/);
  });

  test('batch under 2025-03-26: responses for the requests only', async () => {
    const sid = await rawSession(server, { version: '2025-03-26' });
    const r = await raw(server, {
      headers: { 'mcp-session-id': sid, 'mcp-protocol-version': '2025-03-26' },
      body: [ping(1), ping('two'), { jsonrpc: '2.0', method: 'notifications/initialized' }],
    });
    assert.equal(r.status, 200);
    assert.ok(Array.isArray(r.json), r.text);
    assert.equal(r.json.length, 2);
    const byId = new Map(r.json.map((m) => [m.id, m]));
    assert.deepEqual(byId.get(1), { jsonrpc: '2.0', id: 1, result: {} });
    assert.deepEqual(byId.get('two'), { jsonrpc: '2.0', id: 'two', result: {} });
  });

  test('batch of notifications only under 2025-03-26: 202', async () => {
    const sid = await rawSession(server, { version: '2025-03-26' });
    const r = await raw(server, {
      headers: { 'mcp-session-id': sid, 'mcp-protocol-version': '2025-03-26' },
      body: [{ jsonrpc: '2.0', method: 'notifications/initialized' }, { jsonrpc: '2.0', id: 4, result: {} }],
    });
    assert.equal(r.status, 202);
  });

  test('batch under 2025-03-26: initialize inside is refused, an empty batch is 400', async () => {
    const sid = await rawSession(server, { version: '2025-03-26' });
    const h = { 'mcp-session-id': sid, 'mcp-protocol-version': '2025-03-26' };
    const r = await raw(server, { headers: h, body: [init('2025-03-26', 'i'), ping('p')] });
    assert.equal(r.status, 200);
    assert.ok(Array.isArray(r.json), r.text);
    const byId = new Map(r.json.map((m) => [m.id, m]));
    assert.equal(byId.get('i')?.error?.code, -32600);
    assert.deepEqual(byId.get('p'), { jsonrpc: '2.0', id: 'p', result: {} });
    assert.equal(r.headers.get('mcp-session-id'), null);
    const e = await raw(server, { headers: h, body: [] });
    assert.equal(e.status, 400);
    assert.equal(e.json?.error?.code, -32600);
  });

  test('batch under 2025-06-18: 400 -32600', async () => {
    const sid = await rawSession(server, { version: '2025-06-18' });
    const r = await raw(server, {
      headers: { 'mcp-session-id': sid, 'mcp-protocol-version': '2025-06-18' },
      body: [ping(1), ping(2)],
    });
    assert.equal(r.status, 400);
    assert.equal(r.json?.error?.code, -32600);
  });

  test('Accept: text/event-stream only -> SSE answer', async () => {
    const sid = await rawSession(server);
    const r = await raw(server, {
      headers: { 'mcp-session-id': sid, 'mcp-protocol-version': '2025-06-18', accept: 'text/event-stream' },
      body: ping(31),
    });
    assert.equal(r.status, 200);
    assert.match(r.headers.get('content-type') ?? '', /^text\/event-stream/);
    assert.match(r.text, /^event: message$/m);
    const data = r.text.split('\n').filter((l) => l.startsWith('data: ')).map((l) => JSON.parse(l.slice(6)));
    assert.equal(data.length, 1, r.text);
    assert.deepEqual(data[0], { jsonrpc: '2.0', id: 31, result: {} });
  });

  test('initialize answered as SSE carries the session id', async () => {
    const r = await raw(server, { headers: { accept: 'text/event-stream' }, body: init('2025-06-18', 9) });
    assert.equal(r.status, 200);
    assert.match(r.headers.get('content-type') ?? '', /^text\/event-stream/);
    assert.match(r.headers.get('mcp-session-id') ?? '', /^[0-9a-f]{32}$/);
    const line = r.text.split('\n').find((l) => l.startsWith('data: '));
    assert.equal(JSON.parse(line.slice(6)).result.protocolVersion, '2025-06-18');
  });
});

// ---------------------------------------------------------------- 4. DELETE

describe('DELETE /mcp', () => {
  let server;
  before(async () => { server = await startServer(); });
  after(async () => { await stopOk(server); });

  test('ends the session; a second DELETE is 404; without header 400', async () => {
    const sid = await rawSession(server);
    const other = await rawSession(server);
    const d1 = await raw(server, { method: 'DELETE', headers: { 'mcp-session-id': sid } });
    assert.equal(d1.status, 200);
    const p = await raw(server, { headers: { 'mcp-session-id': sid, 'mcp-protocol-version': '2025-06-18' }, body: ping() });
    assert.equal(p.status, 404);
    const d2 = await raw(server, { method: 'DELETE', headers: { 'mcp-session-id': sid } });
    assert.equal(d2.status, 404);
    const d3 = await raw(server, { method: 'DELETE' });
    assert.equal(d3.status, 400);
    // Other sessions are untouched.
    const q = await raw(server, { headers: { 'mcp-session-id': other, 'mcp-protocol-version': '2025-06-18' }, body: ping(8) });
    assert.deepEqual(q.json, { jsonrpc: '2.0', id: 8, result: {} });
  });
});

// ---------------------------------------------------------------- 5. session TTL

describe('session TTL', () => {
  let server;
  before(async () => { server = await startServer({ args: ['--session-ttl', '1'] }); });
  after(async () => { await stopOk(server); });

  test('an idle session expires, a used one does not', async () => {
    const idle = await rawSession(server);
    const busy = await rawSession(server);
    const h = (sid) => ({ 'mcp-session-id': sid, 'mcp-protocol-version': '2025-06-18' });
    // Keep `busy` alive with a ping every 400 ms for ~2.5 s.
    for (let i = 0; i < 6; i++) {
      await sleep(420);
      const r = await raw(server, { headers: h(busy), body: ping(i) });
      assert.equal(r.status, 200, `busy session ping ${i}`);
    }
    const r = await raw(server, { headers: h(idle), body: ping() });
    assert.equal(r.status, 404);
    assert.match(await waitFor(() => { const l = server.log(); return /session [0-9a-f]{8} expired/.test(l) ? l : ''; }),
      /session [0-9a-f]{8} expired/);
  });
});

// ---------------------------------------------------------------- 6. /health

describe('/health', () => {
  let server;
  before(async () => { server = await startHealthyServer(); });
  after(async () => { await stopOk(server); });

  const health = async () => {
    const r = await raw(server, { method: 'GET', path: '/health', headers: { 'content-type': undefined } });
    assert.equal(r.status, 200);
    assert.match(r.headers.get('content-type') ?? '', /^application\/json/);
    return r.json;
  };

  test('a request line in absolute form is routed on its path (RFC 9112 3.2.2)', async () => {
    const text = await new Promise((resolve, reject) => {
      const sock = net.connect(server.port, '127.0.0.1', () => {
        sock.write(`GET http://127.0.0.1:${server.port}/health?x=1 HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n`);
      });
      let buf = '';
      sock.on('data', (d) => { buf += d; });
      sock.on('end', () => resolve(buf));
      sock.on('error', reject);
    });
    assert.match(text, /^HTTP\/1\.1 200 /);
    assert.match(text, /"status":"ok"/);
  });

  test('reports status, version, uptime and the session count', async () => {
    const h0 = await health();
    assert.equal(h0.status, 'ok');
    assert.equal(typeof h0.version, 'string');
    assert.match(h0.version, /^\d+\.\d+\.\d+/);
    assert.equal(typeof h0.uptime_seconds, 'number');
    assert.ok(h0.uptime_seconds >= 0);
    assert.equal(typeof h0.sessions, 'number');
    const a = await rawSession(server);
    await rawSession(server);
    await rawSession(server);
    const h1 = await health();
    assert.equal(h1.sessions, h0.sessions + 3);
    await raw(server, { method: 'DELETE', headers: { 'mcp-session-id': a } });
    const h2 = await health();
    assert.equal(h2.sessions, h0.sessions + 2);
  });

  test('--version output matches /health version', async () => {
    const h = await health();
    const v = spawnSync(BIN, ['--version'], { encoding: 'utf8' });
    assert.equal(v.stdout.trim(), `mcp-sandboxd ${h.version}`);
  });

  test('POST /health is 405', async () => {
    const r = await raw(server, { path: '/health', body: '{}' });
    assert.equal(r.status, 405);
  });
});

// ---------------------------------------------------------------- 7. configuration errors

describe('configuration errors', () => {
  const env = { PATH: process.env.PATH, ASAN_OPTIONS: process.env.ASAN_OPTIONS || '', UBSAN_OPTIONS: process.env.UBSAN_OPTIONS || '' };
  const run = (args, extraEnv = {}) => spawnSync(BIN, args, { encoding: 'utf8', env: { ...env, ...extraEnv }, timeout: 10000 });

  for (const [label, args, extraEnv, needle] of [
    ['--port abc', ['--port', 'abc'], {}, '--port'],
    ['--port 70000', ['--port', '70000'], {}, '--port'],
    ['--port=0', ['--port=0'], {}, '--port'],
    ['--max-concurrent -1', ['--max-concurrent', '-1'], {}, '--max-concurrent'],
    ['--bogus-flag', ['--bogus-flag'], {}, '--bogus-flag'],
    ['--port without a value', ['--port'], {}, '--port'],
    ['--max-body 12Q', ['--max-body', '12Q'], {}, '--max-body'],
    ['--max-output-bytes 1G (above the 256M cap)', ['--max-output-bytes', '1G'], {}, '--max-output-bytes: expected a byte size (K/M/G suffix allowed) in 65536..268435456'],
    ['SANDBOX_PORT=0', [], { SANDBOX_PORT: '0' }, 'SANDBOX_PORT'],
    ['SANDBOX_SESSION_TTL=abc', [], { SANDBOX_SESSION_TTL: 'abc' }, 'SANDBOX_SESSION_TTL'],
  ]) {
    test(`${label}: exit 2, one line naming the setting`, () => {
      const r = run(args, extraEnv);
      assert.equal(r.status, 2, `status ${r.status} signal ${r.signal} stderr ${r.stderr}`);
      const lines = r.stderr.split('\n').filter((l) => l.length > 0);
      assert.equal(lines.length, 1, `stderr: ${JSON.stringify(r.stderr)}`);
      assert.ok(lines[0].includes(needle), `stderr should name ${needle}: ${lines[0]}`);
      assert.equal(r.stdout, '');
    });
  }

  test('--help exits 0 and lists --port', () => {
    const r = run(['--help']);
    assert.equal(r.status, 0);
    assert.match(r.stdout, /--port/);
    assert.match(r.stdout, /SANDBOX_PORT/);
    assert.equal(r.stderr, '');
  });

  test('--version exits 0 and prints the version', () => {
    const r = run(['--version']);
    assert.equal(r.status, 0);
    assert.match(r.stdout, /^mcp-sandboxd \d+\.\d+\.\d+\n$/);
  });
});

// ---------------------------------------------------------------- 8. logging

describe('logging', () => {
  const token = 's3cr3t-token-value';
  const wrong = 'wr0ng-token-value-xyz';
  const marker = 'BODY-MARKER-123';
  let server;
  before(async () => { server = await startServer({ token }); });
  after(async () => { await stopOk(server); });

  const auth = { authorization: `Bearer ${token}` };

  test('access lines without secrets or bodies', async () => {
    const sid = await rawSession(server, { headers: auth });
    const h = { ...auth, 'mcp-session-id': sid, 'mcp-protocol-version': '2025-06-18' };
    assert.equal((await raw(server, { headers: h, body: ping() })).status, 200);
    const bad = await raw(server, { headers: { authorization: `Bearer ${wrong}` }, body: ping() });
    assert.equal(bad.status, 401);
    const m = await raw(server, { headers: h, body: { jsonrpc: '2.0', id: 5, method: marker, params: { note: marker } } });
    assert.equal(m.json?.error?.code, -32601);
    const tc = await raw(server, { headers: h, body: { jsonrpc: '2.0', id: 6, method: 'tools/call', params: { name: marker, arguments: { x: marker } } } });
    assert.equal(tc.json?.error?.code, -32602);
    await raw(server, { headers: h, body: `{"broken ${marker}` });
    const log = await waitFor(() => { const l = server.log(); return /POST \/mcp 401/.test(l) && (l.match(/POST \/mcp 400/) ?? []).length >= 1 ? l : ''; });
    assert.match(log, /POST \/mcp 200/);
    assert.match(log, /POST \/mcp 401/);
    assert.ok(!log.includes(token), 'log contains the token');
    assert.ok(!log.includes(wrong), 'log contains the wrong token');
    assert.ok(!log.includes(marker), 'log contains the body marker');
  });

  test('SIGHUP reopens the log file', async () => {
    const rotated = `${server.logFile}.1`;
    renameSync(server.logFile, rotated);
    server.proc.kill('SIGHUP');
    // The server recreates the file at the original path when it handles the signal.
    assert.ok(await waitFor(() => existsSync(server.logFile)), 'log file recreated after SIGHUP');
    const r = await raw(server, { method: 'GET', path: '/health?after-hup', headers: { 'content-type': undefined } });
    assert.equal(r.status, 200);
    const fresh = await waitFor(() => { const l = server.log(); return l.includes('GET /health 200') ? l : ''; });
    assert.match(fresh, /GET \/health 200/);
    assert.match(fresh, /log file reopened/);
    const old = readFileSync(rotated, 'utf8');
    assert.match(old, /POST \/mcp 200/);
    assert.ok(!old.includes('log file reopened'), 'the old file got lines after SIGHUP');
    rmSync(rotated, { force: true });
  });
});

// ---------------------------------------------------------------- 9. shutdown

describe('shutdown', () => {
  test('SIGTERM: exit 0, "shutdown complete" logged', async () => {
    const server = await startServer();
    const { client } = await connect(server);
    assert.deepEqual(await client.ping(), {});
    server.proc.kill('SIGTERM');
    const res = await server.exited;
    assert.deepEqual(res, { code: 0, signal: null });
    const log = server.log();
    assert.match(log, /SIGTERM received/);
    assert.match(log, /shutdown complete/);
    assert.match(log, /session [0-9a-f]{8} ended by shutdown/);
    await client.close().catch(() => {});
    assert.deepEqual(await server.stop(), { code: 0, signal: null });
  });
});
