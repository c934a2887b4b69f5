// Egress allow-lists (issue 14): a run with sandbox_config.network.allowed_domains
// reaches only those names, through its own HTTP/SOCKS5 proxy outside the sandbox.
// Offline: upstreams on 127.0.0.2 / 127.0.0.1 started here, names pinned with
// --egress-resolve, 127.0.0.2 opened with --egress-allow-cidr.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import { call, connect, freePort, metric, startRedis, startServer, waitFor } from './helpers.mjs';

const lines = (r, type = 'stdout') => r.output.filter((e) => e.type === type).map((e) => e.data);
const denied = (r) => r.output.filter((e) => e.type === 'network_denied').map((e) => ({ host: e.host, port: e.port, reason: e.reason }));

// An HTTP upstream answering "upstream <tag> <Host header> <path>"; counts requests.
async function httpUpstream(host, tag) {
  const port = await freePort();
  const hits = [];
  const srv = http.createServer((req, res) => {
    hits.push(req.url);
    res.end(`upstream ${tag} ${req.headers.host} ${req.url}\n`);
  });
  await new Promise((resolve) => srv.listen(port, host, resolve));
  return { port, hits, close: () => new Promise((r) => { srv.closeAllConnections?.(); srv.close(r); }) };
}

// A TCP echo upstream; records connections and their closing.
async function echoUpstream(host) {
  const port = await freePort();
  const conns = [];
  const srv = net.createServer((s) => {
    const c = { open: true };
    conns.push(c);
    s.on('data', (d) => s.write(d));
    s.on('close', () => { c.open = false; });
    s.on('error', () => {});
  });
  await new Promise((resolve) => srv.listen(port, host, resolve));
  return { port, conns, close: () => new Promise((r) => srv.close(r)) };
}

const net_ = (allowed, deniedList) => ({ network: { allowed_domains: allowed, ...(deniedList ? { denied_domains: deniedList } : {}) } });

async function run(client, command, sandbox_config, extra = {}) {
  const r = await call(client, 'execute_code', { command, ...(sandbox_config ? { sandbox_config } : {}), ...extra });
  assert.ok(!r._result.isError, `execute_code failed: ${r.error ?? JSON.stringify(r._result)}`);
  return r;
}

// A tiny CONNECT client run inside the sandbox: tunnels to host:port through the HTTP proxy, sends a line, prints the echo.
const connectPy = (target, n = 1, hold = 0) => `/usr/bin/python3 - <<'EOF'
import socket, sys, time
socks = []
for i in range(${n}):
    s = socket.create_connection(("127.0.0.1", 3128))
    s.sendall(b"CONNECT ${target} HTTP/1.1\\r\\nHost: ${target}\\r\\n\\r\\n")
    head = b""
    while b"\\r\\n\\r\\n" not in head:
        b = s.recv(1)
        if not b: break
        head += b
    print("status", i, head.split(b"\\r\\n")[0].decode(), flush=True)
    if b" 200 " in head:
        s.sendall(b"ping%d\\n" % i)
        print("echo", i, s.recv(100).decode().strip(), flush=True)
    socks.append(s)
time.sleep(${hold})
EOF`;

