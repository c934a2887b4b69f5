// Containment: what a command inside the sandbox must NOT be able to do.
// Every attack below must fail inside the sandbox; where a positive control
// makes the test meaningful (the same thing works on an undenied path, or
// with the feature switched on), it is checked too.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { call, connect, sleep, startServer, waitFor } from './helpers.mjs';

// helpers.startServer gives each server a workspace root the sandbox user can reach
const start = startServer;

// Host directories the sandbox can see (/tmp is a private tmpfs inside it, so
// fixtures meant to be visible live under /var/tmp).
function visibleDir(prefix) {
  const d = mkdtempSync(path.join('/var/tmp', prefix));
  chmodSync(d, 0o755);
  return d;
}

const lines = (r, type = 'stdout') => r.output.filter((e) => e.type === type).map((e) => e.data);
const allText = (r) => r.output.map((e) => e.data ?? e.message ?? '').join('\n');

async function run(client, command, extra = {}) {
  const r = await call(client, 'execute_code', { command, ...extra });
  assert.ok(!r._result.isError, `execute_code failed: ${r.error}`);
  assert.ok(['completed', 'failed', 'timeout', 'cancelled'].includes(r.status), `status ${r.status}`);
  return r;
}

function pgrep(pattern) {
  try {
    return execFileSync('pgrep', ['-f', pattern], { encoding: 'utf8' }).split('\n').filter(Boolean).map(Number)
      .filter((p) => p !== process.pid);
  } catch {
    return [];
  }
}

async function waitNoProcesses(pattern, ms = 3000) {
  const deadline = Date.now() + ms;
  while (pgrep(pattern).length > 0) {
    if (Date.now() > deadline) assert.fail(`processes matching '${pattern}' still alive: ${pgrep(pattern).join(',')}`);
    await sleep(100);
  }
}

