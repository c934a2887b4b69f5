// Run isolation (issue 11 items 2, 5, 6): bounded read-only mounts, the
// seccomp socket allow-list and ptrace of the sandbox init, and nothing of a
// run in the host's process list. Each attack has a positive control.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { BIN, call, connect, sleep, startServer } from './helpers.mjs';

const lines = (r, type = 'stdout') => r.output.filter((e) => e.type === type).map((e) => e.data);

async function run(client, command, extra = {}) {
  const r = await call(client, 'execute_code', { command, ...extra });
  assert.ok(!r._result.isError, `execute_code failed: ${r.error}`);
  return r;
}

// Python inside the sandbox: prints OK or the errno name for each attempt.
const py = (body) => `python3 -c '${body.replace(/'/g, "'\\''")}'`;

describe('isolation', () => {
  let server, client, hostServer, hostClient;
  before(async () => {
    server = await startServer();
    ({ client } = await connect(server));
    hostServer = await startServer({ args: ['--allow-network'] });
    ({ client: hostClient } = await connect(hostServer));
  });
  after(async () => {
    await client?.close();
    await hostClient?.close();
    await server?.stop();
    await hostServer?.stop();
  });

  test('hidden paths and /dev are read-only: writing into any of them fails; the workspace and /tmp are writable', async () => {
    const home = lines(await run(client, 'pwd'))[0];
    const wsRoot = home.replace(/\/[^/]+$/, '');
    const targets = ['/home', '/root', '/run', '/var/run', '/dev', wsRoot];
    const cmd = targets.map((t) => `if echo x > ${t}/planted 2>/dev/null || mkdir ${t}/d 2>/dev/null; then echo "WROTE ${t}"; else echo "refused ${t}"; fi`).join('; ');
    const r = await run(client, cmd);
    assert.deepEqual(lines(r), targets.map((t) => `refused ${t}`), JSON.stringify(r.output));
    // control: the workspace, /tmp and /dev/shm are writable
    const ok = await run(client, 'echo a > ./f && echo b > /tmp/f && echo c > /dev/shm/f && cat ./f /tmp/f /dev/shm/f');
    assert.deepEqual(lines(ok), ['a', 'b', 'c']);
  });

  test('/tmp and /dev/shm stop at their size (max_file_size_mb), even with many files each under the file cap', async () => {
    for (const dir of ['/tmp', '/dev/shm']) {
      const r = await run(client, `for i in 1 2 3 4 5 6; do head -c 1500000 /dev/zero > ${dir}/f$i || { echo "full at $i"; break; }; done; du -sk ${dir} | cut -f1`,
        { sandbox_config: { resource_limits: { max_file_size_mb: 4 } } });
      const out = lines(r);
      assert.ok(out.some((l) => /^full at [2-4]$/.test(l)), `${dir}: ${JSON.stringify(r.output)}`);
      assert.ok(Number(out.at(-1)) <= 4200, `${dir} holds ${out.at(-1)} KiB`);
    }
    // control: under the size the same writes succeed
    const ok = await run(client, 'for i in 1 2; do head -c 1500000 /dev/zero > /tmp/f$i || echo full; done; echo done',
      { sandbox_config: { resource_limits: { max_file_size_mb: 4 } } });
    assert.deepEqual(lines(ok), ['done']);
  });

  test('socketpair(AF_UNIX, SOCK_DGRAM) is refused; a stream pair (asyncio) still works', async () => {
    const r = await run(client, py(`
import socket, errno
for t in (socket.SOCK_DGRAM,):
    try:
        socket.socketpair(socket.AF_UNIX, t); print("DGRAM-OK")
    except OSError as e: print("dgram", errno.errorcode[e.errno])
a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM); a.send(b"x"); print("stream", b.recv(1).decode())
import asyncio
async def main(): return 42
print("asyncio", asyncio.run(main()))
`));
    assert.deepEqual(lines(r), ['dgram EACCES', 'stream x', 'asyncio 42'], JSON.stringify(r.output));
  });

  test('vsock, packet and other families are refused; netlink route allowed; AF_INET only with the host network', async () => {
    const probe = py(`
import socket, errno
def t(name, *a):
    try:
        socket.socket(*a).close(); print(name, "OK")
    except OSError as e: print(name, errno.errorcode[e.errno])
t("vsock", 40, socket.SOCK_STREAM)
t("packet", socket.AF_PACKET, socket.SOCK_RAW)
t("unix", socket.AF_UNIX, socket.SOCK_STREAM)
t("netlink-route", socket.AF_NETLINK, socket.SOCK_RAW, 0)
t("netlink-audit", socket.AF_NETLINK, socket.SOCK_RAW, 9)
t("inet", socket.AF_INET, socket.SOCK_STREAM)
t("inet6", socket.AF_INET6, socket.SOCK_DGRAM)
`);
    const none = await run(client, probe);
    assert.deepEqual(lines(none), ['vsock EAFNOSUPPORT', 'packet EAFNOSUPPORT', 'unix EACCES', 'netlink-route OK',
      'netlink-audit EAFNOSUPPORT', 'inet EAFNOSUPPORT', 'inet6 EAFNOSUPPORT'], JSON.stringify(none.output));
    // control: with the host network INET and INET6 work, the rest is still refused
    const host = await run(hostClient, probe, { sandbox_config: { network: { mode: 'host' } } });
    assert.deepEqual(lines(host), ['vsock EAFNOSUPPORT', 'packet EAFNOSUPPORT', 'unix EACCES', 'netlink-route OK',
      'netlink-audit EAFNOSUPPORT', 'inet OK', 'inet6 OK'], JSON.stringify(host.output));
  });

  test('the sandbox init (PID 1) cannot be ptraced or written through /proc/1/mem; the run\'s own child can be traced', async () => {
    const r = await run(client, py(`
import ctypes, errno, os, signal, time
libc = ctypes.CDLL(None, use_errno=True)
PTRACE_ATTACH, PTRACE_DETACH, PTRACE_SEIZE = 16, 17, 0x4206
for name, req in (("attach", PTRACE_ATTACH), ("seize", PTRACE_SEIZE)):
    rc = libc.ptrace(req, 1, 0, 0)
    print(name, "OK" if rc == 0 else errno.errorcode[ctypes.get_errno()])
try:
    open("/proc/1/mem", "r+b"); print("mem OK")
except OSError as e: print("mem", errno.errorcode[e.errno])
pid = os.fork()
if pid == 0:
    time.sleep(30); os._exit(0)
rc = libc.ptrace(PTRACE_ATTACH, pid, 0, 0)
print("child", "OK" if rc == 0 else errno.errorcode[ctypes.get_errno()])
os.kill(pid, signal.SIGKILL)
`));
    const out = lines(r);
    assert.equal(out[0], 'attach EPERM', JSON.stringify(r.output));
    assert.equal(out[1], 'seize EPERM');
    assert.notEqual(out[2], 'mem OK');
    assert.equal(out[3], 'child OK', 'control: ptrace of the run\'s own child works');
  });

  test('a run\'s command and environment values are not in the host\'s process list', async () => {
    const SECRET = `envsecret${process.pid}x${Math.random().toString(36).slice(2)}`;
    const MARK = `cmdmark${Math.random().toString(36).slice(2)}`;
    const a = await call(client, 'execute_code_async', {
      command: `echo ${MARK}-ready; sleep 30 # ${MARK}`,
      environment: { API_KEY: SECRET },
    });
    assert.equal(a.status, 'running', a.error);
    try {
      // wait for the marker line: the sandbox is up and the command runs
      for (;;) {
        const o = await call(client, 'get_execution_output', { execution_id: a.execution_id, wait: false });
        if (lines(o).includes(`${MARK}-ready`)) break;
        assert.equal(o.status, 'running');
        await sleep(20);
      }
      let hits = [], sawBwrap = false;
      for (const pid of readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
        let cmdline;
        try { cmdline = readFileSync(`/proc/${pid}/cmdline`, 'latin1'); } catch { continue; }
        if (cmdline.includes(SECRET) || cmdline.includes(MARK)) hits.push(`${pid}: ${cmdline.replace(/\0/g, ' ')}`);
        if (/bwrap\0--args\0/.test(cmdline)) sawBwrap = true;
      }
      assert.deepEqual(hits, [], 'secret or command in the host\'s /proc/*/cmdline');
      assert.ok(sawBwrap, 'control: the run\'s bwrap was found in the process list');
      // control: inside the run the value is there
      const env = await run(client, 'printf %s "$API_KEY"', { environment: { API_KEY: SECRET } });
      assert.deepEqual(lines(env), [SECRET]);
    } finally {
      await call(client, 'cancel_execution', { execution_id: a.execution_id, force: true });
    }
  });
});

