// Deployment files and the local cluster: nginx -t on the production example
// and on the template scripts/cluster.sh renders, systemd-analyze verify on the
// units, then a real cluster (redis + 3 replicas + nginx) driven through nginx
// by the official SDK client: a run, Host rewriting, /metrics and 404s,
// status, failover past a killed replica, and a down that leaves nothing behind.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { BIN, ROOT, call, connect } from './helpers.mjs';

const CLUSTER = path.join(ROOT, 'scripts/cluster.sh');
const NGINX_DIR = path.join(ROOT, 'nginx');
const SYSTEMD_DIR = path.join(ROOT, 'systemd');

// nginx and systemd-analyze live in /usr/sbin and /usr/bin; a non-root PATH may lack /usr/sbin
const PATH = `${process.env.PATH}:/usr/sbin:/sbin`;
const which = (cmd) => {
  try {
    return execFileSync('sh', ['-c', `command -v ${cmd}`], { encoding: 'utf8', env: { PATH } }).trim();
  } catch {
    return null;
  }
};

// Runs a command; resolves { code, stdout, stderr } whatever its exit status.
function run(file, args, { env = {}, cwd, timeout = 60000 } = {}) {
  return new Promise((resolve) => {
    execFile(file, args, { env: { ...process.env, PATH, ...env }, cwd, timeout, encoding: 'utf8' }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : -1) : 0, stdout, stderr });
    });
  });
}

// nginx -t with every path in `dir` (no root needed).
async function nginxTest(conf, dir) {
  const r = await run(which('nginx') ?? 'nginx', ['-t', '-p', `${dir}/`, '-c', conf, '-e', path.join(dir, 'error.log')]);
  assert.equal(r.code, 0, `nginx -t ${conf}:\n${r.stderr}`);
  assert.match(r.stderr, /test is successful/);
}