describe('filesystem', () => {
  let server, client, fixtures, logDir;
  const SECRET = `deny-read-secret-${process.pid}-${Date.now()}`;
  const SECRET2 = `config-deny-secret-${process.pid}-${Date.now()}`;
  before(async () => {
    fixtures = visibleDir('sandboxd-sec-');
    writeFileSync(path.join(fixtures, 'denied.txt'), `${SECRET}\n`, { mode: 0o644 });
    writeFileSync(path.join(fixtures, 'open.txt'), 'readable\n', { mode: 0o644 });
    writeFileSync(path.join(fixtures, 'config-denied.txt'), `${SECRET2}\n`, { mode: 0o644 });
    execFileSync('mkdir', ['-p', path.join(fixtures, 'denied-dir')]);
    writeFileSync(path.join(fixtures, 'denied-dir', 'inner.txt'), `${SECRET}-inner\n`, { mode: 0o644 });
    chmodSync(path.join(fixtures, 'denied-dir'), 0o755);
    // a log file that file permissions alone would not protect
    logDir = visibleDir('sandboxd-log-');
    writeFileSync(path.join(logDir, 'server.log'), '', { mode: 0o644 });
    chmodSync(path.join(logDir, 'server.log'), 0o644);
    server = await start({
      args: ['--deny-read', `${path.join(fixtures, 'denied.txt')},${path.join(fixtures, 'denied-dir')}`,
        '--log-file', path.join(logDir, 'server.log'), '--log-level', 'debug', '--allow-write-root', '/var/tmp'],
    });
    ({ client } = await connect(server));
  });
  after(async () => {
    await client?.close();
    await server?.stop();
    rmSync(fixtures, { recursive: true, force: true });
    rmSync(logDir, { recursive: true, force: true });
  });

  test('writing outside the workspace fails', async () => {
    const tag = `sandboxd-x-${process.pid}`;
    for (const target of [`/etc/${tag}`, `/usr/${tag}`, `/${tag}`, `/var/tmp/${tag}`, `${fixtures}/${tag}`]) {
      const r = await run(client, `touch ${target}`);
      assert.notEqual(r.exit_code, 0, `touch ${target} succeeded`);
      assert.match(allText(r), /Read-only file system|Permission denied/);
      assert.ok(!existsSync(target), `${target} appeared on the host`);
    }
    const r = await run(client, `echo x >> /etc/passwd`);
    assert.notEqual(r.exit_code, 0);
    // control: the workspace is writable
    const ok = await run(client, `touch ./${tag} && echo ok`);
    assert.deepEqual(lines(ok), ['ok']);
  });

  test('/etc/shadow cannot be read', async () => {
    const r = await run(client, 'cat /etc/shadow; echo "rc=$?"; wc -c < /etc/shadow');
    assert.ok(!/^root:/m.test(allText(r)), 'shadow content leaked');
    const rc = lines(r).find((l) => l.startsWith('rc='));
    const size = lines(r).at(-1);
    // either reading fails, or the file is an empty stand-in
    assert.ok(rc !== 'rc=0' || size === '0', `read /etc/shadow: ${JSON.stringify(r.output)}`);
    const g = await run(client, 'cat /etc/gshadow 2>&1 | head -c 200');
    assert.ok(!/^root:/m.test(allText(g)));
  });

  test('--deny-read paths cannot be read (file and directory); an undenied sibling can', async () => {
    const ctl = await run(client, `cat ${fixtures}/open.txt`);
    assert.deepEqual(lines(ctl), ['readable'], 'control: the fixture directory is visible');
    const r = await run(client, `cat ${fixtures}/denied.txt; echo "rc=$?"`);
    assert.ok(!allText(r).includes(SECRET), 'denied file leaked');
    assert.ok(lines(r).filter((l) => !l.startsWith('rc=')).length === 0 || !lines(r).includes('rc=0'));
    const d = await run(client, `cat ${fixtures}/denied-dir/inner.txt; echo "rc=$?"`);
    assert.ok(!allText(d).includes(SECRET), 'denied directory leaked');
    assert.ok(!lines(d).includes('rc=0'), 'reading inside the denied directory failed');
    const ls = await run(client, `ls -A ${fixtures}/denied-dir`);
    assert.deepEqual(lines(ls), [], 'the denied directory looks empty');
    // other ways of reaching the same file
    const alt = await run(client, `cat ${fixtures}/./denied.txt ${fixtures}//denied.txt 2>&1; ` +
      `cd ${fixtures} && cat denied.txt; ln -s ${fixtures}/denied.txt $HOME/l && cat $HOME/l; cp ${fixtures}/denied.txt $HOME/c && cat $HOME/c`);
    assert.ok(!allText(alt).includes(SECRET), 'denied file leaked through another path');
  });

  test('sandbox_config.filesystem.deny_read paths cannot be read', async () => {
    const ctl = await run(client, `cat ${fixtures}/config-denied.txt`);
    assert.deepEqual(lines(ctl), [SECRET2], 'control: readable when not denied');
    const r = await run(client, `cat ${fixtures}/config-denied.txt; echo "rc=$?"`, {
      sandbox_config: { filesystem: { deny_read: [`${fixtures}/config-denied.txt`] } },
    });
    assert.ok(!allText(r).includes(SECRET2), 'config deny_read file leaked');
    const cc = await run(client, `cat ${fixtures}/config-denied.txt`, {
      sandbox_config: { filesystem: { denyRead: [fixtures] } },
    });
    assert.ok(!allText(cc).includes(SECRET2), 'config deny_read (camelCase, directory) leaked');
    assert.notEqual(cc.exit_code, 0);
  });

  test('--deny-read wins over sandbox_config.filesystem.allow_write', async () => {
    const r = await run(client, `cat ${fixtures}/denied.txt ${fixtures}/denied-dir/inner.txt`, {
      sandbox_config: { filesystem: { allow_write: [fixtures] } },
    });
    assert.ok(!allText(r).includes(SECRET));
  });

  test('the server\'s log file is not readable', async () => {
    const logFile = path.join(logDir, 'server.log');
    assert.ok(readFileSync(logFile, 'utf8').includes('listening'), 'control: the log has content');
    const r = await run(client, `cat ${logFile}; echo "rc=$?"; cat ${logDir}/*`);
    assert.ok(!allText(r).includes('listening'), 'log content leaked');
    assert.ok(!allText(r).includes('execution '), 'log content leaked');
  });

  test('another session\'s workspace is not visible', async () => {
    const { client: other } = await connect(server);
    try {
      const a = await run(client, `echo ws-secret-${process.pid} > mine.txt; pwd`);
      const home = lines(a).at(-1);
      const b = await run(other, `cat ${home}/mine.txt; ls -A ${path.dirname(home)}; echo pwned > ${home}/planted; echo "rc=$?"`);
      assert.ok(!allText(b).includes(`ws-secret-${process.pid}`), 'read another session\'s file');
      assert.ok(!existsSync(`${home}/planted`), 'wrote into another session\'s workspace');
    } finally {
      await other.close();
    }
  });

  // allow_write binds are mounted after the mounts that hide other sessions'
  // workspaces and the log file, so they must not be able to undo them.
  test('sandbox_config.filesystem.allow_write cannot re-expose hidden paths', async () => {
    const { client: other } = await connect(server);
    try {
      const a = await run(client, `echo ws-secret2-${process.pid} > mine2.txt; pwd`);
      const home = lines(a).at(-1);
      const wsRoot = path.dirname(home);
      const b = await call(other, 'execute_code', {
        command: `cat ${home}/mine2.txt; echo pwned > ${home}/planted2; cat ${path.join(logDir, 'server.log')} | head -3`,
        sandbox_config: { filesystem: { allow_write: [wsRoot, logDir] } },
      });
      // refusing the request is fine too
      if (!b._result.isError) {
        assert.ok(!allText(b).includes(`ws-secret2-${process.pid}`), `session B read session A's workspace through allow_write [${wsRoot}]`);
        assert.ok(!existsSync(`${home}/planted2`), 'session B wrote into session A\'s workspace through allow_write');
        assert.ok(!allText(b).includes('listening'), 'log file exposed through allow_write of its directory');
      }
    } finally {
      await other.close();
    }
  });

  // a run can plant symlinks in its own workspace; naming them in a later call's
  // sandbox_config must not bind what they point to (host /proc, /dev/shm...)
  test('sandbox_config write paths that go through a symlink are refused', async () => {
    const a = await run(client, 'ln -sfn ../../../../../../proc p; ln -sfn /dev/shm shm; pwd');
    const home = lines(a).at(-1);
    for (const [field, p] of [['deny_write', `${home}/p`], ['allow_write', `${home}/shm`]]) {
      const r = await call(client, 'execute_code', {
        command: 'cat /proc/1/cmdline 2>/dev/null | tr "\\0" " "; ls p shm 2>/dev/null | head -3',
        sandbox_config: { filesystem: { [field]: [p] } },
      });
      assert.equal(r._result.isError, true, `${field} ${p} was accepted: ${JSON.stringify(r.output)}`);
      assert.match(r.error, /symbolic link/);
    }
  });

  test('deny_write inside the workspace makes that path read-only', async () => {
    const a = await run(client, 'mkdir -p keep && echo original > keep/f; pwd');
    const home = lines(a).at(-1);
    const r = await call(client, 'execute_code', {
      command: 'echo changed > keep/f; echo new > keep/g; cat keep/f; echo ok > other.txt && echo other-written',
      sandbox_config: { filesystem: { deny_write: [`${home}/keep`] } },
    });
    assert.deepEqual(lines(r), ['original', 'other-written']);
  });

  test('a detached background process does not outlive its run', async () => {
    const marker = 7000 + Math.floor(Math.random() * 50000);
    const r = await run(client, `(setsid sleep ${marker} > /dev/null 2>&1 &); (nohup sleep ${marker} > /dev/null 2>&1 &); echo started`);
    assert.deepEqual(lines(r), ['started']);
    await waitNoProcesses(`sleep ${marker}`, 3000);
  });
});

