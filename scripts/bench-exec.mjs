// Client side of scripts/bench-exec.sh: execute_code {"command":"true"} round
// trips over plain HTTP JSON-RPC (keep-alive, one connection and one MCP
// session per client). Prints one summary line and, with --json FILE, writes
// the figures for the shell script.
//
//   node scripts/bench-exec.mjs --url http://127.0.0.1:PORT/mcp [--clients 1]
//        [--runs 200] [--duration 10] [--warmup 5] [--command true] [--json out.json]
//
// --runs is per client; a client stops early when --duration seconds have passed.
import http from 'node:http';
import { writeFileSync } from 'node:fs';
import { PROTO, request as httpRequest } from './mcp-http.mjs';

const opts = { url: '', clients: 1, runs: 200, duration: 10, warmup: 5, command: 'true', json: '' };
const argv = process.argv.slice(2);
for (let i = 0; i < argv.length; i++) {
  const k = argv[i].replace(/^--/, '');
  if (!(k in opts) || i + 1 >= argv.length) {
    console.error(`usage: bench-exec.mjs --url URL [--clients N] [--runs N] [--duration S] [--warmup N] [--command CMD] [--json FILE] (bad: ${argv[i]})`);
    process.exit(2);
  }
  const v = argv[++i];
  opts[k] = typeof opts[k] === 'number' ? Number(v) : v;
}
if (!opts.url) {
  console.error('bench-exec.mjs: --url is required');
  process.exit(2);
}
const target = new URL(opts.url);

// POST/DELETE one JSON body on this benchmark's URL; resolves { status, headers, text }.
const request = (agent, method, headers, body) => httpRequest(agent, target, method, headers, body);

class Client {
  constructor(n) {
    this.n = n;
    // one keep-alive connection per client, like an MCP client holding its session
    this.agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    this.sid = null;
    this.nextId = 1;
  }

  headers() {
    return { 'mcp-session-id': this.sid, 'mcp-protocol-version': PROTO };
  }

  async open() {
    const r = await request(this.agent, 'POST', {}, {
      jsonrpc: '2.0', id: this.nextId++, method: 'initialize',
      params: { protocolVersion: PROTO, capabilities: {}, clientInfo: { name: `bench-exec-${this.n}`, version: '1' } },
    });
    this.sid = r.headers['mcp-session-id'];
    if (r.status !== 200 || !this.sid) throw new Error(`initialize: HTTP ${r.status} ${r.text.slice(0, 300)}`);
    const n = await request(this.agent, 'POST', this.headers(), { jsonrpc: '2.0', method: 'notifications/initialized' });
    if (n.status !== 202 && n.status !== 200) throw new Error(`notifications/initialized: HTTP ${n.status}`);
  }

  // One execute_code round trip: { ms, ok, serverMs, error }.
  async run() {
    const t0 = process.hrtime.bigint();
    const r = await request(this.agent, 'POST', this.headers(), {
      jsonrpc: '2.0', id: this.nextId++, method: 'tools/call',
      params: { name: 'execute_code', arguments: { command: opts.command } },
    });
    const ms = Number(process.hrtime.bigint() - t0) / 1e6;
    let sc;
    try {
      sc = JSON.parse(r.text).result?.structuredContent;
    } catch { /* reported below */ }
    if (r.status !== 200 || !sc || sc.status !== 'completed' || sc.exit_code !== 0) {
      const out = sc?.output || [];
      const ev = out.find((e) => e.type === 'error' || e.type === 'resource_limit');
      const stderr = out.filter((e) => e.type === 'stderr').map((e) => e.data).join('').trim().slice(0, 200);
      const why = sc?.error || (sc ? `status ${sc.status}, exit_code ${sc.exit_code}${ev ? `: ${ev.message}` : ''}` +
        (stderr ? `, stderr: ${JSON.stringify(stderr)}` : '') : `HTTP ${r.status}: ${r.text.slice(0, 200)}`);
      return { ms, ok: false, error: why };
    }
    const exit = (sc.output || []).find((e) => e.type === 'exit');
    return { ms, ok: true, serverMs: exit?.duration_ms };
  }

  async close() {
    try {
      await request(this.agent, 'DELETE', this.headers());
    } catch { /* the server is going away anyway */ }
    this.agent.destroy();
  }
}

function pct(sorted, p) {
  if (sorted.length === 0) return NaN;
  const idx = Math.min(sorted.length, Math.max(1, Math.ceil((p / 100) * sorted.length)));
  return sorted[idx - 1];
}

async function main() {
  const clients = Array.from({ length: opts.clients }, (_, i) => new Client(i));
  await Promise.all(clients.map((c) => c.open()));
  // warm-up: the first run of a session creates its workspace; page caches warm
  await Promise.all(clients.map(async (c) => { for (let i = 0; i < opts.warmup; i++) await c.run(); }));

  const lat = [];
  const serverMs = [];
  let failed = 0;
  const errors = new Map(); // message -> count
  const start = process.hrtime.bigint();
  const deadline = start + BigInt(Math.round(opts.duration * 1e9));
  await Promise.all(clients.map(async (c) => {
    for (let i = 0; i < opts.runs && process.hrtime.bigint() < deadline; i++) {
      const r = await c.run();
      if (r.ok) {
        lat.push(r.ms);
        if (typeof r.serverMs === 'number') serverMs.push(r.serverMs);
      } else {
        failed++;
        errors.set(r.error, (errors.get(r.error) || 0) + 1);
      }
    }
  }));
  const wallS = Number(process.hrtime.bigint() - start) / 1e9;
  await Promise.all(clients.map((c) => c.close()));

  lat.sort((a, b) => a - b);
  serverMs.sort((a, b) => a - b);
  const res = {
    clients: opts.clients,
    runs: lat.length,
    failed,
    errors: Object.fromEntries(errors),
    wall_s: wallS,
    runs_per_s: lat.length / wallS,
    p50_ms: pct(lat, 50),
    p90_ms: pct(lat, 90),
    p99_ms: pct(lat, 99),
    min_ms: lat[0] ?? NaN,
    max_ms: lat[lat.length - 1] ?? NaN,
    mean_ms: lat.reduce((a, b) => a + b, 0) / (lat.length || 1),
    server_duration_p50_ms: pct(serverMs, 50), // the exit event's duration_ms (spawn to exit, ms resolution)
  };
  const f = (x) => (Number.isFinite(x) ? x.toFixed(2) : '-');
  console.log(`execute_code x${res.runs} with ${res.clients} client(s) in ${f(res.wall_s)} s: ${f(res.runs_per_s)} runs/s, ` +
    `p50 ${f(res.p50_ms)} ms, p90 ${f(res.p90_ms)} ms, p99 ${f(res.p99_ms)} ms, max ${f(res.max_ms)} ms` +
    (failed ? `, ${failed} failed` : ''));
  for (const [msg, n] of [...errors].sort((a, b) => b[1] - a[1]).slice(0, 5)) console.log(`  failed x${n}: ${msg}`);
  if (opts.json) writeFileSync(opts.json, JSON.stringify(res) + '\n');
}

main().catch((e) => {
  console.error(`bench-exec.mjs: ${e.message}`);
  process.exit(1);
});