// Issue 11 item 4: tenants never share a host identity or a host path.
describe('tenants', () => {
  const START = 1879048192; // systemd's unused range (UIDS-GIDS.md), as in systemd/mcp-sandboxd.sysusers
  let server, a, b, shared;
  before(async () => {
    shared = mkdtempSync(path.join('/var/tmp', 'sandboxd-shared-'));
    chmodSync(shared, 0o1777);
    server = await startServer({ args: ['--uid-range', `${START}:8`, '--allow-write-root', shared] });
    a = await connect(server);
    b = await connect(server);
  });
  after(async () => {
    await a?.client.close();
    await b?.client.close();
    await server?.stop();
    rmSync(shared, { recursive: true, force: true });
  });

  test('allow_write and deny_write outside --allow-write-root are refused, naming the flag; inside it they work', async () => {
    for (const [field, p] of [['allow_write', '/var/tmp'], ['deny_write', '/etc'], ['allow_write', `${shared}x`]]) {
      const r = await call(a.client, 'execute_code', { command: 'true', sandbox_config: { filesystem: { [field]: [p] } } });
      assert.equal(r._result.isError, true, `${field} ${p} accepted`);
      assert.match(r.error, /--allow-write-root/);
    }
    const ok = await run(a.client, `echo in-root > ${shared}/ok-${process.pid} && cat ${shared}/ok-${process.pid}`,
      { sandbox_config: { filesystem: { allow_write: [shared] } } });
    assert.deepEqual(lines(ok), ['in-root']);
  });

  test('each session runs as its own uid; its workspace is owned by it, mode 0700', async () => {
    const ra = await run(a.client, 'id -u; pwd');
    const rb = await run(b.client, 'id -u; pwd');
    const [, wsA] = lines(ra);
    const [, wsB] = lines(rb);
    const sa = statSync(wsA), sb = statSync(wsB);
    assert.ok(sa.uid >= START && sa.uid < START + 8, `workspace A owned by ${sa.uid}`);
    assert.ok(sb.uid >= START && sb.uid < START + 8, `workspace B owned by ${sb.uid}`);
    assert.notEqual(sa.uid, sb.uid, 'two sessions share a host uid');
    assert.equal(sa.mode & 0o777, 0o700);
    assert.equal(sb.mode & 0o777, 0o700);
  });

  test('two sessions in one shared write root cannot read or overwrite each other\'s 0600 files; the owner can', async () => {
    const fs = { sandbox_config: { filesystem: { allow_write: [shared] } } };
    const f = `${shared}/secret-${process.pid}`;
    await run(a.client, `umask 077; echo tenant-a-secret > ${f}`, fs);
    const rb = await run(b.client, `cat ${f}; echo overwritten > ${f}; echo "rc=$?"`, fs);
    assert.ok(!JSON.stringify(rb.output).includes('tenant-a-secret'), 'session B read A\'s file');
    assert.ok(lines(rb).includes('rc=1') || lines(rb).includes('rc=2'), JSON.stringify(rb.output));
    assert.equal(readFileSync(f, 'utf8'), 'tenant-a-secret\n');
    // control: the same session reads its own file in a later run
    const ra = await run(a.client, `cat ${f}`, fs);
    assert.deepEqual(lines(ra), ['tenant-a-secret']);
  });
});