describe('egress proxy: policy and enforcement', () => {
  let server, client, up, up1, echo;
  before(async () => {
    up = await httpUpstream('127.0.0.2', 'two');
    up1 = await httpUpstream('127.0.0.1', 'one');
    echo = await echoUpstream('127.0.0.2');
    server = await startServer({
      args: ['--egress-domains', '*.test,127.0.0.2,127.0.0.1,localhost',
        '--egress-resolve', 'pypi.test=127.0.0.2', '--egress-resolve', 'files.pypi.test=127.0.0.2',
        '--egress-resolve', 'other.test=127.0.0.2', '--egress-resolve', 'local.test=127.0.0.1',
        '--egress-allow-cidr', '127.0.0.2/32'],
    });
    ({ client } = await connect(server));
  });
  after(async () => {
    await client?.close();
    await server?.stop();
    await up?.close();
    await up1?.close();
    await echo?.close();
  });

  test('plain HTTP to an allowed name goes through, with the proxy variables set', async () => {
    const r = await run(client, `echo "$HTTP_PROXY $HTTPS_PROXY $ALL_PROXY $http_proxy $NO_PROXY"; curl -sS http://pypi.test:${up.port}/simple/`, net_(['pypi.test']));
    assert.equal(r.exit_code, 0, JSON.stringify(r.output));
    assert.deepEqual(lines(r), ['http://127.0.0.1:3128 http://127.0.0.1:3128 socks5h://127.0.0.1:1080 http://127.0.0.1:3128 localhost,127.0.0.1,::1',
      `upstream two pypi.test:${up.port} /simple/`]);
    assert.deepEqual(denied(r), []);
    // the Host the upstream sees is the name that was decided, whatever the client wrote
    const f = await run(client, `curl -sS -H 'Host: evil.example' http://pypi.test:${up.port}/front`, net_(['pypi.test']));
    assert.deepEqual(lines(f), [`upstream two pypi.test:${up.port} /front`]);
    // Python's urllib (what pip's own code path honours too) picks the proxy from the environment
    const py = await run(client, `/usr/bin/python3 -c "import urllib.request; print(urllib.request.urlopen('http://pypi.test:${up.port}/simple/pip/').read().decode().strip())"`,
      net_(['pypi.test']));
    assert.deepEqual(lines(py), [`upstream two pypi.test:${up.port} /simple/pip/`], JSON.stringify(py.output));
  });

  test('pip and git find the proxy by themselves; another index host is refused and reported', async () => {
    const r = await run(client, `pip download --no-deps --no-cache-dir --disable-pip-version-check -q -d dl --trusted-host pypi.test --index-url http://pypi.test:${up.port}/simple/ sandboxd-probe >/dev/null 2>&1; echo "pip $?"
git ls-remote http://pypi.test:${up.port}/repo.git >/dev/null 2>&1; echo "git $?"
pip download --no-deps --no-cache-dir --disable-pip-version-check -q -d dl --retries 0 --trusted-host other.test --index-url http://other.test:${up.port}/simple/ sandboxd-probe >/dev/null 2>&1; echo "pip $?"`,
    net_(['pypi.test']));
    // the upstream is no index: pip and git fail, but only after asking it through the proxy
    assert.deepEqual(lines(r), ['pip 1', 'git 128', 'pip 1'], JSON.stringify(r.output));
    assert.ok(up.hits.includes('/simple/sandboxd-probe/'), JSON.stringify(up.hits));
    assert.ok(up.hits.some((h) => h.startsWith('/repo.git/info/refs')), JSON.stringify(up.hits));
    assert.ok(denied(r).length >= 1 && denied(r).every((d) => d.host === 'other.test' && d.reason === 'not allowed'), JSON.stringify(denied(r)));
  });

  test('CONNECT tunnels (curl -p, and a raw client to a TCP echo upstream)', async () => {
    let r = await run(client, `curl -sS -p http://pypi.test:${up.port}/tunnel`, net_(['pypi.test']));
    assert.equal(r.exit_code, 0, JSON.stringify(r.output));
    assert.deepEqual(lines(r), [`upstream two pypi.test:${up.port} /tunnel`]);
    r = await run(client, connectPy(`pypi.test:${echo.port}`), net_(['pypi.test']));
    assert.deepEqual(lines(r), ['status 0 HTTP/1.1 200 Connection established', 'echo 0 ping0'], JSON.stringify(r.output));
  });

  test('SOCKS5 with the name resolved by the proxy (curl --socks5-hostname)', async () => {
    const r = await run(client, `curl -sS --socks5-hostname 127.0.0.1:1080 http://pypi.test:${up.port}/socks`, net_(['pypi.test']));
    assert.equal(r.exit_code, 0, JSON.stringify(r.output));
    assert.deepEqual(lines(r), [`upstream two pypi.test:${up.port} /socks`]);
  });

  test('a wildcard covers the names below it, not the name itself', async () => {
    const r = await run(client, `curl -sS http://files.pypi.test:${up.port}/a; curl -s -o /dev/null -w '%{http_code}\\n' http://pypi.test:${up.port}/b`,
      net_(['*.pypi.test']));
    assert.deepEqual(lines(r), [`upstream two files.pypi.test:${up.port} /a`, '403']);
    assert.deepEqual(denied(r), [{ host: 'pypi.test', port: up.port, reason: 'not allowed' }]);
  });

  test('a port rule allows that port only', async () => {
    const r = await run(client, `curl -sS http://pypi.test:${up.port}/a; curl -s -o /dev/null -w '%{http_code}\\n' http://pypi.test:${echo.port}/b`,
      net_([`pypi.test:${up.port}`]));
    assert.deepEqual(lines(r), [`upstream two pypi.test:${up.port} /a`, '403']);
    assert.deepEqual(denied(r), [{ host: 'pypi.test', port: echo.port, reason: 'not allowed' }]);
  });

  test('deny wins over allow; the 403 body and SOCKS5 code 2 name the refusal', async () => {
    const before = up.hits.length;
    const r = await run(client, `curl -s http://other.test:${up.port}/x; curl -s --socks5-hostname 127.0.0.1:1080 http://other.test:${up.port}/y; echo "socks exit $?"`,
      net_(['*.test'], ['other.test']));
    assert.deepEqual(lines(r), [`mcp-sandboxd egress proxy: connection to other.test:${up.port} refused (denied)`, 'socks exit 97']);
    assert.deepEqual(denied(r), [{ host: 'other.test', port: up.port, reason: 'denied' }, { host: 'other.test', port: up.port, reason: 'denied' }]);
    assert.equal(up.hits.length, before, 'the upstream saw no request');
  });

  test('asking beyond the operator ceiling is an error naming --egress-domains', async () => {
    const r = await call(client, 'execute_code', { command: 'true', sandbox_config: net_(['pypi.org']) });
    assert.ok(r._result.isError);
    assert.match(JSON.stringify(r._result), /--egress-domains/);
    const w = await call(client, 'execute_code', { command: 'true', sandbox_config: net_(['*']) });
    assert.ok(w._result.isError);
    assert.match(JSON.stringify(w._result), /--egress-domains/);
  });

  test('a name outside the ceiling is refused as such at connect time, before any lookup', async () => {
    const r = await run(client, `curl -s -o /dev/null -w '%{http_code}\\n' http://pypi.example:${up.port}/`, net_(['pypi.test']));
    assert.deepEqual(lines(r), ['403']);
    assert.deepEqual(denied(r), [{ host: 'pypi.example', port: up.port, reason: 'ceiling' }]);
  });

  test('a name the resolver (not a pin) maps to loopback is refused: localhost', async () => {
    const r = await run(client, `curl -s --noproxy '' -o /dev/null -w '%{http_code}\\n' http://localhost:${up1.port}/`, net_(['localhost']));
    assert.deepEqual(lines(r), ['403']);
    assert.deepEqual(denied(r), [{ host: 'localhost', port: up1.port, reason: 'private address' }]);
    assert.equal(up1.hits.length, 0);
  });

  test('a name resolving to 127.0.0.1 is refused; 127.0.0.2 passes only because --egress-allow-cidr opened it', async () => {
    const r = await run(client, `curl -s -o /dev/null -w '%{http_code}\\n' http://local.test:${up1.port}/`, net_(['local.test']));
    assert.deepEqual(lines(r), ['403']);
    assert.deepEqual(denied(r), [{ host: 'local.test', port: up1.port, reason: 'private address' }]);
    assert.equal(up1.hits.length, 0);
  });

  test('IP literals are names: refused unless listed', async () => {
    let r = await run(client, `curl -s -o /dev/null -w '%{http_code}\\n' http://127.0.0.2:${up.port}/`, net_(['pypi.test']));
    assert.deepEqual(lines(r), ['403']);
    assert.deepEqual(denied(r), [{ host: '127.0.0.2', port: up.port, reason: 'not allowed' }]);
    r = await run(client, `curl -sS http://127.0.0.2:${up.port}/lit`, net_(['127.0.0.2']));
    assert.deepEqual(lines(r), [`upstream two 127.0.0.2:${up.port} /lit`]);
    // listed, but 127.0.0.1 stays a refused range
    r = await run(client, `curl -s --noproxy '' -o /dev/null -w '%{http_code}\\n' http://127.0.0.1:${up1.port}/`, net_(['127.0.0.1']));
    assert.deepEqual(denied(r), [{ host: '127.0.0.1', port: up1.port, reason: 'private address' }]);
  });

  test('a socket that ignores the proxy reaches nothing', async () => {
    const before = up.hits.length;
    const r = await run(client, `curl -sS --noproxy '*' --max-time 5 http://127.0.0.2:${up.port}/direct; echo "exit $?";
/usr/bin/python3 -c 'import socket
try:
    socket.create_connection(("127.0.0.2", ${up.port}), timeout=5); print("connected")
except OSError as e: print("refused", e.errno)'`, net_(['pypi.test']));
    assert.deepEqual(lines(r), ['exit 7', 'refused 111']);
    assert.equal(up.hits.length, before);
  });

  test('no network config: no proxy variables, no proxy, no way out', async () => {
    const r = await run(client, `env | grep -ci proxy; curl -sS --max-time 5 -x http://127.0.0.1:3128 http://pypi.test:${up.port}/; echo "exit $?"; curl -sS --max-time 5 http://127.0.0.2:${up.port}/; echo "exit $?"`);
    assert.deepEqual(lines(r), ['0', 'exit 7', 'exit 7']);
  });

  test("a run cannot use another run's proxy", async () => {
    const a = await call(client, 'execute_code_async', { command: 'echo up; sleep 30', sandbox_config: net_(['pypi.test']) });
    assert.ok(!a._result.isError, a.error);
    const before = up.hits.length;
    try {
      // another run without network config, then one with a different allow-list: each sees its own loopback
      let r = await run(client, `curl -sS --max-time 5 -x http://127.0.0.1:3128 http://pypi.test:${up.port}/; echo "exit $?"`);
      assert.deepEqual(lines(r), ['exit 7']);
      r = await run(client, `curl -s -o /dev/null -w '%{http_code}\\n' http://pypi.test:${up.port}/`, net_(['other.test']));
      assert.deepEqual(lines(r), ['403']);
      assert.equal(up.hits.length, before);
    } finally {
      await call(client, 'cancel_execution', { execution_id: a.execution_id, force: true });
    }
  });

  test("the run's LD_PRELOAD never runs code before the seccomp filter (the bridge is static)", async () => {
    // a library whose constructor reports whether AF_UNIX sockets (refused by the filter) can be made
    const src = `#include <stdio.h>
#include <sys/socket.h>
#include <unistd.h>
__attribute__((constructor)) static void probe(void) {
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    fprintf(stderr, "probe %s\\n", fd >= 0 ? "UNFILTERED" : "filtered");
    if (fd >= 0) close(fd);
}`;
    const built = await run(client, `cat > probe.c <<'EOF'\n${src}\nEOF\ngcc -shared -fPIC -o probe.so probe.c && echo built`);
    assert.deepEqual(lines(built), ['built'], JSON.stringify(built.output));
    const r = await run(client, 'echo ran', net_(['pypi.test']), { environment: { LD_PRELOAD: './probe.so' }, working_directory: '.' });
    assert.deepEqual(lines(r), ['ran']);
    const probes = lines(r, 'stderr').filter((l) => l.startsWith('probe'));
    assert.ok(probes.length >= 1, JSON.stringify(r.output)); // the command's own processes load it, filtered
    assert.deepEqual(probes.filter((l) => l !== 'probe filtered'), [], JSON.stringify(r.output));
  });

  test('metrics count decisions by outcome', async () => {
    const allowed = await metric(server, 'egress_decisions_total{outcome="allowed"}');
    const deniedN = await metric(server, 'egress_decisions_total{outcome="denied"}');
    const priv = await metric(server, 'egress_decisions_total{outcome="private address"}');
    assert.ok(allowed >= 7, `allowed ${allowed}`);
    assert.ok(deniedN >= 2, `denied ${deniedN}`);
    assert.ok(priv >= 2, `private ${priv}`);
  });
});

