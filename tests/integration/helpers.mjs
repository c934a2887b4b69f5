// Shared helpers for the integration tests: start the real binary on a free
// loopback port with its own temp dirs, connect the official SDK client, and
// speak raw HTTP when a test needs to see status codes.
import { createHash } from 'node:crypto';
import { execFile, execFileSync, spawn } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';

const here = path.dirname(fileURLToPath(import.meta.url));
export const ROOT = path.resolve(here, '../..');
// `make test` runs the suite twice: with the release build and with ASan+UBSan.
export const BIN = process.env.SANDBOXD_BIN || path.join(ROOT, 'mcp-sandboxd');

// A port that was free a moment ago. Only a hint: another process (another
// test run on this machine) may bind it before we do, so the starters below
// retry with a fresh one when the server says the address is in use, and they
// recognise their own server by the line it writes to its own log file.
export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// Polls fn() every `step` ms until it returns a truthy value (returned) or
// `ms` pass (then throws `what`). For waiting on an event, never on time.
// Redis holds SHA-256 hex of a session id, never the id itself.
export const sessionKey = (sid) => createHash('sha256').update(sid).digest('hex');

// Polls fn() (sync or async) until it returns a truthy value, which it returns;
// fails after `ms` with `what` (a string, or a function giving one).
export async function waitFor(fn, { ms = 15000, every = 30, what = 'condition' } = {}) {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`${typeof what === 'function' ? await what() : what} not met within ${ms} ms`);
    await sleep(every);
  }
}