describe('uid range exhausted', () => {
  let server;
  before(async () => { server = await startServer({ args: ['--uid-range', '1879048300:1'] }); });
  after(async () => { await server?.stop(); });

  test('a session beyond the range gets a clear error; once the holder ends, its uid serves the next one', async () => {
    const first = await connect(server);
    const second = await connect(server);
    try {
      assert.deepEqual(lines(await run(first.client, 'id -u')), ['1879048300']);
      const r = await call(second.client, 'execute_code', { command: 'true' });
      assert.equal(r._result.isError, true);
      assert.match(r.error, /--uid-range/);
      await first.transport.terminateSession();
      await first.client.close();
      for (;;) { // the uid is released once the first session's state is gone
        const again = await call(second.client, 'execute_code', { command: 'id -u' });
        if (!again._result.isError) {
          assert.deepEqual(lines(again), ['1879048300']);
          break;
        }
        assert.match(again.error, /--uid-range/);
        await sleep(20);
      }
    } finally {
      await second.client.close();
    }
  });
});

// Issue 11 item 3: the workspace disk quota (measured; RLIMIT_FSIZE bounds a single file).
describe('workspace quota', () => {
  let server, client;
  before(async () => {
    server = await startServer({ args: ['--workspace-quota-mb', '8'] });
    ({ client } = await connect(server));
  });
  after(async () => {
    await client?.close();
    await server?.stop();
  });

  const diskEvents = (r) => r.output.filter((e) => e.type === 'resource_limit' && e.reason === 'disk');

  test('one 32 MB file ends with resource_limit disk; 4 MB (the control) completes', async () => {
    const ok = await run(client, 'head -c 4000000 /dev/zero > ok.bin && echo written');
    assert.equal(ok.status, 'completed', JSON.stringify(ok.output));
    assert.deepEqual(lines(ok), ['written']);
    assert.equal(diskEvents(ok).length, 0);
    const r = await run(client, 'head -c 32000000 /dev/zero > big.bin; echo after');
    assert.equal(r.status, 'failed', JSON.stringify(r.output));
    assert.equal(diskEvents(r).length, 1, JSON.stringify(r.output));
    assert.equal(r.output.at(-1).type, 'exit');
    await run(client, 'rm -f big.bin ok.bin');
  });

  test('many files under the file cap, written then exited, still end with resource_limit disk', async () => {
    const r = await run(client, 'for i in 1 2 3 4 5 6 7 8; do head -c 4000000 /dev/zero > f$i.bin; done; echo wrote-all');
    assert.equal(r.status, 'failed', JSON.stringify(r.output));
    assert.equal(diskEvents(r).length, 1, JSON.stringify(r.output));
    // a run may clean up a workspace left over the quota
    const clean = await run(client, 'rm -f f*.bin && echo cleaned');
    assert.equal(clean.status, 'completed', JSON.stringify(clean.output));
    assert.deepEqual(lines(clean), ['cleaned']);
  });

  test('a run that keeps writing is killed while it runs, long before its timeout', async () => {
    const r = await run(client, 'i=0; while :; do i=$((i+1)); head -c 1000000 /dev/zero > g$i.bin; sleep 0.05; done',
      { timeout_seconds: 600 });
    assert.equal(r.status, 'failed', JSON.stringify(r.output.slice(-3)));
    assert.equal(diskEvents(r).length, 1);
    await run(client, 'rm -f g*.bin');
  });
});

// Issue 11 item 7: host-network runs reach every loopback service, Redis included.
describe('--allow-network and Redis', () => {
  test('a passwordless TCP REDIS_URL is refused with --allow-network, saying why; a password or a unix socket is accepted', async () => {
    const r = spawnSync(BIN, ['--allow-network', '--port', '1'], { env: { PATH: process.env.PATH, REDIS_URL: 'redis://127.0.0.1:6399/0' }, encoding: 'utf8' });
    assert.equal(r.status, 2, r.stderr);
    assert.match(r.stderr, /--allow-network/);
    assert.match(r.stderr, /password/);
    // controls: the same flags with a password, or a unix socket, get past that check (and start)
    for (const url of ['redis://:pw@127.0.0.1:6399/0', 'unix:///nonexistent/redis.sock']) {
      const s = await startServer({ args: ['--allow-network'], env: { REDIS_URL: url } });
      await s.stop();
    }
    // and without --allow-network a passwordless URL is still fine
    const plain = await startServer({ env: { REDIS_URL: 'redis://127.0.0.1:6399/0' } });
    await plain.stop();
  });
});
