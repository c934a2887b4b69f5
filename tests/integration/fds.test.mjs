// Descriptors: no socket or pipe of the server reaches a run. Every fd the
// running server holds (listener, Redis connections of the mirror's writer,
// reader and replica watcher, pipes, eventfds) is close-on-exec, and a run,
// sandboxed or not, sees only its stdin, stdout and stderr, with Redis
// connected (hiredis 0.14 opens its sockets without SOCK_CLOEXEC).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync, readlinkSync } from 'node:fs';
import { call, connect, metric, sleep, startRedis, startServer, waitFor } from './helpers.mjs';

const O_CLOEXEC = 0o2000000;


// The server's three Redis connections are up: the writer says so in /metrics,
// the watcher's heartbeat key exists, and a cross-replica read went through the reader.
async function redisConnected(server, redis, replicaId) {
  await waitFor(async () => (await metric(server, 'redis_up')) === 1, { what: 'writer connected' });
  await waitFor(async () => (await redis.acli('EXISTS', `replica:${replicaId}`)) === '1', { what: 'watcher heartbeat' });
}

// Lists the fds of the shell that runs the command, with what each points to
// (ls is a child, but $$ names the shell; no command substitution, which would add a pipe).
const LIST = 'ls -l /proc/$$/fd';
// The sandboxed shell reads its command from a script file bwrap copied in: that fd is its own.
const SCRIPT = /^\/dev\/\.mcp-sandboxd-run( \(deleted\))?$/;

const stdout = (r) => (r.output ?? []).filter((e) => e.type === 'stdout').map((e) => e.data);

// A read of an execution this replica does not hold goes through the reader
// thread, which opens its connection on its first read.
const touchReader = (client) =>
  client.callTool({ name: 'get_execution_status', arguments: { execution_id: 'f'.repeat(32) } }).catch(() => {});

async function runFds(server) {
  const { client } = await connect(server);
  await touchReader(client);
  const r = await call(client, 'execute_code', { command: LIST });
  await client.close();
  assert.equal(r.exit_code, 0, JSON.stringify(r));
  return stdout(r).map((l) => / (\d+) -> (.*)$/.exec(l)).filter((m) => m && !SCRIPT.test(m[2]))
    .map((m) => Number(m[1])).sort((a, b) => a - b);
}

// fds of `pid` with their fdinfo flags and what they point to.
function serverFds(pid) {
  return readdirSync(`/proc/${pid}/fd`).map((fd) => {
    let info = '', target = '';
    try {
      info = readFileSync(`/proc/${pid}/fdinfo/${fd}`, 'utf8');
      target = readlinkSync(`/proc/${pid}/fd/${fd}`);
    } catch { return null; } // closed meanwhile
    const flags = parseInt(/^flags:\s+([0-7]+)/m.exec(info)[1], 8);
    return { fd: Number(fd), flags, target };
  }).filter(Boolean);
}

describe('descriptors with Redis connected', () => {
  let redis, server, bare;
  before(async () => {
    redis = await startRedis();
    server = await startServer({ env: { REDIS_URL: redis.url }, args: ['--replica-id', 'fd-a', '--heartbeat', '1'] });
    bare = await startServer({ env: { REDIS_URL: redis.url }, args: ['--replica-id', 'fd-b', '--heartbeat', '1', '--isolation', 'none'] });
    await redisConnected(server, redis, 'fd-a');
    await redisConnected(bare, redis, 'fd-b');
  });
  after(async () => {
    await server?.stop();
    await bare?.stop();
    await redis?.stop();
  });

  test('a sandboxed run sees only 0, 1 and 2', async () => {
    assert.deepEqual(await runFds(server), [0, 1, 2]);
  });

  test('a run without the sandbox (--isolation none) sees only 0, 1 and 2', async () => {
    assert.deepEqual(await runFds(bare), [0, 1, 2]);
  });

  test('every fd of the running server is close-on-exec (Redis sockets, listener, pipes)', async () => {
    for (const s of [server, bare]) {
      // a run in flight: its pipes are open in the server while we look
      const { client } = await connect(s);
      await touchReader(client);
      const r = await call(client, 'execute_code_async', { command: 'echo up; sleep 300' });
      await waitFor(async () => stdout(await call(client, 'get_execution_output', { execution_id: r.execution_id })).includes('up'),
        { what: 'run started' });
      const fds = serverFds(s.proc.pid);
      const sockets = fds.filter((f) => f.target.startsWith('socket:'));
      // the listener and the 3 Redis connections (writer, reader, watcher) at least
      assert.ok(sockets.length >= 4, `sockets: ${JSON.stringify(fds)}`);
      assert.ok(fds.some((f) => f.target.startsWith('pipe:')), `pipes: ${JSON.stringify(fds)}`);
      // descriptors inherited from the test runner included: the server marks them at startup
      const open = fds.filter((f) => f.fd > 2 && !(f.flags & O_CLOEXEC));
      assert.deepEqual(open, [], `fds without O_CLOEXEC in ${s.proc.pid}`);
      await call(client, 'cancel_execution', { execution_id: r.execution_id });
      await client.close();
    }
  });
});