// The text between the "shared proxy settings" markers, indentation aside.
const sharedBlock = (file) => {
  const text = readFileSync(file, 'utf8');
  const m = text.match(/# --- shared proxy settings[^\n]*\n([\s\S]*?)# --- end of shared proxy settings ---/);
  assert.ok(m, `no shared proxy settings block in ${file}`);
  return m[1].split('\n').map((l) => l.trim()).join('\n');
};

describe('nginx configuration', () => {
  test('the production example passes nginx -t (inside a wrapper nginx.conf)', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'ops-nginx-'));
    try {
      mkdirSync(path.join(dir, 'tmp'));
      const wrapper = path.join(dir, 'nginx.conf');
      // what Debian's /etc/nginx/nginx.conf gives a conf.d file: an http{} context
      writeFileSync(wrapper, `pid ${dir}/nginx.pid;
error_log ${dir}/error.log;
events {}
http {
    access_log ${dir}/access.log;
    client_body_temp_path ${dir}/tmp/client_body;
    proxy_temp_path ${dir}/tmp/proxy;
    fastcgi_temp_path ${dir}/tmp/fastcgi;
    uwsgi_temp_path ${dir}/tmp/uwsgi;
    scgi_temp_path ${dir}/tmp/scgi;
    include ${NGINX_DIR}/mcp-sandboxd.conf;
}
`);
      await nginxTest(wrapper, dir);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('the template and the production example share the same proxy settings', () => {
    assert.equal(sharedBlock(path.join(NGINX_DIR, 'mcp-sandboxd.conf.in')), sharedBlock(path.join(NGINX_DIR, 'mcp-sandboxd.conf')));
  });

  test('the proxy settings the deployment depends on', () => {
    const block = sharedBlock(path.join(NGINX_DIR, 'mcp-sandboxd.conf'));
    for (const line of ['proxy_set_header Host localhost;', 'proxy_http_version 1.1;', 'proxy_set_header Connection "";',
      'client_max_body_size 4m;', 'proxy_buffering off;', 'proxy_read_timeout 120s;', 'proxy_send_timeout 120s;']) {
      assert.ok(block.includes(line), `missing: ${line}`);
    }
    assert.doesNotMatch(block, /^proxy_hide_header/im, 'Mcp-Session-Id must not be hidden');
    assert.doesNotMatch(block, /non_idempotent/, 'a POST must never be replayed on another replica');
    const prod = readFileSync(path.join(NGINX_DIR, 'mcp-sandboxd.conf'), 'utf8');
    assert.match(prod, /upstream mcp_sandboxd \{\s*(#[^\n]*\n\s*)*ip_hash;/);
  });
});

describe('systemd units', () => {
  const analyze = which('systemd-analyze');

  // systemd-analyze verify fails when ExecStart's binary does not exist, so
  // the units are verified as copies whose ExecStart names the binary under test.
  test('systemd-analyze verify passes on the units (ExecStart pointed at the built binary)', { skip: !analyze && 'systemd-analyze is not installed' }, async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'ops-systemd-'));
    try {
      const unit = readFileSync(path.join(SYSTEMD_DIR, 'mcp-sandboxd@.service'), 'utf8');
      assert.match(unit, /^ExecStart=\/usr\/local\/bin\/mcp-sandboxd /m);
      writeFileSync(path.join(dir, 'mcp-sandboxd@.service'), unit.replace('ExecStart=/usr/local/bin/mcp-sandboxd ', `ExecStart=${BIN} `));
      copyFileSync(path.join(SYSTEMD_DIR, 'mcp-sandboxd.target'), path.join(dir, 'mcp-sandboxd.target'));
      const r = await run(analyze, ['verify', './mcp-sandboxd@8081.service', './mcp-sandboxd.target'], { cwd: dir });
      assert.equal(r.code, 0, r.stdout + r.stderr);
      // verify exits 0 on unknown keys and bad values (it only warns): any message is a failure
      assert.equal((r.stdout + r.stderr).trim(), '', `systemd-analyze verify complained:\n${r.stdout}${r.stderr}`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('the unit keeps what bwrap needs', () => {
    const unit = readFileSync(path.join(SYSTEMD_DIR, 'mcp-sandboxd@.service'), 'utf8');
    const set = (key) => unit.split('\n').filter((l) => l.startsWith(`${key}=`)).map((l) => l.slice(key.length + 1));
    // overmounts under /proc forbid the new procfs every sandbox mounts
    for (const key of ['ProtectKernelTunables', 'ProtectKernelLogs', 'ProtectProc', 'ProcSubset', 'ProtectHostname', 'PrivateUsers', 'MemoryDenyWriteExecute']) {
      assert.deepEqual(set(key), [], `${key}= breaks sandboxes (see the comment in the unit)`);
    }
    const ns = set('RestrictNamespaces').join(' ').split(/\s+/);
    for (const n of ['user', 'pid', 'net', 'ipc', 'uts', 'mnt', 'cgroup']) assert.ok(ns.includes(n), `RestrictNamespaces lacks ${n}`);
    const af = set('RestrictAddressFamilies').join(' ').split(/\s+/);
    for (const f of ['AF_UNIX', 'AF_INET', 'AF_INET6', 'AF_NETLINK']) assert.ok(af.includes(f), `RestrictAddressFamilies lacks ${f}`);
    for (const f of set('SystemCallFilter')) assert.match(f, /^~/, 'SystemCallFilter must stay a deny list');
    assert.match(unit, /^ExecStart=.* --port %i .*--replica-id %H:%i/m);
    assert.match(unit, /^EnvironmentFile=\/etc\/mcp-sandboxd\/env$/m);
    assert.match(unit, /^PartOf=mcp-sandboxd\.target$/m);
    assert.match(unit, /^WantedBy=mcp-sandboxd\.target$/m);
  });

  test('the sysusers file creates the service user', { skip: !which('systemd-sysusers') && 'systemd-sysusers is not installed' }, async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'ops-sysusers-'));
    try {
      mkdirSync(path.join(dir, 'etc'));
      const r = await run(which('systemd-sysusers'), [`--root=${dir}`, path.join(SYSTEMD_DIR, 'mcp-sandboxd.sysusers')]);
      assert.equal(r.code, 0, r.stderr);
      assert.match(readFileSync(path.join(dir, 'etc/passwd'), 'utf8'), /^mcp-sandboxd:x:\d+:\d+:[^:]*:\/var\/lib\/mcp-sandboxd:\/usr\/sbin\/nologin$/m);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

// GET/POST over node:http, which (unlike fetch) lets a test choose the Host header.
function request(url, { method = 'GET', headers = {}, body } = {}) {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method, headers }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d) => { text += d; });
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, text }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

const INIT = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'ops', version: '1' } } });
const MCP_HEADERS = { 'content-type': 'application/json', accept: 'application/json, text/event-stream' };

