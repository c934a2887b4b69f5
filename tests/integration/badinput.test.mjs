// The bad-input corpus: truncated, oversized, deeply nested, non-UTF-8 and
// mistyped requests, hostile headers, slow and vanishing clients. Unlike
// hostile.test.mjs (seeded random volume), every case here is deterministic and
// asserts the exact answer: HTTP status, JSON-RPC code and a message substring,
// or the tool's isError text naming the argument. Every response body must be
// valid UTF-8.
//
// A bystander session (official SDK client) runs a loop printing "tick N" every
// 100 ms for the whole file. After each group of cases it must still answer,
// its run must still be running, and its output must have grown with
// consecutive event ids and tick numbers (nothing lost, nothing injected). The
// last test checks /health, that the server process is alive, the fd count,
// and (through server.stop() in helpers.mjs) that its stderr holds no
// sanitizer report.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { readdirSync } from 'node:fs';
import { BIN, call, connect, pool, rawSession, sleep, startServer } from './helpers.mjs';

const ASAN = /asan/i.test(BIN);
const MAX_BODY = 3 * 1024 * 1024; // --max-body 3M
const MAX_TIMEOUT = 3600;
const CAPS = { max_memory_mb: 8192, max_cpu_seconds: 3600, max_file_size_mb: 4096, max_processes: 1024 };
const NOWHERE = '00000000-0000-4000-8000-000000000000';
const utf8 = new TextDecoder('utf-8', { fatal: true });

let server;

// ------------------------------------------------------------------ HTTP helpers

function decode(buf, ctx) {
  try {
    return utf8.decode(buf);
  } catch {
    return assert.fail(`${ctx}: the response body is not valid UTF-8: ${JSON.stringify(buf.toString('latin1').slice(0, 300))}`);
  }
}

// POST /mcp over fetch; body is a string, Buffer or value (JSON.stringify'd).
async function post(ctx, body, { session, version, headers = {} } = {}) {
  const h = { 'content-type': 'application/json', accept: 'application/json, text/event-stream', ...headers };
  if (session) h['mcp-session-id'] = session;
  if (version) h['mcp-protocol-version'] = version;
  const data = typeof body === 'string' || Buffer.isBuffer(body) ? body : JSON.stringify(body);
  let r;
  try {
    r = await fetch(`${server.base}/mcp`, { method: 'POST', headers: h, body: data, signal: AbortSignal.timeout(20000) });
  } catch (e) {
    assert.fail(`${ctx}: no response (${e.cause?.code ?? e.message}); server exit ${server.proc.exitCode ?? server.proc.signalCode}`);
  }
  const text = decode(Buffer.from(await r.arrayBuffer()), ctx);
  let json;
  try { json = JSON.parse(text); } catch { json = undefined; }
  return { status: r.status, headers: r.headers, text, json, ctx };
}

const brief = (x) => JSON.stringify(x)?.slice(0, 300);

function expectRpc(res, status, code, substr, id = null) {
  assert.equal(res.status, status, `${res.ctx}: HTTP ${res.status}, expected ${status}: ${res.text.slice(0, 300)}`);
  assert.ok(res.json && !Array.isArray(res.json), `${res.ctx}: not one JSON-RPC message: ${res.text.slice(0, 300)}`);
  assert.equal(res.json.error?.code, code, `${res.ctx}: expected error ${code}: ${brief(res.json)}`);
  assert.ok(res.json.error.message.includes(substr), `${res.ctx}: message ${JSON.stringify(res.json.error.message)} lacks ${JSON.stringify(substr)}`);
  assert.deepEqual(res.json.id, id, `${res.ctx}: id`);
  return res.json.error.message;
}

function expectTool(res, substr) {
  assert.equal(res.status, 200, `${res.ctx}: HTTP ${res.status}: ${res.text.slice(0, 300)}`);
  const r = res.json?.result;
  assert.ok(r, `${res.ctx}: expected a tool result: ${res.text.slice(0, 300)}`);
  assert.equal(r.isError, true, `${res.ctx}: expected isError: ${brief(r.structuredContent)}`);
  const err = r.structuredContent.error;
  assert.ok(typeof err === 'string' && err.includes(substr), `${res.ctx}: error ${JSON.stringify(err?.slice(0, 300))} lacks ${JSON.stringify(substr)}`);
  assert.equal(r.content[0].text, JSON.stringify(r.structuredContent), `${res.ctx}: the text block is the structuredContent`);
  return r.structuredContent;
}

const tc = (name, args, id = 1) => ({ jsonrpc: '2.0', id, method: 'tools/call', params: { name, arguments: args } });
const ping = (id = 1) => ({ jsonrpc: '2.0', id, method: 'ping' });

// ------------------------------------------------------------------ raw sockets

// Complete HTTP/1.1 responses (Content-Length framed) in buf.
function parseResponses(buf) {
  const out = [];
  let off = 0;
  for (;;) {
    const end = buf.indexOf('\r\n\r\n', off, 'latin1');
    if (end < 0) break;
    const [line, ...hl] = buf.subarray(off, end).toString('latin1').split('\r\n');
    const m = /^HTTP\/1\.[01] (\d{3})/.exec(line);
    if (!m) { out.push({ status: 0, garbage: line }); break; }
    const headers = {};
    for (const l of hl) { const i = l.indexOf(':'); if (i > 0) headers[l.slice(0, i).trim().toLowerCase()] = l.slice(i + 1).trim(); }
    const cl = Number(headers['content-length'] ?? 0);
    if (buf.length < end + 4 + cl) break;
    const body = buf.subarray(end + 4, end + 4 + cl);
    out.push({ status: Number(m[1]), headers, body });
    off = end + 4 + cl;
  }
  return out;
}

// Writes chunks (Buffers/strings; numbers are pauses in ms) on a fresh
// connection. Resolves { responses, closed, ms, wire } once `expect` responses
// arrived, the server closed, or `timeout` ms passed. `end`: half-close after
// writing; `destroy`: vanish right after writing.
function wire(chunks, { expect, timeout = 3000, end = false, destroy = false } = {}) {
  return new Promise((resolve) => {
    const t0 = Date.now();
    const s = net.connect(server.port, '127.0.0.1');
    let buf = Buffer.alloc(0);
    let done = false;
    const finish = (why) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      s.destroy();
      resolve({ responses: parseResponses(buf), closed: why === 'close', timedOut: why === 'timeout', ms: Date.now() - t0, wire: buf.toString('latin1') });
    };
    const timer = setTimeout(() => finish('timeout'), timeout);
    s.on('data', (d) => {
      buf = Buffer.concat([buf, d]);
      if (expect !== undefined && parseResponses(buf).length >= expect) finish('enough');
    });
    s.on('error', () => {});
    s.on('close', () => finish('close'));
    s.on('connect', async () => {
      for (const c of chunks) {
        if (done) return;
        if (typeof c === 'number') await sleep(c);
        else await new Promise((r) => s.write(c, r));
      }
      if (destroy) finish('destroyed');
      else if (end) s.end();
    });
  });
}