describe('egress proxy: Redis, the server itself, limits and teardown', () => {
  let server, client, redis, echo;
  before(async () => {
    redis = await startRedis();
    echo = await echoUpstream('127.0.0.2');
    server = await startServer({
      env: { REDIS_URL: redis.url },
      args: ['--egress-resolve', 'redis.test=127.0.0.1', '--egress-resolve', 'echo.test=127.0.0.2',
        '--egress-allow-cidr', '127.0.0.0/8', '--egress-max-connections', '2'],
    });
    ({ client } = await connect(server));
  });
  after(async () => {
    await client?.close();
    await server?.stop();
    await redis?.stop();
    await echo?.close();
  });

  test('the Redis port and the server\'s own port stay refused although their range was opened; the event is in Redis', async () => {
    const r = await run(client, `curl -s -o /dev/null -w '%{http_code}\\n' http://redis.test:${redis.port}/; curl -s -o /dev/null -w '%{http_code}\\n' http://redis.test:${server.port}/health`,
      net_(['redis.test']));
    assert.deepEqual(lines(r), ['403', '403']);
    assert.deepEqual(denied(r), [{ host: 'redis.test', port: redis.port, reason: 'private address' },
      { host: 'redis.test', port: server.port, reason: 'private address' }]);
    const stored = await waitFor(async () => {
      const out = (await redis.acli('LRANGE', `execution:${r.execution_id}:output`, 0, -1)).split('\n').filter(Boolean).map((l) => JSON.parse(l));
      const d = out.filter((e) => e.type === 'network_denied');
      return d.length === 2 ? d : null;
    }, { what: 'network_denied events in Redis' });
    assert.equal(stored[0].host, 'redis.test');
    assert.equal(stored[0].port, redis.port);
    assert.equal(stored[0].reason, 'private address');
  });

  test('--egress-max-connections: the third open connection is refused with reason limit', async () => {
    const r = await run(client, connectPy(`echo.test:${echo.port}`, 3), net_(['echo.test']));
    assert.deepEqual(lines(r), ['status 0 HTTP/1.1 200 Connection established', 'echo 0 ping0',
      'status 1 HTTP/1.1 200 Connection established', 'echo 1 ping1', 'status 2 HTTP/1.1 403 Forbidden'], JSON.stringify(r.output));
    assert.deepEqual(denied(r), [{ host: 'echo.test', port: echo.port, reason: 'limit' }]);
  });

  test('cancel closes the endpoint and every relayed connection', async () => {
    const n0 = echo.conns.length;
    const a = await call(client, 'execute_code_async', { command: connectPy(`echo.test:${echo.port}`, 1, 60), sandbox_config: net_(['echo.test']) });
    assert.ok(!a._result.isError, a.error);
    await waitFor(() => echo.conns.length === n0 + 1 && echo.conns[n0].open, { what: 'the tunnel is open' });
    assert.equal(await metric(server, 'egress_endpoints'), 1);
    assert.equal(await metric(server, 'egress_connections'), 1);
    await call(client, 'cancel_execution', { execution_id: a.execution_id, force: true });
    await waitFor(() => !echo.conns[n0].open, { what: 'the upstream connection closed' });
    await waitFor(async () => (await metric(server, 'egress_endpoints')) === 0 && (await metric(server, 'egress_connections')) === 0,
      { what: 'no endpoint left' });
  });
});