// Live (non-zombie) pids among `pids`.
const liveOf = (pids) => pids.filter((p) => {
  try {
    return readFileSync(`/proc/${p}/stat`, 'utf8').replace(/^.*\) /, '')[0] !== 'Z';
  } catch {
    return false;
  }
});
// Every live process whose command line names `dir`, or in the session of one of `sids`.
function processesOf(dir, sids) {
  const out = execFileSync('ps', ['-e', '-o', 'pid=,sid=,stat=,args='], { encoding: 'utf8' });
  return out.split('\n').map((l) => l.trim().match(/^(\d+)\s+(\d+)\s+(\S+)\s+(.*)$/)).filter(Boolean)
    .filter(([, , , stat]) => !stat.startsWith('Z'))
    .filter(([, pid, sid, , args]) => Number(pid) !== process.pid && (args.includes(dir) || sids.includes(Number(sid))))
    .map(([, pid, , , args]) => `${pid} ${args}`);
}

describe('scripts/cluster.sh', () => {
  let dir;
  let env;
  let state = {};
  let upOut;
  const clients = [];
  const pids = () => {
    const p = path.join(env.CLUSTER_DIR, 'pids');
    return existsSync(p) ? readdirSync(p).map((n) => Number(readFileSync(path.join(p, n), 'utf8'))) : [];
  };
  let allPids = [];

  before(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'ops-cluster-'));
    chmodSync(dir, 0o755); // as root, sandboxes run as nobody, who must reach the workspace roots
    env = { CLUSTER_DIR: path.join(dir, 'run'), SANDBOXD_BIN: BIN };
    const r = await run(CLUSTER, ['up', '3'], { env });
    upOut = r;
    assert.equal(r.code, 0, `cluster.sh up failed:\n${r.stdout}\n${r.stderr}`);
    for (const line of readFileSync(path.join(env.CLUSTER_DIR, 'cluster.env'), 'utf8').split('\n')) {
      const m = line.match(/^(\w+)="?([^"]*)"?$/);
      if (m) state[m[1]] = m[2];
    }
    allPids = pids();
  });

  after(async () => {
    for (const c of clients) await c.client.close().catch(() => {});
    // down again whatever happened in the tests (a no-op when the last test ran it)
    await run(CLUSTER, ['down'], { env });
    rmSync(dir, { recursive: true, force: true });
  });

  test('up prints the MCP URL, the Redis URL and the pids', () => {
    assert.match(upOut.stdout, new RegExp(`MCP URL +http://127\\.0\\.0\\.1:${state.NGINX_PORT}/mcp`));
    assert.match(upOut.stdout, new RegExp(`Redis URL +redis://127\\.0\\.0\\.1:${state.REDIS_PORT}`));
    for (const name of ['nginx', 'replica-1', 'replica-2', 'replica-3', 'redis']) assert.match(upOut.stdout, new RegExp(`${name} +pid \\d+`));
    assert.equal(state.REPLICA_PORTS.split(' ').length, 3);
    assert.equal(liveOf(allPids).length, 5);
  });

  test('the rendered template passes nginx -t', async () => {
    const ngx = path.join(env.CLUSTER_DIR, 'nginx');
    const conf = readFileSync(path.join(ngx, 'nginx.conf'), 'utf8');
    assert.doesNotMatch(conf, /@[A-Z]+@/, 'placeholders left');
    assert.equal(conf.match(/^\s*server 127\.0\.0\.1:\d+ max_fails=1 fail_timeout=5s;$/gm).length, 3);
    await nginxTest(path.join(ngx, 'nginx.conf'), ngx);
  });

  test('the official SDK client runs a command through nginx', async () => {
    const c = await connect({ url: new URL(state.MCP_URL) }, { name: 'ops-test' });
    clients.push(c);
    assert.ok(c.transport.sessionId, 'Mcp-Session-Id came back through nginx');
    const r = await call(c.client, 'execute_code', { command: 'echo hi' });
    assert.equal(r.status, 'completed', JSON.stringify(r));
    assert.deepEqual(r.output.filter((e) => e.type === 'stdout').map((e) => e.data), ['hi']);
    // the next call carries the session id back through nginx to the same replica
    const s = await call(c.client, 'get_execution_status', { execution_id: r.execution_id });
    assert.equal(s.status, 'completed');
    state.firstExecution = r.execution_id;
  });

  test('nginx sends Host: localhost to the loopback replicas, whatever the client sent', async () => {
    const viaNginx = await request(state.MCP_URL, { method: 'POST', headers: { ...MCP_HEADERS, host: 'mcp.example.com' }, body: INIT });
    assert.equal(viaNginx.status, 200, viaNginx.text);
    assert.match(viaNginx.headers['mcp-session-id'] ?? '', /^[0-9a-f]{16,}$/);
    // the same request straight to a replica is refused: the rewrite is what makes it pass
    const port = state.REPLICA_PORTS.split(' ')[0];
    const direct = await request(`http://127.0.0.1:${port}/mcp`, { method: 'POST', headers: { ...MCP_HEADERS, host: 'mcp.example.com' }, body: INIT });
    assert.equal(direct.status, 403);
  });

  test('/health is proxied, /metrics is refused, anything else is 404', async () => {
    const base = `http://127.0.0.1:${state.NGINX_PORT}`;
    const h = await request(`${base}/health`);
    assert.equal(h.status, 200);
    assert.equal(JSON.parse(h.text).status, 'ok');
    const m = await request(`${base}/metrics`);
    assert.equal(m.status, 403, 'per-replica metrics are not served through nginx');
    for (const p of ['/', '/mcp/', '/mcpx', '/other']) {
      const r = await request(`${base}${p}`);
      assert.equal(r.status, 404, p);
      assert.match(r.text, /the MCP endpoint is \/mcp/);
    }
  });

  test('status reports every part up, up again is idempotent, a different N is refused', async () => {
    const s = await run(CLUSTER, ['status'], { env });
    assert.equal(s.code, 0, s.stdout + s.stderr);
    for (const name of ['redis', 'replica-1', 'replica-2', 'replica-3', 'nginx']) assert.match(s.stdout, new RegExp(`^ +${name} +up +pid \\d+`, 'm'));
    assert.equal(s.stdout.match(/health: ok, sessions \d+, running \d+, redis connected/g).length, 3);
    const again = await run(CLUSTER, ['up', '3'], { env });
    assert.equal(again.code, 0);
    assert.match(again.stdout, /already up/);
    const other = await run(CLUSTER, ['up', '2'], { env });
    assert.equal(other.code, 1);
    assert.match(other.stderr, /already up with 3 replicas/);
  });

  test('a killed replica is skipped: new clients reach the others', async () => {
    // the replica that ran the first command, as recorded in Redis
    const meta = JSON.parse(execFileSync('redis-cli', ['-p', state.REDIS_PORT, 'GET', `execution:${state.firstExecution}`], { encoding: 'utf8' }));
    const port = meta.replica.split(':').pop();
    const idx = state.REPLICA_PORTS.split(' ').indexOf(port) + 1;
    assert.ok(idx >= 1, `replica ${meta.replica} is one of ours`);
    const pid = Number(readFileSync(path.join(env.CLUSTER_DIR, 'pids', `replica-${idx}`), 'utf8'));
    process.kill(pid, 'SIGKILL');
    for (let i = 0; i < 100 && liveOf([pid]).length; i++) await new Promise((r) => setTimeout(r, 20));
    const s = await run(CLUSTER, ['status'], { env });
    assert.equal(s.code, 1, 'partly up');
    assert.match(s.stdout, new RegExp(`^ +replica-${idx} +down`, 'm'));
    // same client address, so ip_hash picks the dead replica first: nginx moves on
    const c = await connect({ url: new URL(state.MCP_URL) }, { name: 'ops-failover' });
    clients.push(c);
    const r = await call(c.client, 'execute_code', { command: 'echo again' });
    assert.equal(r.status, 'completed', JSON.stringify(r));
    const up = await run(CLUSTER, ['up'], { env });
    assert.equal(up.code, 1);
    assert.match(up.stderr, /partly up/);
  });

  test('down stops everything and leaves no process behind', async () => {
    for (const c of clients.splice(0)) await c.client.close().catch(() => {});
    const r = await run(CLUSTER, ['down'], { env });
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(liveOf(allPids), []);
    assert.deepEqual(processesOf(env.CLUSTER_DIR, allPids), []);
    const s = await run(CLUSTER, ['status'], { env });
    assert.equal(s.code, 3);
    const again = await run(CLUSTER, ['down'], { env });
    assert.equal(again.code, 0);
    assert.match(again.stdout, /not running/);
    // sanitizer builds report on stderr at exit
    for (let i = 1; i <= 3; i++) {
      const err = readFileSync(path.join(env.CLUSTER_DIR, `replica-${i}`, 'stderr.log'), 'utf8');
      assert.doesNotMatch(err, /ERROR: (Address|Leak|Undefined)Sanitizer|runtime error:/, `replica-${i}:\n${err}`);
    }
  });
});