describe('network', () => {
  let server, client, sockDir;
  before(async () => {
    server = await start();
    ({ client } = await connect(server));
    sockDir = visibleDir('sandboxd-sock-');
  });
  after(async () => {
    await client?.close();
    await server?.stop();
    rmSync(sockDir, { recursive: true, force: true });
  });

  test('python3 is available in the sandbox', async () => {
    const r = await run(client, 'command -v python3 && python3 -c "print(6*7)"');
    assert.equal(r.exit_code, 0);
    assert.equal(lines(r).at(-1), '42');
  });

  test('no TCP connection to the host (the server\'s own port)', async () => {
    const r = await run(client, `bash -c 'exec 3<>/dev/tcp/127.0.0.1/${server.port} && echo CONNECTED'`);
    assert.notEqual(r.exit_code, 0);
    assert.ok(!lines(r).includes('CONNECTED'));
    const p = await run(client, `python3 -c "import socket;s=socket.create_connection(('127.0.0.1', ${server.port}), timeout=3);print('CONNECTED')"`);
    assert.notEqual(p.exit_code, 0);
    assert.ok(!lines(p).includes('CONNECTED'));
    const ext = await run(client, `python3 -c "import socket;s=socket.create_connection(('1.1.1.1', 53), timeout=3);print('CONNECTED')"`);
    assert.notEqual(ext.exit_code, 0);
    assert.ok(!lines(ext).includes('CONNECTED'));
  });

  test('no connection to a host unix socket', async () => {
    let connections = 0;
    const socks = [`/tmp/sandboxd-test-${process.pid}.sock`, path.join(sockDir, 'visible.sock')];
    const servers = [];
    try {
      for (const s of socks) {
        rmSync(s, { force: true });
        const srv = net.createServer((c) => { connections++; c.on('error', () => {}); c.end('hello\n'); });
        await new Promise((resolve, reject) => { srv.once('error', reject); srv.listen(s, resolve); });
        chmodSync(s, 0o777);
        servers.push(srv);
      }
      // control: the sockets accept connections on the host
      for (const s of socks) {
        await new Promise((resolve, reject) => { const c = net.connect(s, () => { c.destroy(); resolve(); }); c.on('error', reject); });
      }
      await waitFor(() => connections === socks.length, { what: 'the control connections to be accepted' });
      const before = connections;
      for (const s of socks) {
        const r = await run(client, `python3 -c "import socket;s=socket.socket(socket.AF_UNIX);s.connect('${s}');print('CONNECTED', s.recv(10))"`);
        assert.notEqual(r.exit_code, 0, `connected to ${s}`);
        assert.ok(!allText(r).includes('CONNECTED'));
        const n = await run(client, `python3 -c "import socket;s=socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM);s.sendto(b'x', '${s}');print('SENT')"`);
        assert.notEqual(n.exit_code, 0);
      }
      // a marker connection per socket, accepted after anything the sandbox's attempts queued (FIFO)
      for (const s of socks) {
        await new Promise((resolve, reject) => { const c = net.connect(s, () => { c.destroy(); resolve(); }); c.on('error', reject); });
      }
      await waitFor(() => connections >= before + socks.length, { what: 'the marker connections to be accepted' });
      assert.equal(connections, before + socks.length, 'the host socket saw a connection from the sandbox');
    } finally {
      for (const srv of servers) await new Promise((r) => srv.close(r));
      for (const s of socks) rmSync(s, { force: true });
    }
  });

  test('network mode host is refused without --allow-network', async () => {
    const r = await call(client, 'execute_code', { command: 'echo hi', sandbox_config: { network: { mode: 'host' } } });
    assert.equal(r._result.isError, true);
    assert.equal(r.status, 'failed');
    assert.match(r.error, /host/);
    assert.match(r.error, /allow-network/);
    const a = await call(client, 'execute_code_async', { command: 'echo hi', sandbox_config: { network: { mode: 'host' } } });
    assert.equal(a._result.isError, true);
    const bad = await call(client, 'execute_code', { command: 'echo hi', sandbox_config: { network: { mode: 'bridge' } } });
    assert.equal(bad._result.isError, true);
    assert.match(bad.error, /mode/);
  });

  test('domain lists that cannot be honoured are refused with a clear error (egress.test.mjs covers the rest)', async () => {
    for (const sc of [{ network: { allowed_domains: 'example.com' } }, { network: { allowedDomains: ['exa mple.com'] } },
      { network: { mode: 'none', allowed_domains: ['example.com'] } }]) {
      const r = await call(client, 'execute_code', { command: 'echo hi', sandbox_config: sc });
      assert.equal(r._result.isError, true, JSON.stringify(sc));
      assert.match(r.error, /allowed_domains|allowedDomains/);
    }
    // denials alone ask for no network, as before
    const d = await run(client, 'echo hi', { sandbox_config: { network: { mode: 'none', denied_domains: ['evil.example'] } } });
    assert.deepEqual(lines(d), ['hi']);
  });

  test('control: with --allow-network, mode host reaches the host', async () => {
    const open = await start({ args: ['--allow-network'] });
    const { client: c } = await connect(open);
    try {
      const r = await run(c, `python3 -c "import socket;s=socket.create_connection(('127.0.0.1', ${open.port}), timeout=3);print('CONNECTED')"`,
        { sandbox_config: { network: { mode: 'host' } } });
      assert.deepEqual(lines(r), ['CONNECTED']);
      // and the default is still no network
      const d = await run(c, `python3 -c "import socket;s=socket.create_connection(('127.0.0.1', ${open.port}), timeout=3);print('CONNECTED')"`);
      assert.notEqual(d.exit_code, 0);
    } finally {
      await c.close();
      await open.stop();
    }
  });
});