// The value of sample `name` (mcp_sandboxd_<name>, with its labels if any) in
// /metrics, or undefined; `token` when the server has one.
export async function metric(server, name, { token } = {}) {
  const headers = token ? { Authorization: `Bearer ${token}` } : {};
  const text = await (await fetch(`${server.base}/metrics`, { headers })).text();
  const esc = name.replace(/[{}"\\]/g, (c) => `\\${c}`);
  const m = text.match(new RegExp(`^mcp_sandboxd_${esc} (\\S+)$`, 'm'));
  return m ? Number(m[1]) : undefined;
}

class PortTaken extends Error {}

// Starts mcp-sandboxd; resolves once it logged that it listens on its port and
// /health answers. `args` are extra flags, `env` extra environment. Returns
// { url, port, base, proc, logFile, stop(), log() }. A port taken between
// freePort() and the bind is retried with a fresh one.
export async function startServer(opts = {}) {
  for (let attempt = 1; ; attempt++) {
    try {
      return await startServerOnce(opts);
    } catch (e) {
      if (!(e instanceof PortTaken) || attempt >= 8) throw e;
    }
  }
}

async function startServerOnce({ args = [], env = {}, token } = {}) {
  const port = await freePort();
  const dir = mkdtempSync(path.join(os.tmpdir(), 'sandboxd-test-'));
  chmodSync(dir, 0o755); // the sandbox user must reach the workspace root inside it
  const logFile = path.join(dir, 'server.log');
  const fullArgs = ['--host', '127.0.0.1', '--port', String(port), '--log-file', logFile,
    '--workspace-root', path.join(dir, 'ws'), ...args];
  if (token) fullArgs.push('--token', token);
  const lf = fullArgs.lastIndexOf('--log-file');
  const effectiveLog = fullArgs[lf + 1]; // a test may name its own log file
  const proc = spawn(BIN, fullArgs, {
    env: { PATH: process.env.PATH, SANDBOX_MAX_RESULT_CHARS: String(WHOLE_OUTPUT), ASAN_OPTIONS: process.env.ASAN_OPTIONS || '', UBSAN_OPTIONS: process.env.UBSAN_OPTIONS || '', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  proc.stderr.on('data', (d) => { stderr += d; });
  proc.stdout.on('data', () => {});
  const exited = new Promise((resolve) => proc.on('exit', (code, signal) => resolve({ code, signal })));
  const base = `http://127.0.0.1:${port}`;
  const readLog = () => { try { return readFileSync(effectiveLog, 'utf8'); } catch { return ''; } };
  const listening = `listening on http://127.0.0.1:${port}/mcp`;
  const deadline = Date.now() + 15000;
  for (;;) {
    if (proc.exitCode !== null || proc.signalCode !== null) {
      const why = `${stderr}${readLog()}`;
      rmSync(dir, { recursive: true, force: true });
      if (/cannot listen on .*Address already in use/.test(why)) throw new PortTaken(why);
      throw new Error(`server exited early (${proc.exitCode}): ${why}`);
    }
    // our own log file says our process holds the port: /health is then ours, not a stranger's
    if (readLog().includes(listening)) {
      try {
        const r = await fetch(`${base}/health`);
        if (r.ok) break;
      } catch { /* not up yet */ }
    }
    if (Date.now() > deadline) {
      proc.kill('SIGKILL');
      throw new Error(`server did not start: ${stderr}${readLog()}`);
    }
    await sleep(30);
  }
  const log = () => { try { return readFileSync(logFile, 'utf8'); } catch { return ''; } };
  return {
    port, base, url: new URL(`${base}/mcp`), proc, logFile, dir, log, maxResultChars: WHOLE_OUTPUT,
    stderr: () => stderr,
    exited,
    // SIGTERM, wait for exit; returns { code, signal }. Fails loudly on sanitizer reports.
    async stop({ keepDir = false } = {}) {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGTERM');
      const t = setTimeout(() => proc.kill('SIGKILL'), 20000);
      const res = await exited;
      clearTimeout(t);
      if (/ERROR: (Address|Leak|Undefined)Sanitizer|runtime error:/.test(stderr)) {
        throw new Error(`sanitizer report:\n${stderr}`);
      }
      if (!keepDir) rmSync(dir, { recursive: true, force: true });
      return res;
    },
  };
}

// An official SDK client connected over Streamable HTTP.
export async function connect(server, { token, name = 'integration-test' } = {}) {
  const opts = {};
  if (token) opts.requestInit = { headers: { Authorization: `Bearer ${token}` } };
  const transport = new StreamableHTTPClientTransport(server.url, opts);
  const client = new Client({ name, version: '1.0.0' });
  client.maxResultChars = server.maxResultChars; // startServer's servers allow whole outputs
  await client.connect(transport);
  return { client, transport };
}

// Output results are bounded by max_output_chars (default 20,000, issue 15);
// tests written for whole outputs ask for the server's default ceiling
// unless they name a budget (or pass opts.defaultBudget to test the default).
export const WHOLE_OUTPUT = 100000000; // the servers below allow it (SANDBOX_MAX_RESULT_CHARS)
const OUTPUT_TOOLS = new Set(['execute_code', 'get_execution_output']);

// Calls a tool and returns its structuredContent (and the raw result).
export async function call(client, name, args = {}, opts = {}) {
  const { defaultBudget, ...rest } = opts;
  if (OUTPUT_TOOLS.has(name) && !defaultBudget && args && typeof args === 'object' && !('max_output_chars' in args))
    args = { ...args, max_output_chars: client.maxResultChars ?? 1000000 }; // a server not started here: its default ceiling
  opts = rest;
  const res = await client.callTool({ name, arguments: args }, undefined, { timeout: 120000, ...opts });
  return { ...res.structuredContent, _result: res };
}

// Raw HTTP: returns { status, headers, text, json }.
export async function raw(server, { method = 'POST', path: p = '/mcp', headers = {}, body } = {}) {
  const h = { 'content-type': 'application/json', accept: 'application/json, text/event-stream', ...headers };
  for (const k of Object.keys(h)) if (h[k] === undefined) delete h[k];
  const r = await fetch(server.base + p, { method, headers: h, body: typeof body === 'string' || body === undefined ? body : JSON.stringify(body) });
  const text = await r.text();
  let json;
  try { json = JSON.parse(text); } catch { json = undefined; }
  return { status: r.status, headers: r.headers, text, json };
}

// initialize over raw HTTP; returns the session id.
export async function rawSession(server, { headers = {}, version = '2025-06-18' } = {}) {
  const r = await raw(server, {
    headers,
    body: { jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: version, capabilities: {}, clientInfo: { name: 'raw', version: '1' } } },
  });
  if (r.status !== 200) throw new Error(`initialize failed: ${r.status} ${r.text}`);
  return r.headers.get('mcp-session-id');
}

// Starts a throwaway redis-server (no persistence) in a temp dir, on `port`
// (a free one by default) or, with `unixsocket: true`, on a unix socket only.
// Returns { port, socket, url, dir, proc, stop(), kill(), cli(...args) }:
// cli runs redis-cli against it (db `db`, default 0; `--no-auth-warning -a`
// when requirepass is set) and returns its trimmed stdout.
export async function startRedis(opts = {}) {
  for (let attempt = 1; ; attempt++) {
    try {
      return await startRedisOnce(opts);
    } catch (e) {
      // a port we picked was taken before redis bound it: pick another (a port the caller chose is kept)
      if (!(e instanceof PortTaken) || opts.port !== undefined || attempt >= 8) throw e;
    }
  }
}

let redisStarts = 0;

async function startRedisOnce({ port, unixsocket = false, requirepass, dir } = {}) {
  const ownDir = !dir;
  dir = dir ?? mkdtempSync(path.join(os.tmpdir(), 'sandboxd-redis-'));
  if (!unixsocket && port === undefined) port = await freePort();
  const socket = unixsocket ? path.join(dir, 'redis.sock') : undefined;
  // a log of its own (a restart may reuse `dir`): its ready line is this process's
  const logPath = path.join(dir, `redis-${process.pid}-${++redisStarts}.log`);
  const args = ['--save', '', '--appendonly', 'no', '--dir', dir, '--logfile', logPath];
  if (unixsocket) args.push('--port', '0', '--unixsocket', socket, '--unixsocketperm', '700');
  else args.push('--port', String(port), '--bind', '127.0.0.1');
  if (requirepass) args.push('--requirepass', requirepass);
  const proc = spawn('redis-server', args, { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  proc.stdout.on('data', (d) => { out += d; });
  proc.stderr.on('data', (d) => { out += d; });
  const exited = new Promise((resolve) => proc.on('exit', (code, signal) => resolve({ code, signal })));
  const target = unixsocket ? ['-s', socket] : ['-h', '127.0.0.1', '-p', String(port)];
  const cli = (...cmd) => {
    let db = 0;
    if (typeof cmd[0] === 'object') db = cmd.shift().db ?? 0;
    const a = [...target, '-n', String(db)];
    if (requirepass) a.push('--no-auth-warning', '-a', requirepass);
    return execFileSync('redis-cli', [...a, ...cmd.map(String)], { encoding: 'utf8', maxBuffer: 1 << 30, stdio: ['ignore', 'pipe', 'pipe'] }).replace(/\n$/, '');
  };
  // the same, without blocking the event loop
  const acli = (...cmd) => {
    let db = 0;
    if (typeof cmd[0] === 'object') db = cmd.shift().db ?? 0;
    const a = [...target, '-n', String(db)];
    if (requirepass) a.push('--no-auth-warning', '-a', requirepass);
    return new Promise((resolve, reject) => execFile('redis-cli', [...a, ...cmd.map(String)], { encoding: 'utf8', maxBuffer: 1 << 30 },
      (err, stdout) => (err ? reject(err) : resolve(stdout.replace(/\n$/, '')))));
  };
  const readLog = () => { try { return readFileSync(logPath, 'utf8'); } catch { return ''; } };
  const deadline = Date.now() + 10000;
  for (;;) {
    if (proc.exitCode !== null || proc.signalCode !== null) {
      const why = `${out}${readLog()}`;
      if (ownDir) rmSync(dir, { recursive: true, force: true });
      if (/Address already in use/.test(why)) throw new PortTaken(why);
      throw new Error(`redis-server exited early: ${why}`);
    }
    // our own log says this redis is ready: a PING is then answered by it, not by a stranger on the port
    // "Ready to accept connections tcp" / "The server is now ready to accept connections at <socket>"
    if (/ready to accept connections/i.test(readLog())) {
      try {
        if (cli('PING') === 'PONG') break;
      } catch { /* not up yet */ }
    }
    if (Date.now() > deadline) {
      proc.kill('SIGKILL');
      throw new Error(`redis-server did not start: ${out}${readLog()}`);
    }
    await sleep(30);
  }
  const url = unixsocket ? `unix://${socket}` : `redis://127.0.0.1:${port}`;
  let stopped = false;
  const finish = async (sig) => {
    if (proc.exitCode === null && proc.signalCode === null) proc.kill(sig);
    await exited;
    if (ownDir && !stopped) rmSync(dir, { recursive: true, force: true });
    stopped = true;
  };
  return {
    port, socket, url, dir, proc, cli,
    acli,
    // SIGKILL: a crash, nothing flushed (and nothing persisted: --save '').
    kill: () => finish('SIGKILL'),
    stop: () => finish('SIGTERM'),
  };
}

// Runs fn(item, index) over items, k at a time.
export async function pool(items, k, fn) {
  let next = 0;
  await Promise.all(Array.from({ length: Math.min(k, items.length) }, async () => {
    while (next < items.length) {
      const i = next++;
      await fn(items[i], i);
    }
  }));
}
