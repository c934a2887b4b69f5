// Minimal MCP Streamable HTTP client for the load and soak scripts
// (scripts/bench-load.mjs, scripts/soak.mjs): plain JSON-RPC over node:http
// with keep-alive agents, JSON or SSE answers. Not a general client: just
// enough to drive mcp-sandboxd hard and see every status code.
import http from 'node:http';

export const PROTO = '2025-06-18';

// Raised when a request fails at the HTTP or JSON-RPC level (not a tool error).
export class RpcError extends Error {}

// One HTTP request; resolves { status, headers, text }.
export function request(agent, target, method, headers, body, timeoutMs = 120000) {
  return new Promise((resolve, reject) => {
    const data = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    const req = http.request({
      agent, method, host: target.hostname, port: target.port, path: target.pathname,
      headers: {
        'content-type': 'application/json',
        accept: 'application/json, text/event-stream',
        ...(data ? { 'content-length': data.length } : {}),
        ...headers,
      },
      timeout: timeoutMs,
    }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, text: Buffer.concat(chunks).toString() }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new RpcError(`${method} timed out after ${timeoutMs} ms`)));
    req.on('error', reject);
    req.end(data);
  });
}

// The JSON-RPC message of an answer (JSON body, or the last data: line of SSE).
function message(r) {
  if ((r.headers['content-type'] || '').includes('text/event-stream')) {
    let msg;
    for (const line of r.text.split('\n')) if (line.startsWith('data:')) msg = JSON.parse(line.slice(5));
    return msg;
  }
  return JSON.parse(r.text);
}

// One MCP session over its own keep-alive agent (`sockets` connections).
export class Session {
  constructor(url, { name = 'load', sockets = 1 } = {}) {
    this.target = new URL(url);
    this.agent = new http.Agent({ keepAlive: true, maxSockets: sockets });
    this.name = name;
    this.sid = null;
    this.nextId = 1;
  }

  headers() {
    return { 'mcp-session-id': this.sid, 'mcp-protocol-version': PROTO };
  }

  async open() {
    const r = await request(this.agent, this.target, 'POST', {}, {
      jsonrpc: '2.0', id: this.nextId++, method: 'initialize',
      params: { protocolVersion: PROTO, capabilities: {}, clientInfo: { name: this.name, version: '1' } },
    });
    this.sid = r.headers['mcp-session-id'];
    if (r.status !== 200 || !this.sid) throw new RpcError(`initialize: HTTP ${r.status} ${r.text.slice(0, 300)}`);
    const n = await request(this.agent, this.target, 'POST', this.headers(), { jsonrpc: '2.0', method: 'notifications/initialized' });
    if (n.status !== 202 && n.status !== 200) throw new RpcError(`notifications/initialized: HTTP ${n.status}`);
    return this;
  }

  // tools/call; resolves { sc, isError, text } (sc = structuredContent). Throws RpcError
  // on a non-200 answer or a JSON-RPC error.
  async call(name, args = {}, timeoutMs = 120000) {
    const r = await request(this.agent, this.target, 'POST', this.headers(), {
      jsonrpc: '2.0', id: this.nextId++, method: 'tools/call', params: { name, arguments: args },
    }, timeoutMs);
    if (r.status !== 200) throw new RpcError(`${name}: HTTP ${r.status} ${r.text.slice(0, 300)}`);
    let msg;
    try {
      msg = message(r);
    } catch (e) {
      throw new RpcError(`${name}: bad JSON (${e.message}): ${r.text.slice(0, 300)}`);
    }
    if (!msg || msg.error || !msg.result) throw new RpcError(`${name}: ${JSON.stringify(msg?.error ?? msg).slice(0, 300)}`);
    return { sc: msg.result.structuredContent, isError: !!msg.result.isError, text: msg.result.content?.[0]?.text };
  }

  // DELETE /mcp; resolves the HTTP status (200/204 expected).
  async close() {
    let status = 0;
    try {
      const r = await request(this.agent, this.target, 'DELETE', this.headers());
      status = r.status;
    } finally {
      this.agent.destroy();
    }
    return status;
  }
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// Nearest-rank percentile of an ascending array.
export function pct(sorted, p) {
  if (sorted.length === 0) return NaN;
  const idx = Math.min(sorted.length, Math.max(1, Math.ceil((p / 100) * sorted.length)));
  return sorted[idx - 1];
}