describe('secrets', () => {
  const TOKEN = `flag-token-${process.pid}-${Math.random().toString(36).slice(2)}`;
  const ENV_TOKEN = `env-token-${process.pid}-${Math.random().toString(36).slice(2)}`;
  const REDIS_PW = `redispw${Math.random().toString(36).slice(2)}`;
  let server, client;
  before(async () => {
    server = await start({
      token: TOKEN,
      env: { SANDBOX_AUTH_TOKEN: ENV_TOKEN, REDIS_URL: `redis://:${REDIS_PW}@127.0.0.1:1/0` },
    });
    ({ client } = await connect(server, { token: TOKEN }));
  });
  after(async () => {
    await client?.close();
    await server?.stop();
  });

  test('the token and Redis password are not visible through env or /proc', async () => {
    const cmds = [
      'env',
      'cat /proc/self/environ | tr "\\0" "\\n"',
      'for f in /proc/*/environ; do cat "$f" 2>/dev/null | tr "\\0" "\\n"; done',
      'for f in /proc/*/cmdline; do cat "$f" 2>/dev/null | tr "\\0" " "; echo; done',
      'cat /proc/*/environ /proc/*/cmdline 2>/dev/null | tr "\\0" "\\n"',
      'ps -ef 2>/dev/null || true',
      'cat /proc/1/environ /proc/1/cmdline /proc/$PPID/environ 2>&1 | tr "\\0" "\\n"',
    ];
    let sawBwrap = false;
    for (const command of cmds) {
      for (const extra of [{}, { interactive: true }]) {
        const r = await call(client, extra.interactive ? 'execute_code_async' : 'execute_code', { command, ...extra });
        assert.ok(!r._result.isError, r.error);
        const done = extra.interactive
          ? await call(client, 'get_execution_output', { execution_id: r.execution_id, wait: true })
          : r;
        const text = JSON.stringify(done);
        for (const secret of [TOKEN, ENV_TOKEN, REDIS_PW]) {
          assert.ok(!text.includes(secret), `'${command}' shows a secret`);
        }
        if (text.includes('bwrap')) sawBwrap = true;
      }
    }
    assert.ok(sawBwrap, 'control: process command lines inside the sandbox were readable');
    // and the log does not hold them either
    assert.ok(!server.log().includes(TOKEN) && !server.log().includes(ENV_TOKEN) && !server.log().includes(REDIS_PW));
  });
});