function httpReq({ session, headers = {}, body = '', cl } = {}) {
  const b = Buffer.isBuffer(body) ? body : Buffer.from(body);
  let head = 'POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nAccept: application/json, text/event-stream\r\n';
  if (session) head += `Mcp-Session-Id: ${session}\r\n`;
  for (const [k, v] of Object.entries(headers)) head += `${k}: ${v}\r\n`;
  head += `Content-Length: ${cl ?? b.length}\r\n\r\n`;
  return Buffer.concat([Buffer.from(head, 'latin1'), b]);
}

function rawJson(x, ctx) {
  assert.ok(x, `${ctx}: no response`);
  const text = decode(x.body, ctx);
  return { status: x.status, headers: x.headers, text, json: (() => { try { return JSON.parse(text); } catch { return undefined; } })(), ctx };
}

// ------------------------------------------------------------------ the corpus

describe('bad-input corpus', { timeout: 180000 }, () => {
  let by; // the bystander SDK client
  let loopId; // its ticking run
  let lastSeen = 0; // last event id checked
  let lastTick = 0;
  let sid; let sid0326;
  let fdBaseline;
  let slowloris; // promise of the background slow-header/stalled-body connections
  let stopped = false;

  const fdCount = () => readdirSync(`/proc/${server.proc.pid}/fd`).length;
  // the requests_waiting gauge of /metrics: HTTP requests parked for an answer
  const requestsWaiting = async () => Number((await (await fetch(`${server.base}/metrics`)).text()).match(/^mcp_sandboxd_requests_waiting (\S+)$/m)[1]);
  const tool = (ctx, name, args, opts = {}) => post(ctx, tc(name, args), { session: opts.session ?? sid, ...opts });

  // The bystander is answered, its loop still runs and its output grew
  // with no gap in event ids or tick numbers.
  async function bystanderOk(ctx) {
    const deadline = Date.now() + 15000;
    for (;;) {
      const out = await call(by.client, 'get_execution_output', { execution_id: loopId, last_event_id: String(lastSeen) });
      assert.equal(out.status, 'running', `${ctx}: the bystander's run is ${out.status}: ${brief(out)}`);
      assert.equal(out.dropped_events, 0, `${ctx}: dropped events`);
      for (const e of out.output) {
        assert.equal(Number(e.event_id), lastSeen + 1, `${ctx}: event id gap after ${lastSeen}: ${brief(e)}`);
        lastSeen = Number(e.event_id);
        if (e.type === 'ready') continue;
        assert.equal(e.type, 'stdout', `${ctx}: unexpected event ${brief(e)}`);
        assert.equal(e.data, `tick ${lastTick + 1}`, `${ctx}: tick gap after ${lastTick}: ${brief(e)}`);
        lastTick++;
      }
      if (out.output.length > 0) break;
      assert.ok(Date.now() < deadline, `${ctx}: the bystander's output stopped growing at event ${lastSeen}`);
      await sleep(50);
    }
    assert.deepEqual(await by.client.ping(), {});
  }

  before(async () => {
    server = await startServer({ args: ['--max-body', '3M', '--max-per-session', '5', '--kill-grace-ms', '200'] });
    by = await connect(server, { name: 'badinput-bystander' });
    const r = await call(by.client, 'execute_code_async', { command: 'i=0; while :; do i=$((i+1)); echo "tick $i"; sleep 0.1; done', timeout_seconds: 300 });
    assert.equal(r.status, 'running', brief(r));
    loopId = r.execution_id;
    sid = await rawSession(server);
    sid0326 = await rawSession(server, { version: '2025-03-26' });
    await bystanderOk('setup'); // waits for the first tick
    fdBaseline = fdCount();
  });

  after(async () => {
    await by?.client.close().catch(() => {});
    if (server && !stopped) await server.stop().catch(() => {});
  });

  // ---------------------------------------------------------------- truncation

  test('truncated bodies: cut at every byte of a request, and Content-Length beyond what is sent', async () => {
    // a tools/call with every JSON structure, nesting, escapes and multi-byte characters
    const full = Buffer.from(JSON.stringify(tc('execute_code', {
      command: 'printf "%s\\n" "é😀"', timeout_seconds: 5, interactive: false, environment: { A: 'x y', B: '\u00e9' },
      sandbox_config: { network: { mode: 'none' }, filesystem: { deny_read: ['/srv/a', '/srv/b'] }, resource_limits: { max_processes: 8 } },
    }, 'id-\u4e2d')));
    // where a cut splits a multi-byte character, the UTF-8 check names the character's first byte
    const starts = [];
    for (let i = 0; i < full.length;) {
      const c = full[i];
      const n = c < 0x80 ? 1 : c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : 2;
      for (let k = 1; k < n; k++) starts[i + k] = i;
      i += n;
    }
    const cases = [];
    for (let len = 1; len < full.length; len++) cases.push(len);
    await pool(cases, 4, async (len) => {
      const res = await post(`cut at byte ${len}/${full.length}`, full.subarray(0, len), { session: sid });
      if (starts[len] !== undefined) expectRpc(res, 400, -32700, `Parse error: the body is not valid UTF-8 (at byte ${starts[len]})`);
      else expectRpc(res, 400, -32700, 'Parse error: the body is not valid JSON');
    });
    expectRpc(await post('cut at byte 0', '', { session: sid }), 400, -32700, 'Parse error: empty request body');
    // a 2025-03-26 batch cut after each message
    const batch = JSON.stringify([ping('a'), ping('b'), tc('list_executions', {}, 'c')]);
    for (const at of [...batch.matchAll(/},?/g)].map((m) => m.index + m[0].length).filter((i) => i < batch.length)) {
      expectRpc(await post(`batch cut at ${at}`, batch.slice(0, at), { session: sid0326, version: '2025-03-26' }), 400, -32700, 'not valid JSON');
    }
    // Content-Length larger than the bytes sent, then a half-close (FIN) or a vanishing client:
    // h2o answers nothing and closes on the FIN (not at its 10 s request timeout: the
    // wire gives up before that); the bytes never reach the handler
    const body = JSON.stringify(ping(7));
    for (const extra of [1, 10, 1000, 100000]) {
      for (const how of ['end', 'destroy']) {
        const x = await wire([httpReq({ session: sid, body, cl: body.length + extra })], { timeout: how === 'end' ? 8000 : 2000, end: how === 'end', destroy: how === 'destroy' });
        assert.equal(x.responses.length, 0, `CL +${extra} then ${how}: ${x.wire.slice(0, 200)}`);
        if (how === 'end') assert.ok(x.closed && !x.timedOut, `CL +${extra} then FIN: the server closes on the FIN (${x.ms} ms, closed ${x.closed})`);
      }
    }
    await bystanderOk('after truncated bodies');
  });

  // ---------------------------------------------------------------- size

  test('oversized bodies: exactly --max-body is served, one byte over and far over get 413 and a close', async () => {
    const p = JSON.stringify(ping(99));
    const atCap = await post('exactly --max-body', p + ' '.repeat(MAX_BODY - p.length), { session: sid });
    assert.equal(atCap.status, 200, atCap.text.slice(0, 200));
    assert.deepEqual(atCap.json, { jsonrpc: '2.0', id: 99, result: {} });
    // h2o refuses from Content-Length alone, before reading the body, with its own
    // text/plain answer (not JSON-RPC: the handler never runs), and closes the connection
    const check413 = (x, ctx) => {
      assert.equal(x.responses.length, 1, `${ctx}: ${x.wire.slice(0, 300)}`);
      const r = x.responses[0];
      assert.equal(r.status, 413, `${ctx}: ${x.wire.slice(0, 300)}`);
      assert.match(x.wire, /^HTTP\/1\.1 413 Request Entity Too Large\r\n/, ctx);
      assert.equal(r.headers.connection, 'close', ctx);
      assert.equal(r.body.toString(), 'request entity is too large', ctx);
      assert.ok(x.closed, `${ctx}: the connection is closed after the 413`);
    };
    const over = httpReq({ session: sid, body: p + ' '.repeat(MAX_BODY + 1 - p.length) });
    const headEnd = over.indexOf('\r\n\r\n') + 4;
    check413(await wire([over.subarray(0, headEnd), 100, over.subarray(headEnd)], { timeout: 5000 }), 'one byte over --max-body');
    // far over: 1 GiB announced, 2 MiB actually streamed
    // (pauses let the 413 arrive before more bytes go out: writing into a socket the
    // server closed draws a reset, which may discard the answer on our side)
    check413(await wire([httpReq({ session: sid, cl: 1 << 30 }), 200, Buffer.alloc(2 << 20, 0x20)], { timeout: 5000 }), '1 GiB by Content-Length');
    check413(await wire([httpReq({ session: sid, cl: '999999999999999999' })], { timeout: 5000 }), 'an 18-digit Content-Length');
    // a Content-Length that overflows is a framing error (400), also answered by h2o
    const ovf = await wire([httpReq({ session: sid, cl: '99999999999999999999' })], { timeout: 5000 });
    assert.match(ovf.wire, /^HTTP\/1\.1 400 Invalid Request\r\n/, ovf.wire.slice(0, 200));
    assert.equal(ovf.responses[0]?.body.toString(), 'broken content-length header');
    assert.ok(ovf.closed, 'closed after a broken Content-Length');
    // chunked: refused once the chunks pass the cap (nothing tells in advance)
    const te = `POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nMcp-Session-Id: ${sid}\r\nTransfer-Encoding: chunked\r\n\r\n`;
    const mb = `100000\r\n${' '.repeat(1 << 20)}\r\n`;
    check413(await wire([te, mb, 50, mb, 50, mb, 50, mb, 50, mb, 50, mb, 50, '0\r\n\r\n'], { timeout: 10000 }), '6 MiB chunked');
    assert.deepEqual((await post('the session after the 413s', ping(1), { session: sid })).json.result, {});
    await bystanderOk('after oversized bodies');
  });

  test('deep nesting: cJSON\'s limit of 1000 levels is exact; 100,000 levels are a parse error, not a crash', async () => {
    const inParams = (k) => `{"jsonrpc":"2.0","id":1,"method":"ping","params":{"x":${'['.repeat(k)}${']'.repeat(k)}}}`;
    // the envelope and params use 2 levels, so 998 arrays reach the limit of 1000
    assert.deepEqual((await post('1000 levels in all', inParams(998), { session: sid })).json, { jsonrpc: '2.0', id: 1, result: {} });
    expectRpc(await post('1001 levels in all', inParams(999), { session: sid }), 400, -32700, 'Parse error: the body is not valid JSON');
    for (const [what, body] of [['100,000 [', '['.repeat(100000)], ['100,000 balanced []', '['.repeat(100000) + ']'.repeat(100000)],
      ['100,000 {"a":', '{"a":'.repeat(100000) + '1' + '}'.repeat(100000)], ['100,000 [ in a tool argument',
        `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"execute_code","arguments":{"command":"true","environment":${'['.repeat(100000)}}}}`]]) {
      expectRpc(await post(what, body, { session: sid }), 400, -32700, 'Parse error: the body is not valid JSON');
    }
    // nesting that parses, in a tool argument: refused by the argument's name
    const deepEnv = `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"execute_code","arguments":{"command":"true","environment":{"A":${'['.repeat(990)}${']'.repeat(990)}}}}}`;
    expectTool(await post('990 levels as an environment value', deepEnv, { session: sid }), "environment: the value of 'A' must be a string");
    await bystanderOk('after deep nesting');
  });

  test('huge strings (2.5 MB) in every string argument get the argument\'s own error', async () => {
    const BIG = 'x'.repeat(2.5 * 1024 * 1024);
    const BIGE = 'é'.repeat(1.2 * 1024 * 1024); // 2.4 MB of 2-byte characters: cut messages must stay UTF-8
    expectTool(await tool('2.5 MB command', 'execute_code', { command: BIG }), `'command' is ${BIG.length} bytes; the limit is 130816 (one exec argument)`);
    expectTool(await tool('2.4 MB multi-byte command', 'execute_code_async', { command: BIGE }), `'command' is ${Buffer.byteLength(BIGE)} bytes; the limit is 130816`);
    expectTool(await tool('2.5 MB environment value', 'execute_code', { command: 'true', environment: { BIG_VALUE: BIG } }),
      "environment: too large ('BIG_VALUE'): at most 130816 bytes per value and 1048576 in all");
    const en = expectTool(await tool('2.4 MB environment name', 'execute_code', { command: 'true', environment: { [BIGE]: 'x' } }), 'environment: \'éééé');
    assert.ok(en.error.endsWith("' is not a valid variable name") && en.error.length < 120, en.error.slice(0, 200));
    const ua = expectTool(await tool('2.4 MB argument name', 'execute_code', { command: 'true', [`a${BIGE}`]: 1 }), "Unknown argument 'aéé");
    assert.ok(ua.error.length < 100, 'the message quotes a prefix only');
    assert.ok(ua.error.endsWith("\ufffd'") || ua.error.endsWith("é'"), `a cut inside a character is replaced, not sent raw: ${JSON.stringify(ua.error.slice(-8))}`);
    expectTool(await tool('2.5 MB deny_read path', 'execute_code', { command: 'true', sandbox_config: { filesystem: { deny_read: [`/${BIG}`] } } }),
      `sandbox_config.filesystem.deny_read: a path is ${BIG.length + 1} characters long; the limit is 4095`);
    for (const name of ['get_execution_status', 'get_execution_output', 'send_stdin', 'cancel_execution']) {
      const args = { execution_id: BIGE, ...(name === 'send_stdin' ? { input_data: 'x' } : {}) };
      const sc = expectTool(await tool(`2.4 MB execution_id for ${name}`, name, args), 'Execution not found: éé');
      assert.ok(sc.error.length < 60, `${name}: the message quotes a prefix only (${sc.error.length})`);
    }
    // (the length is checked first, even for another session's run)
    expectTool(await tool('2.5 MB last_event_id', 'get_execution_output', { execution_id: loopId, last_event_id: BIG }),
      "'last_event_id' is too long: event ids are decimal numbers of at most 20 digits");
    const own = (await tool('a run of our own', 'execute_code', { command: 'echo own' })).json.result.structuredContent;
    assert.equal(own.status, 'completed', brief(own));
    expectTool(await tool('2.5 MB last_event_id on an own run', 'get_execution_output', { execution_id: own.execution_id, last_event_id: BIG }),
      "'last_event_id' is too long: event ids are decimal numbers of at most 20 digits");
    const cat = (await tool('an interactive sink', 'execute_code_async', { command: 'cat >/dev/null', interactive: true })).json.result.structuredContent;
    const sd = (await tool('2.5 MB into stdin', 'send_stdin', { execution_id: cat.execution_id, input_data: BIG })).json.result.structuredContent;
    // the run reads it, or the bounded queue refuses it by name; never a partial write reported as success
    assert.ok(sd.success === true || /^stdin buffer full: the process is not reading \(1048576 bytes queued at most\)$/.test(sd.error), brief(sd));
    const wd = (await tool('2.5 MB working_directory', 'execute_code', { command: 'true', working_directory: BIG })).json.result.structuredContent;
    assert.equal(wd.status, 'failed', brief(wd));
    assert.ok(wd.output.some((e) => e.type === 'error' || (e.type === 'stderr' && /File name too long/.test(e.data))), `the failure is explained: ${brief(wd.output)}`);
    assert.equal((await tool('cancel the sink', 'cancel_execution', { execution_id: cat.execution_id, force: true })).json.result.structuredContent.success, true);
    await bystanderOk('after huge strings');
  });

  // ---------------------------------------------------------------- encoding

  test('non-UTF-8 bytes, overlong forms and UTF-8-encoded surrogates: 400 -32700 naming the byte; escaped lone surrogates: 400 -32700', async () => {
    const bad = {
      'byte 0xff': [0xff], 'byte 0xfe': [0xfe], 'lone continuation 0x80': [0x80], 'overlong / (C0 AF)': [0xc0, 0xaf],
      'overlong NUL (C0 80)': [0xc0, 0x80], '3-byte overlong (E0 80 AF)': [0xe0, 0x80, 0xaf], '4-byte overlong (F0 80 80 AF)': [0xf0, 0x80, 0x80, 0xaf],
      'encoded U+D800 (ED A0 80)': [0xed, 0xa0, 0x80], 'encoded U+DFFF (ED BF BF)': [0xed, 0xbf, 0xbf], 'above U+10FFFF (F4 90 80 80)': [0xf4, 0x90, 0x80, 0x80],
      '5-byte form (F8 88 80 80 80)': [0xf8, 0x88, 0x80, 0x80, 0x80], 'latin-1 é (E9)': [0xe9], 'sequence cut by the quote (E2 82)': [0xe2, 0x82],
    };
    const places = {
      id: (b) => ['{"jsonrpc":"2.0","id":"a', b, '","method":"ping"}'],
      method: (b) => ['{"jsonrpc":"2.0","id":1,"method":"ping', b, '"}'],
      command: (b) => [`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"execute_code","arguments":{"command":"echo `, b, '"}}}'],
      'environment value': (b) => ['{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"execute_code","arguments":{"command":"true","environment":{"A":"', b, '"}}}}'],
      'argument name': (b) => ['{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"execute_code","arguments":{"command":"true","', b, '":1}}}'],
      'between tokens': (b) => ['{"jsonrpc":"2.0",', b, '"id":1,"method":"ping"}'],
    };
    for (const [what, bytes] of Object.entries(bad)) {
      for (const [where, make] of Object.entries(places)) {
        const [pre, , post_] = make();
        const body = Buffer.concat([Buffer.from(pre), Buffer.from(bytes), Buffer.from(post_)]);
        expectRpc(await post(`${what} in ${where}`, body, { session: sid }), 400, -32700, `Parse error: the body is not valid UTF-8 (at byte ${Buffer.byteLength(pre)})`);
      }
    }
    // escaped surrogates that do not pair: cJSON refuses the whole body
    for (const esc of ['\\ud800', '\\udc00', '\\ud800\\u0041', '\\ud800\\ud800', '\\udbff', '\\ud800x']) {
      expectRpc(await post(`escaped ${esc} in an id`, `{"jsonrpc":"2.0","id":"${esc}","method":"ping"}`, { session: sid }), 400, -32700, 'not valid JSON');
      expectRpc(await post(`escaped ${esc} in a command`, `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"execute_code","arguments":{"command":"echo ${esc}"}}}`, { session: sid }),
        400, -32700, 'not valid JSON');
    }
    // valid escapes and raw multi-byte text reach the run intact and come back intact
    const ok = await post('escaped pair, U+10FFFF and raw multi-byte', '{"jsonrpc":"2.0","id":"\\ud83d\\ude00","method":"tools/call","params":{"name":"execute_code","arguments":'
      + '{"command":"printf \'%s|%s|%s\\\\n\' \\"\\ud83d\\ude00\\" \\"\\udbff\\udfff\\" \\"中é\\""}}}', { session: sid });
    assert.equal(ok.status, 200, ok.text);
    assert.equal(ok.json.id, '😀');
    const sc = ok.json.result.structuredContent;
    assert.equal(sc.status, 'completed', brief(sc));
    assert.deepEqual(sc.output.filter((e) => e.type === 'stdout').map((e) => e.data), ['😀|\u{10ffff}|中é']);
    // nothing of the refused bodies reached the session
    const list = (await tool('list after encoding cases', 'list_executions', {})).json.result.structuredContent.executions;
    assert.ok(list.every((e) => !e.command.startsWith('echo ') || e.command === 'echo own'), brief(list));
    await bystanderOk('after encoding cases');
  });

  // ---------------------------------------------------------------- arguments

  test('wrong types in every argument of every tool (from tools/list), missing and unknown arguments', async () => {
    const list = (await post('tools/list', { jsonrpc: '2.0', id: 1, method: 'tools/list' }, { session: sid })).json.result.tools;
    assert.equal(list.length, 7);
    const runsBefore = (await tool('list before wrong types', 'list_executions', {})).json.result.structuredContent.executions.length;
    const done = (await tool('a finished run', 'execute_code', { command: 'true' })).json.result.structuredContent;
    const base = {
      execute_code: { command: 'true' }, execute_code_async: { command: 'true' }, send_stdin: { execution_id: done.execution_id, input_data: 'x' },
      cancel_execution: { execution_id: done.execution_id }, list_executions: {}, get_execution_status: { execution_id: done.execution_id },
      get_execution_output: { execution_id: done.execution_id },
    };
    const VALUES = { string: 'x', integer: 1.5, number: 1.5, boolean: true, object: { a: 1 }, array: ['x'] };
    const expectFor = (name, prop, type) => {
      if (prop === 'timeout_seconds') return `'timeout_seconds' must be an integer between 1 and ${MAX_TIMEOUT} (the server's --max-timeout)`;
      if (prop === 'environment') return "'environment' must be an object of string values";
      if (prop === 'sandbox_config') return 'sandbox_config must be an object';
      if (prop === 'last_event_id') return "'last_event_id' must be a string (an event_id from an earlier result)";
      if (prop === 'max_output_chars') return "'max_output_chars' must be an integer between 200 and";
      if (prop === 'head' || prop === 'tail') return `'${prop}' must be an integer between 1 and 10000000`;
      if (prop === 'grep') return "'grep' must be a non-empty POSIX extended regular expression";
      if (type === 'boolean') return `'${prop}' must be a boolean`;
      return `'${prop}' must be a string`;
    };
    const cases = [];
    for (const t of list) {
      const schema = t.inputSchema;
      assert.equal(schema.additionalProperties, false, `${t.name}: the schema forbids unknown arguments`);
      assert.deepEqual(Object.keys(base[t.name]).filter((k) => schema.required?.includes(k)).sort(), [...(schema.required ?? [])].sort(), `${t.name}: required`);
      for (const [prop, ps] of Object.entries(schema.properties)) {
        for (const [vt, v] of Object.entries(VALUES)) {
          if (vt === ps.type || (ps.type === 'integer' && vt === 'number')) continue;
          // last_event_id also takes a non-negative integer; 1.5 is refused
          cases.push({ name: t.name, args: { ...base[t.name], [prop]: v }, expect: expectFor(t.name, prop, ps.type), what: `${t.name}.${prop} = ${JSON.stringify(v)}` });
        }
        if (schema.required?.includes(prop)) {
          const args = { ...base[t.name] };
          delete args[prop];
          cases.push({ name: t.name, args, expect: `Missing required argument '${prop}'`, what: `${t.name} without ${prop}` });
          cases.push({ name: t.name, args: { ...base[t.name], [prop]: null }, expect: `Missing required argument '${prop}'`, what: `${t.name} with ${prop} null` });
        }
      }
      cases.push({ name: t.name, args: { ...base[t.name], bogus: 1 }, expect: "Unknown argument 'bogus'", what: `${t.name} with an unknown argument` });
      cases.push({ name: t.name, args: { ...base[t.name], Command: 'x' }, expect: "Unknown argument 'Command'", what: `${t.name} with a miscased argument` });
    }
    cases.push({ name: 'execute_code_async', args: { command: 'true', wait_for_completion: false }, expect: "Unknown argument 'wait_for_completion' (execute_code_async never waits)", what: 'async with wait_for_completion' });
    cases.push({ name: 'execute_code', args: { command: '' }, expect: "'command' must not be empty", what: 'empty command' });
    // numbers for the timeout: zero, negative, fractional, over the cap, huge, -0 and an overflowing literal
    for (const v of [0, -1, -3600, 0.5, 1.5, 3599.9, MAX_TIMEOUT + 1, 1e12, 2 ** 53, 1e308]) {
      for (const name of ['execute_code', 'execute_code_async']) {
        cases.push({ name, args: { command: 'true', timeout_seconds: v }, expect: `'timeout_seconds' must be an integer between 1 and ${MAX_TIMEOUT}`, what: `${name} timeout_seconds ${v}` });
      }
    }
    // resource limits: zero, negative, fractional, wrong types, null: "positive integer"; over the cap: the value and the cap
    for (const [lim, cap] of Object.entries(CAPS)) {
      for (const v of [0, -1, 0.5, 1.5, '5', true, null, [], {}]) {
        cases.push({ name: 'execute_code', args: { command: 'true', sandbox_config: { resource_limits: { [lim]: v } } },
          expect: `sandbox_config.resource_limits.${lim} must be a positive integer`, what: `${lim} = ${JSON.stringify(v)}` });
      }
      for (const [v, shown] of [[cap + 1, String(cap + 1)], [cap + 0.5, String(cap + 0.5)], [1e12, '1000000000000'], [1e300, '1e+300']]) {
        cases.push({ name: 'execute_code', args: { command: 'true', sandbox_config: { resource_limits: { [lim]: v } } },
          expect: `sandbox_config.resource_limits.${lim} = ${shown} exceeds the server's cap of ${cap}`, what: `${lim} = ${v}` });
      }
    }
    // sandbox_config's nested members
    for (const v of [1, 'x', true, []]) {
      cases.push({ name: 'execute_code', args: { command: 'true', sandbox_config: { network: v } }, expect: 'sandbox_config.network must be an object like {"mode": "none"}', what: `network ${JSON.stringify(v)}` });
      cases.push({ name: 'execute_code', args: { command: 'true', sandbox_config: { filesystem: v } }, expect: 'sandbox_config.filesystem must be an object', what: `filesystem ${JSON.stringify(v)}` });
      cases.push({ name: 'execute_code', args: { command: 'true', sandbox_config: { resource_limits: v } }, expect: 'sandbox_config.resource_limits must be an object', what: `resource_limits ${JSON.stringify(v)}` });
    }
    for (const v of [1, true, 'x', [], {}, null, 'None']) {
      cases.push({ name: 'execute_code', args: { command: 'true', sandbox_config: { network: { mode: v } } }, expect: "sandbox_config.network.mode must be 'none' or 'host'", what: `mode ${JSON.stringify(v)}` });
    }
    for (const f of ['deny_read', 'allow_write', 'deny_write']) {
      for (const v of [1, true, '/x', {}]) cases.push({ name: 'execute_code', args: { command: 'true', sandbox_config: { filesystem: { [f]: v } } }, expect: `sandbox_config.filesystem.${f} must be an array of absolute paths`, what: `${f} ${JSON.stringify(v)}` });
      for (const v of [[1], [null], [['/x']], [{}]]) cases.push({ name: 'execute_code', args: { command: 'true', sandbox_config: { filesystem: { [f]: v } } }, expect: `sandbox_config.filesystem.${f} must contain only strings`, what: `${f} ${JSON.stringify(v)}` });
    }
    for (const v of [1, true, null, [], {}]) {
      cases.push({ name: 'execute_code', args: { command: 'true', environment: { A: v } }, expect: "environment: the value of 'A' must be a string", what: `environment value ${JSON.stringify(v)}` });
    }
    await pool(cases, 4, async (c) => expectTool(await tool(c.what, c.name, c.args), c.expect));
    // the lenient cases: last_event_id as a non-negative integer is an event id
    const out = (await tool('last_event_id 0 (a number)', 'get_execution_output', { execution_id: done.execution_id, last_event_id: 0 })).json.result.structuredContent;
    assert.equal(out.status, 'completed', brief(out));
    expectTool(await tool('last_event_id 1e30 (a number)', 'get_execution_output', { execution_id: done.execution_id, last_event_id: 1e30 }), "Invalid last_event_id '1000000000000000019884624838656': the newest event id is");
    expectTool(await tool('last_event_id -1 (a number)', 'get_execution_output', { execution_id: done.execution_id, last_event_id: -1 }), "'last_event_id' must be a string");
    // the boundaries themselves are accepted
    for (const v of [1, MAX_TIMEOUT]) {
      const r = (await tool(`timeout_seconds ${v}`, 'execute_code', { command: 'true', timeout_seconds: v })).json.result;
      assert.equal(r.isError, false, brief(r));
      assert.equal(r.structuredContent.status, 'completed');
    }
    // nothing invalid started a run: only the runs started on purpose are listed
    const runs = (await tool('list after wrong types', 'list_executions', {})).json.result.structuredContent.executions;
    assert.equal(runs.length, runsBefore + 3, `runs: ${brief(runs.map((e) => e.command.slice(0, 40)))}`);
    await bystanderOk('after wrong types');
  });

  // ---------------------------------------------------------------- JSON-RPC

  test('unknown methods, id types, duplicate ids in a 2025-03-26 batch', async () => {
    for (const m of ['resources/list', 'prompts/list', 'completion/complete', 'logging/setLevel', 'tasks/list', 'rpc.discover', 'PING', 'tools/List', 'tools/call/', ' ping',
      'notifications/initialized', `a${'é'.repeat(80)}`]) {
      const res = await post(`method ${m.slice(0, 20)}`, { jsonrpc: '2.0', id: 5, method: m }, { session: sid });
      const msg = expectRpc(res, 200, -32601, 'Method not found: ', 5);
      // the message quotes 100 bytes at most; a character cut there becomes U+FFFD
      assert.equal(msg, m.length < 50 ? `Method not found: ${m}` : `Method not found: a${'é'.repeat(49)}\ufffd`);
    }
    // ids: strings and numbers are echoed exactly; null, objects, arrays and booleans are invalid requests answered with id null
    for (const id of ['abc', '', ' ', '0', 0, -1, 1.5, 1e300, 2 ** 53, 'é😀']) {
      const res = await post(`id ${JSON.stringify(id)}`, ping(id), { session: sid });
      assert.equal(res.status, 200);
      assert.deepEqual(res.json, { jsonrpc: '2.0', id, result: {} }, res.ctx);
    }
    for (const id of [null, {}, { a: 1 }, [], [1], true, false]) {
      expectRpc(await post(`id ${JSON.stringify(id)}`, ping(id), { session: sid }), 200, -32600, 'Invalid Request: "id" must be a string or a number');
    }
    // duplicate ids in one batch: every request is answered, in order, each with its own result
    const v = { session: sid0326, version: '2025-03-26' };
    const b = await post('duplicate ids', [ping(1), { jsonrpc: '2.0', id: 1, method: 'tools/list' }, { jsonrpc: '2.0', id: 1, method: 'nope' }, ping(1),
      tc('get_execution_status', { execution_id: NOWHERE }, 1)], v);
    assert.equal(b.status, 200, b.text);
    assert.ok(Array.isArray(b.json) && b.json.length === 5, b.text.slice(0, 300));
    assert.ok(b.json.every((m) => m.id === 1), brief(b.json.map((m) => m.id)));
    assert.deepEqual(b.json[0].result, {});
    assert.equal(b.json[1].result.tools.length, 7);
    assert.deepEqual(b.json[2].error, { code: -32601, message: 'Method not found: nope' });
    assert.deepEqual(b.json[3].result, {});
    assert.equal(b.json[4].result.structuredContent.error, `Execution not found: ${NOWHERE}`);
    // duplicate string ids mixed with invalid ids and a notification
    const c = await post('mixed ids in a batch', [ping('x'), ping(null), { jsonrpc: '2.0', method: 'notifications/initialized' }, ping('x'), ping(true), ping([1])], v);
    assert.deepEqual(c.json.map((m) => [m.id, m.error?.code ?? 'ok']), [['x', 'ok'], [null, -32600], ['x', 'ok'], [null, -32600], [null, -32600]]);
    // two executions started under the same id in one batch: two runs, two answers
    const d = await post('two runs, one id', [tc('execute_code', { command: 'echo one' }, 7), tc('execute_code', { command: 'echo two' }, 7)], v);
    assert.deepEqual(d.json.map((m) => [m.id, m.result.structuredContent.output.find((e) => e.type === 'stdout').data]), [[7, 'one'], [7, 'two']]);
    assert.notEqual(d.json[0].result.structuredContent.execution_id, d.json[1].result.structuredContent.execution_id);
    await bystanderOk('after JSON-RPC envelopes');
  });

  // ---------------------------------------------------------------- headers

  test('control characters, CR/LF injection, long and many headers on a raw socket', async () => {
    const body = JSON.stringify(ping(3));
    const one = async (ctx, req) => {
      const x = await wire([req], { expect: 1, timeout: 3000 });
      assert.equal(x.responses.length, 1, `${ctx}: ${x.wire.slice(0, 200)}`);
      return x;
    };
    // NUL, \x01, DEL and a bare CR in a header value or name: h2o's parser refuses the request (400) and closes
    for (const [what, c] of [['NUL', '\0'], ['\\x01', '\x01'], ['\\x1f', '\x1f'], ['DEL', '\x7f'], ['bare CR', '\r']]) {
      for (const [where, req] of [
        ['Mcp-Session-Id', httpReq({ session: `${sid.slice(0, 16)}${c}${sid.slice(16)}`, body })],
        ['MCP-Protocol-Version', httpReq({ session: sid, headers: { 'MCP-Protocol-Version': `2025-06-18${c}` }, body })],
        ['another header', httpReq({ session: sid, headers: { 'X-Pad': `a${c}b` }, body })],
        ['a header name', httpReq({ session: sid, headers: { [`X-A${c}b`]: '1' }, body })]]) {
        const x = await one(`${what} in ${where}`, req);
        assert.equal(x.responses[0].status, 400, `${what} in ${where}: ${x.wire.slice(0, 200)}`);
      }
    }
    // CR LF inside Mcp-Session-Id only starts another header: the first session id
    // counts, nothing is injected into the response
    const inj = await one('CRLF then a second session id', httpReq({ session: `${sid}\r\nMcp-Session-Id: ${NOWHERE}`, body }));
    assert.equal(inj.responses[0].status, 200);
    assert.deepEqual(rawJson(inj.responses[0], 'inj').json, { jsonrpc: '2.0', id: 3, result: {} });
    const inj2 = await one('CRLF then a response header', httpReq({ session: `${sid}\r\nX-Injected: 1\r\nSet-Cookie: a=b`, body }));
    assert.equal(inj2.responses[0].status, 200);
    assert.ok(!/x-injected|set-cookie/i.test(inj2.wire), 'request headers are not reflected');
    // a bare LF ends a header line too (RFC 9112 §2.2 allows it)
    assert.equal((await one('bare LF', httpReq({ session: `${sid}\nX-A: 1`, body }))).responses[0].status, 200);
    // CRLF CRLF inside a value ends the head early: the rest is a malformed body or request
    const split = await wire([httpReq({ session: `${sid}\r\n\r\nGET /health HTTP/1.1`, body })], { timeout: 1500 });
    assert.ok(split.responses.length >= 1 && split.responses.every((r) => r.status === 400 || r.status === 411 || r.status === 200), split.wire.slice(0, 300));
    assert.ok(split.responses.every((r) => !/"status":"ok"/.test(r.body.toString())), 'no smuggled /health answer');
    // trailing whitespace and obs-text in Mcp-Session-Id: an unknown session (404), never a crash
    for (const [what, v] of [['trailing tab', `${sid}\t`], ['obs-text', `${sid}\xff`]]) {
      const x = await one(what, httpReq({ session: v, body }));
      expectRpc(rawJson(x.responses[0], what), 404, -32001, 'Session not found');
    }
    // an obs-fold continuation line is not joined into the session id
    assert.equal((await one('obs-fold', httpReq({ session: `${sid}\r\n folded`, body }))).responses[0].status, 200);
    // MCP-Protocol-Version with bytes 0x80-0xff: quoted back as U+FFFD, never raw
    const pv = await one('obs-text protocol version', httpReq({ session: sid, headers: { 'MCP-Protocol-Version': '2025-\xe9\xff' }, body }));
    expectRpc(rawJson(pv.responses[0], 'pv'), 400, -32022, "Bad Request: unsupported MCP-Protocol-Version '2025-\ufffd\ufffd'", 3); // issue 13: -32022, the request's id
    // long values: 100 KB in one header is served; a head over h2o's limit is refused
    assert.equal((await one('100 KB header value', httpReq({ session: sid, headers: { 'X-Long': 'v'.repeat(100000) }, body }))).responses[0].status, 200);
    expectRpc(rawJson((await one('100 KB session id', httpReq({ session: 's'.repeat(100000), body }))).responses[0], 'long sid'), 404, -32001, 'Session not found');
    const huge = await wire([httpReq({ session: sid, headers: { 'X-Huge': 'h'.repeat(1 << 20) }, body })], { expect: 1, timeout: 5000 });
    assert.ok(!huge.timedOut, 'a 1 MB header is answered or closed');
    assert.ok(huge.responses.length === 0 || huge.responses[0].status === 400, huge.wire.slice(0, 200));
    // many headers: h2o takes 100 in all (5 of them ours here), the 101st is a 400
    const many = (k) => httpReq({ session: sid, headers: Object.fromEntries(Array.from({ length: k }, (_, i) => [`X-H${i}`, String(i)])), body });
    assert.equal((await one('100 headers', many(95))).responses[0].status, 200);
    assert.equal((await one('101 headers', many(96))).responses[0].status, 400);
    assert.equal((await one('5000 headers', many(5000))).responses[0].status, 400);
    await bystanderOk('after hostile headers');
  });

  // ---------------------------------------------------------------- slow clients

  test('slow clients: a body at one byte a second is served while others are served promptly; h2o\'s 10 s request timeout', async () => {
    // Observed with h2o 2.2.5: one request timeout of 10 s (H2O_DEFAULT_HTTP1_REQ_TIMEOUT)
    // counted from the connection's start; bytes trickling in do not re-arm it. When it
    // fires mid-request h2o closes the connection without an answer (no 408).
    // Started now, checked in the last test (it runs in the background meanwhile).
    const head = httpReq({ session: sid, body: JSON.stringify(ping(1)) });
    slowloris = Promise.all([
      wire(Array.from(head.subarray(0, 40)).flatMap((b) => [Buffer.from([b]), 1000]), { timeout: 20000 }), // header trickle, 1 byte/s
      wire([httpReq({ session: sid, cl: 100 }), Buffer.from('{"jsonrpc":')], { timeout: 20000 }), // body stalled
    ]);
    const body = Buffer.from(JSON.stringify(ping('slow')));
    const req = httpReq({ session: sid, body });
    const cut = req.length - 5;
    const t0 = Date.now();
    const slow = wire([req.subarray(0, cut), ...Array.from({ length: 5 }, (_, i) => [1000, req.subarray(cut + i, cut + i + 1)]).flat()], { expect: 1, timeout: 15000 });
    let slowDone = false;
    slow.then(() => { slowDone = true; });
    // others are served meanwhile: answered while the slow upload is still going (probes spread over it)
    for (let i = 0; i < 4; i++) {
      await sleep(800); // pacing, not synchronisation
      const out = await call(by.client, 'get_execution_status', { execution_id: loopId });
      assert.equal(out.status, 'running');
      const p = await post(`ping during the slow upload ${i}`, ping(i), { session: sid });
      assert.deepEqual(p.json, { jsonrpc: '2.0', id: i, result: {} });
      assert.ok(!slowDone, `probe ${i} was answered only after the slow upload ended`);
    }
    const x = await slow;
    assert.equal(x.responses.length, 1, `the slow request is answered: ${x.wire.slice(0, 200)}`);
    assert.deepEqual(rawJson(x.responses[0], 'slow').json, { jsonrpc: '2.0', id: 'slow', result: {} });
    assert.ok(Date.now() - t0 >= 4500, 'the body really took 5 s');
    await bystanderOk('after the slow upload');
  });

  // ---------------------------------------------------------------- vanishing clients

  test('clients that vanish mid-wait: the run finishes and is listed; 50 vanishing clients leave no fd behind', async () => {
    const s2 = await rawSession(server);
    const send = (session, msg) => wire([httpReq({ session, body: JSON.stringify(msg) })], { destroy: true, timeout: 2000 });
    await send(s2, tc('execute_code', { command: 'sleep 3' }));
    const t0 = Date.now();
    await bystanderOk('right after a client vanished');
    let runs;
    for (;;) { // the start is asynchronous to our vanishing
      runs = (await tool('list in the vanished client\'s session', 'list_executions', {}, { session: s2 })).json.result.structuredContent.executions;
      if (runs.length > 0 || Date.now() - t0 > 15000) break;
      await sleep(50);
    }
    assert.equal(runs.length, 1, brief(runs));
    assert.equal(runs[0].command, 'sleep 3');
    assert.equal(runs[0].status, 'running');
    // 50 more vanishing clients: waiting calls on a running run, execute_code that waits, pings
    const long = (await tool('a run to wait on', 'execute_code_async', { command: 'sleep 4' }, { session: s2 })).json.result.structuredContent;
    const before = fdCount();
    await Promise.all(Array.from({ length: 50 }, (_, i) => send(s2, i % 3 === 0 ? tc('get_execution_output', { execution_id: long.execution_id, wait: true }, i)
      : i % 3 === 1 ? tc('execute_code', { command: 'sleep 1', wait_for_completion: true }, i) : ping(i))));
    await bystanderOk('after 50 vanishing clients');
    assert.deepEqual((await post('ping after 50 vanishing clients', ping(1), { session: s2 })).json.result, {});
    // the first run finishes normally and stays listed
    for (;;) {
      const st = (await tool('status of the vanished run', 'get_execution_status', { execution_id: runs[0].id }, { session: s2 })).json.result.structuredContent;
      if (st.status !== 'running') {
        assert.equal(st.status, 'completed', brief(st));
        assert.equal(st.exit_code, 0);
        break;
      }
      await sleep(100); // polling until it ends (the describe's timeout bounds a hang)
    }
    // A vanished client's connection is only closed when its call answers (h2o 2.2 does
    // not read a connection whose request is being handled, so it cannot see the close):
    // parked waits hold their fd until the run ends. Once every run ended, the fds are back.
    // The parked-request gauge shows every vanished client's call answered (into the void).
    const deadline = Date.now() + 20000;
    let now, parked;
    for (;;) {
      const busy = (await tool('runs of the vanished clients', 'list_executions', {}, { session: s2 })).json.result.structuredContent.executions.filter((e) => e.status === 'running');
      now = fdCount();
      parked = await requestsWaiting();
      if (busy.length === 0 && now <= before + 3 && parked === 0) break;
      assert.ok(Date.now() < deadline, `fds: ${before} before 50 vanishing clients, ${now} after, ${busy.length} runs still going, ${parked} requests parked`);
      await sleep(100);
    }
    const listed = (await tool('list after the vanishing clients', 'list_executions', {}, { session: s2 })).json.result.structuredContent.executions;
    assert.ok(listed.some((e) => e.id === runs[0].id && e.status === 'completed'), brief(listed));
    await bystanderOk('after the vanished runs ended');
  });

  test('the end: slowloris connections were closed by h2o\'s timeout, the bystander and the server came through', async () => {
    const [trickle, stalled] = await slowloris;
    for (const [what, x] of [['header trickle', trickle], ['stalled body', stalled]]) {
      assert.ok(x.closed, `${what}: closed by the server (${x.ms} ms, timed out ${x.timedOut})`);
      assert.equal(x.responses.length, 0, `${what}: no answer, only a close: ${x.wire.slice(0, 200)}`);
      assert.ok(x.ms >= 9000, `${what}: closed after ${x.ms} ms, before h2o's 10 s request timeout`);
    }
    await bystanderOk('final');
    const h = await fetch(`${server.base}/health`);
    const hj = await h.json();
    assert.equal(h.status, 200);
    assert.equal(hj.status, 'ok', brief(hj));
    assert.equal(server.proc.exitCode, null, 'the server is alive');
    assert.equal(server.proc.signalCode, null);
    // (idle keep-alive connections of our fetch pool close within undici's 4 s)
    const until = Date.now() + 8000;
    let fds;
    while ((fds = fdCount()) > fdBaseline + 3 && Date.now() < until) await sleep(200);
    assert.ok(fds <= fdBaseline + 3, `fds: ${fdBaseline} at the start, ${fds} at the end`);
    assert.doesNotMatch(server.stderr(), /Sanitizer|runtime error:/, 'no sanitizer report so far');
    const c = await call(by.client, 'cancel_execution', { execution_id: loopId });
    assert.equal(c.success, true, c.error);
    await by.client.close();
    stopped = true;
    const res = await server.stop(); // throws on a sanitizer report (leaks included)
    assert.deepEqual(res, { code: 0, signal: null }, `server exit: ${JSON.stringify(res)} stderr: ${server.stderr().slice(-3000)}`);
  });
});
