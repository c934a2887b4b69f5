// The production shape on one machine: scripts/cluster.sh starts redis-server,
// three replicas and nginx (ip_hash) on loopback; clients speak to nginx with
// the official SDK client. nginx's ip_hash keys on the first three octets of
// the client's IPv4 address, so each client binds its own 127.0.K.1 source
// address (all of 127/8 is loopback on Linux) to look like a distinct client.
// Checks affinity (every poll reaches the replica that runs the command), the
// Redis keys, and what happens when the owning replica is killed: its run
// becomes failed / "replica lost", and its session is adopted by a survivor,
// all through nginx.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { Agent, fetch as undiciFetch } from 'undici';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { BIN, ROOT, sessionKey, sleep, waitFor } from './helpers.mjs';

const run = promisify(execFile);
const CLUSTER = path.join(ROOT, 'scripts', 'cluster.sh');


describe('a 3-replica cluster behind nginx', () => {
  let dir, env, state, redisCli, agents = [];
  const replicas = []; // { name, port, id, log() }

  const cluster = (...args) => run(CLUSTER, args, { env, timeout: 90000 });
  const pidOf = (name) => Number(readFileSync(path.join(dir, 'pids', name), 'utf8'));

  // An SDK client whose connections come from 127.0.K.1.
  async function clientFrom(k) {
    const agent = new Agent({ localAddress: `127.0.${k}.1` });
    agents.push(agent);
    const transport = new StreamableHTTPClientTransport(new URL(state.MCP_URL), {
      fetch: (url, init) => undiciFetch(url, { ...init, dispatcher: agent }),
    });
    const client = new Client({ name: `cluster-client-${k}`, version: '1.0.0' });
    await client.connect(transport);
    return { client, transport };
  }
  const tool = async (client, name, args) => {
    const r = await client.callTool({ name, arguments: args }, undefined, { timeout: 60000 });
    return { ...r.structuredContent, _result: r };
  };
  const meta = async (id) => {
    const s = await redisCli('GET', `execution:${id}`);
    return s ? JSON.parse(s) : null;
  };
  const byId = (id) => replicas.find((r) => r.id === id);

  before(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'sandboxd-cluster-'));
    env = { ...process.env, CLUSTER_DIR: dir, SANDBOXD_BIN: BIN, CLUSTER_ARGS: '--heartbeat 1' };
    const { stdout } = await cluster('up', '3');
    assert.match(stdout, /MCP URL +http:\/\/127\.0\.0\.1:\d+\/mcp/);
    state = Object.fromEntries(readFileSync(path.join(dir, 'cluster.env'), 'utf8').trim().split('\n')
      .map((l) => l.split('=')).map(([k, v]) => [k, v.replace(/^"|"$/g, '')]));
    redisCli = async (...cmd) => (await run('redis-cli', ['-p', state.REDIS_PORT, '--raw', ...cmd.map(String)])).stdout.trim();
    const ports = state.REPLICA_PORTS.split(' ');
    for (let i = 0; i < ports.length; i++) {
      const name = `replica-${i + 1}`;
      const m = await (await fetch(`http://127.0.0.1:${ports[i]}/metrics`)).text();
      const id = m.match(/^mcp_sandboxd_build_info\{version="[^"]*",replica="([^"]*)"\} 1$/m)?.[1];
      replicas.push({ name, port: ports[i], id, log: () => readFileSync(path.join(dir, name, 'mcp-sandboxd.log'), 'utf8') });
    }
  });

  after(async () => {
    for (const a of agents) await a.close().catch(() => {});
    if (env) {
      const { stdout } = await cluster('down');
      assert.match(stdout, /down/);
      const { stdout: ps } = await run('ps', ['-eo', 'args']);
      assert.ok(!ps.split('\n').some((l) => l.includes(dir)), `processes of ${dir} left:\n${ps}`);
    }
    const logs = replicas.map((r) => r.log()).join('\n');
    if (!/ERROR: (Address|Leak|Undefined)Sanitizer|runtime error:/.test(logs)) rmSync(dir, { recursive: true, force: true });
  });

  test('every replica heartbeats into the one Redis', async () => {
    await waitFor(async () => (await redisCli('SCARD', 'replicas')) === '3', { what: '3 replicas registered' });
    for (const r of replicas) assert.equal(await redisCli('EXISTS', `replica:${r.id}`), '1');
  });

  test('each client keeps reaching one replica: every poll lands on the owner, and clients spread', async () => {
    const owners = new Set();
    for (let k = 1; k <= 6; k++) {
      const { client, transport } = await clientFrom(k);
      const sid = transport.sessionId;
      const started = await tool(client, 'execute_code_async', { command: `echo start-${k}; sleep 0.5; echo end-${k}` });
      assert.equal(started.status, 'running');
      const id = started.execution_id;
      let out;
      for (let polls = 0; ; polls++) {
        out = await tool(client, 'get_execution_output', { execution_id: id });
        // an answer from the owner's memory has no "source": "redis"
        assert.equal(out.source, undefined, `poll ${polls} of client ${k} did not reach the owner`);
        if (out.status !== 'running') break;
        await sleep(100);
      }
      assert.equal(out.status, 'completed');
      assert.deepEqual(out.output.filter((e) => e.type === 'stdout').map((e) => e.data), [`start-${k}`, `end-${k}`]);
      const m = await waitFor(async () => {
        const x = await meta(id);
        return x?.status === 'completed' ? x : null;
      }, { what: 'mirrored status' });
      const owner = byId(m.replica);
      assert.ok(owner, `replica ${m.replica} is one of ours`);
      owners.add(owner.name);
      // the session's requests appear in the owner's access log only
      const prefix = `session=${sid.slice(0, 8)}`;
      for (const r of replicas) assert.equal(r.log().includes(prefix), r === owner, `${prefix} in ${r.name}'s log`);
      // redis-cli shows the keys
      assert.equal(await redisCli('SISMEMBER', `session:${sessionKey(sid)}:executions`, id), '1');
      assert.equal(Number(await redisCli('LLEN', `execution:${id}:output`)), out.output.length);
      assert.equal(JSON.parse(await redisCli('GET', `mcp:session:${sessionKey(sid)}`)).replica, owner.id);
      await client.close();
    }
    assert.ok(owners.size >= 2, `six distinct clients spread over ${owners.size} replica(s)`);
  });

  test('killing the owner: its run becomes failed / "replica lost" and its session moves to a survivor', async () => {
    const { client, transport } = await clientFrom(21);
    const sid = transport.sessionId;
    const started = await tool(client, 'execute_code_async', { command: 'echo started; sleep 300' });
    const id = started.execution_id;
    const m = await waitFor(async () => {
      const x = await meta(id);
      return x?.status === 'running' ? x : null;
    }, { what: 'running in Redis' });
    // what the replica mirrored before it died is what survives it
    await waitFor(async () => (await redisCli('LRANGE', `execution:${id}:output`, 0, -1)).includes('"started"'),
      { what: 'first line mirrored' });
    const owner = byId(m.replica);
    process.kill(pidOf(owner.name), 'SIGKILL');
    const t0 = Date.now();
    // The same client, same session, through nginx. A request nginx had already
    // written to a kept-alive connection of the dead replica is not replayed (it is a
    // POST: nginx cannot know it did not run), so one 502 is possible, as for any client
    // whose server dies mid-request; the retry goes to a survivor (max_fails=1).
    let st, gateway = 0;
    await waitFor(async () => {
      try {
        st = await tool(client, 'get_execution_status', { execution_id: id });
      } catch (e) {
        assert.match(String(e), /502 Bad Gateway/);
        gateway++;
        return false;
      }
      return st.status !== 'running';
    }, { ms: 20000, every: 250, what: 'a final status through nginx' });
    assert.ok(gateway <= 1, `${gateway} 502 answers`);
    assert.equal(st.status, 'failed');
    assert.equal(st.error_message, 'replica lost');
    assert.ok(Date.now() - t0 < 15000, `final answer after ${Date.now() - t0} ms (heartbeat 1 s)`);
    const out = await tool(client, 'get_execution_output', { execution_id: id });
    assert.equal(out.source, 'redis');
    assert.equal(out.output.find((e) => e.type === 'stdout').data, 'started');
    assert.equal(out.output.at(-1).type, 'error');
    assert.equal(out.output.at(-1).message, 'replica lost');
    // adopted by a survivor: the record names it and its log says so
    const rec = JSON.parse(await redisCli('GET', `mcp:session:${sessionKey(sid)}`));
    const adopter = byId(rec.replica);
    assert.ok(adopter && adopter !== owner, `session now on ${rec.replica}`);
    assert.match(adopter.log(), new RegExp(`session ${sid.slice(0, 8)} adopted from replica ${owner.id}`));
    // exactly one survivor swept the lost replica
    let lost = 0;
    for (const r of replicas.filter((x) => x !== owner)) {
      const text = await (await fetch(`http://127.0.0.1:${r.port}/metrics`)).text();
      lost += Number(text.match(/^mcp_sandboxd_replicas_lost_total (\d+)$/m)[1]);
    }
    assert.equal(lost, 1);
    // and the session goes on: new runs work on the adopter
    const again = await tool(client, 'execute_code', { command: 'echo after-failover' });
    assert.equal(again.status, 'completed');
    assert.equal(again.output.find((e) => e.type === 'stdout').data, 'after-failover');
    assert.equal((await meta(again.execution_id)).replica, adopter.id);
    await client.close();
  });
});
