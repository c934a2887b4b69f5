// The 2026-07-28 (modern era) request builders and checks that modern.test.mjs
// and control.test.mjs share: _meta, the routing headers a conforming client
// sends, a result's checks, a tools/call with handles, and a poll to the end.
import assert from 'node:assert/strict';
import { raw, waitFor } from './helpers.mjs';

export const MODERN = '2026-07-28';
export const meta = (over = {}) => ({
  'io.modelcontextprotocol/protocolVersion': MODERN,
  'io.modelcontextprotocol/clientCapabilities': {},
  'io.modelcontextprotocol/clientInfo': { name: 'raw-modern', version: '1' },
  ...over,
});
export const rpc = (id, method, params = {}) => ({ jsonrpc: '2.0', id, method, params: { ...params, _meta: meta() } });
export const toolCall = (id, name, args) => rpc(id, 'tools/call', { name, arguments: args });
// The headers a conforming modern client sends for `body`.
export function headersFor(body, extra = {}) {
  const h = { 'mcp-protocol-version': MODERN, 'mcp-method': body.method };
  if (body.method === 'tools/call') h['mcp-name'] = body.params.name;
  return { ...h, ...extra };
}
export const post = (server, body, extra = {}) => raw(server, { headers: headersFor(body, extra), body });

export function expectResult(r, id) {
  assert.equal(r.status, 200, r.text);
  assert.equal(r.json?.id, id, r.text);
  assert.ok(r.json.result, r.text);
  assert.equal(r.json.result.resultType, 'complete');
  assert.deepEqual(r.json.result._meta?.['io.modelcontextprotocol/serverInfo']?.name, 'mcp-sandboxd');
  assert.equal(r.headers.get('mcp-session-id'), null, 'no session id in the modern era');
  return r.json.result;
}

// A modern-era tools/call with the routing headers a conforming client sends; `token` as bearer.
export async function modernTool(server, name, args, token) {
  const body = toolCall(Math.floor(Math.random() * 1e9), name, args);
  const extra = {};
  if (args.execution_id !== undefined) extra['mcp-param-execution-id'] = args.execution_id;
  if (args.workspace_id !== undefined) extra['mcp-param-workspace-id'] = args.workspace_id;
  if (token) extra.authorization = `Bearer ${token}`;
  return expectResult(await post(server, body, extra), body.id).structuredContent;
}

// Polls get_execution_output (wait, resuming after the last event) until the run ends; returns { status, text } (stdout, a line each).
export async function pollToEnd(server, id, token) {
  let last, text = '', out;
  await waitFor(async () => {
    out = await modernTool(server, 'get_execution_output', { execution_id: id, wait: true, ...(last ? { last_event_id: last } : {}) }, token);
    assert.equal(out.error, undefined, JSON.stringify(out));
    for (const e of out.output ?? []) if (e.type === 'stdout') text += `${e.data}\n`;
    if (out.last_event_id) last = out.last_event_id;
    return out.status !== 'running' && out.status !== 'pending';
  }, { what: `the end of ${id}` });
  return { status: out.status, text };
}