describe('resource limits', () => {
  let server, client;
  before(async () => {
    server = await start({ args: ['--kill-grace-ms', '500'] });
    ({ client } = await connect(server));
  });
  after(async () => {
    await client?.close();
    await server?.stop();
  });

  test('a fork bomb under max_processes 20 fails or times out; the server stays healthy', async () => {
    const marker = `bomb${process.pid}x${Math.floor(Math.random() * 1e6)}`;
    const r = await call(client, 'execute_code', {
      command: `bash -c ':(){ :|:& };:; sleep 30 # ${marker}'`,
      timeout_seconds: 5,
      sandbox_config: { resource_limits: { max_processes: 20 } },
    });
    assert.ok(!r._result.isError, r.error);
    assert.ok(r.status === 'timeout' || r.status === 'failed' || r.exit_code !== 0, `status ${r.status}`);
    assert.equal(r.output.at(-1).type, 'exit');
    assert.deepEqual(await client.ping(), {});
    await waitNoProcesses(marker, 3000);
    const e = await run(client, 'echo after-bomb');
    assert.deepEqual(lines(e), ['after-bomb']);
  });

  // max_processes is a per-run limit: processes of another session's run must
  // not count against it (nor stop this run from starting at all).
  test('another session\'s processes do not count against this run\'s max_processes', async () => {
    const { client: other } = await connect(server);
    try {
      const busy = await call(other, 'execute_code_async', { command: 'for i in $(seq 30); do sleep 60 & done; echo spawned; wait' });
      assert.equal(busy.status, 'running', busy.error);
      const deadline = Date.now() + 5000;
      for (;;) {
        const o = await call(other, 'get_execution_output', { execution_id: busy.execution_id });
        if (lines(o).includes('spawned')) break;
        assert.ok(Date.now() < deadline, 'the busy run did not start its processes');
        await sleep(50);
      }
      try {
        const r = await call(client, 'execute_code', {
          command: 'echo one; (echo two); echo three | cat',
          sandbox_config: { resource_limits: { max_processes: 20 } },
        });
        assert.ok(!r._result.isError, r.error);
        assert.equal(r.status, 'completed', `a run with max_processes 20 failed while another session had 30 processes: ${JSON.stringify(r.output)}`);
        assert.deepEqual(lines(r), ['one', 'two', 'three']);
      } finally {
        await call(other, 'cancel_execution', { execution_id: busy.execution_id, force: true });
        await call(other, 'get_execution_output', { execution_id: busy.execution_id, wait: true });
      }
    } finally {
      await other.close();
    }
  });

  test('a memory bomb under max_memory_mb 64 fails', async () => {
    const r = await run(client, "python3 -c 'x=bytearray(512*1024*1024); print(\"ALLOCATED\")'", {
      sandbox_config: { resource_limits: { max_memory_mb: 64 } },
    });
    assert.ok(r.exit_code !== 0 || r.output.some((e) => e.type === 'resource_limit'), JSON.stringify(r.output));
    assert.ok(!lines(r).includes('ALLOCATED'));
    // control: without the small limit the same allocation works
    const ok = await run(client, "python3 -c 'x=bytearray(128*1024*1024); print(\"ALLOCATED\")'");
    assert.deepEqual(lines(ok), ['ALLOCATED']);
  });

  test('a CPU loop under max_cpu_seconds 1 gives a cpu_time resource_limit event', async () => {
    // ended by RLIMIT_CPU, not by the (generous: a loaded machine may take long to give 1 s of CPU) timeout
    const r = await run(client, 'while :; do :; done', { sandbox_config: { resource_limits: { max_cpu_seconds: 1 } }, timeout_seconds: 120 });
    assert.notEqual(r.status, 'timeout', JSON.stringify(r.output));
    const rl = r.output.filter((e) => e.type === 'resource_limit');
    assert.equal(rl.length, 1, JSON.stringify(r.output));
    assert.equal(rl[0].reason, 'cpu_time');
    assert.notEqual(r.status, 'completed');
    assert.equal(r.output.at(-1).type, 'exit');
  });

  test('a file over max_file_size_mb gives a file_size resource_limit event', async () => {
    const r = await run(client, 'head -c 3000000 /dev/zero > big.bin', { sandbox_config: { resource_limits: { max_file_size_mb: 1 } } });
    assert.notEqual(r.exit_code, 0);
    const rl = r.output.filter((e) => e.type === 'resource_limit');
    assert.equal(rl.length, 1, JSON.stringify(r.output));
    assert.equal(rl[0].reason, 'file_size');
    const size = await run(client, 'wc -c < big.bin');
    assert.ok(Number(lines(size)[0]) <= 1024 * 1024);
  });

  test('limits above the server caps are refused', async () => {
    for (const [k, v] of [['max_processes', 1e6], ['max_memory_mb', 1e7], ['max_cpu_seconds', 1e6], ['max_file_size_mb', 1e7]]) {
      const r = await call(client, 'execute_code', { command: 'echo', sandbox_config: { resource_limits: { [k]: v } } });
      assert.equal(r._result.isError, true, k);
      assert.match(r.error, new RegExp(k));
    }
  });
});
