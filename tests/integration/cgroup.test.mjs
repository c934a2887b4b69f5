// A cgroup per run (issue 11 item 1), against the real binary, bwrap and the
// machine's cgroupfs: memory and CPU summed over a run's processes, tmpfs pages
// charged to the run, pids.max against a fork bomb, the exit accounting, the
// fallback without cgroups, the pid_max check, and a run that outlives a
// SIGKILL of the server being killed at the next start. Each limit test has a
// positive control (the same action where it is allowed). Every server gets
// its own --replica-id, so its run cgroups ("mcp-<replica>-run-<id>") are
// told apart from any other server's; after each test none may be left.
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { BIN, call, connect, sleep, startServer } from './helpers.mjs';
import { CTRLS, ownCgroupDirs, runCgroups } from './cgroup-helpers.mjs';

const ownDirs = ownCgroupDirs;
const leftovers = runCgroups;
const V1 = existsSync('/sys/fs/cgroup/memory') && ownDirs().length === CTRLS.length;

// Waits until no run cgroup of `replica` is left (removal is retried from a timer), then asserts it.
async function assertNoLeftovers(replica) {
  const until = Date.now() + 15000;
  while (leftovers(replica).length > 0 && Date.now() < until) await sleep(50);
  assert.deepEqual(leftovers(replica), [], 'run cgroups left behind');
}

// /health shows the deployment details (the cgroup mode among them) only to the token
const TOKEN = 'cgroup-test-token-0123456789';
const health = async (s) => (await fetch(`${s.server.base}/health`, { headers: { Authorization: `Bearer ${TOKEN}` } })).json();

let seq = 0;
async function start(args = [], extra = {}) {
  const replica = extra.replica ?? `cgtest-${process.pid}-${++seq}`;
  // CGTEST_EXTRA_ARGS: e.g. "--cgroups=off", to see the limit tests fail without per-run cgroups
  const more = (process.env.CGTEST_EXTRA_ARGS || '').split(' ').filter(Boolean);
  const server = await startServer({ args: ['--replica-id', replica, ...args, ...more], token: TOKEN, ...extra.opts });
  const { client } = await connect(server, { token: TOKEN });
  return { server, client, replica };
}

async function stop({ server, client, replica }) {
  await client?.close();
  await server?.stop();
  await assertNoLeftovers(replica);
}

const limits = (l) => ({ sandbox_config: { resource_limits: l } });
const last = (r) => r.output[r.output.length - 1];
const limitEvent = (r) => r.output.find((e) => e.type === 'resource_limit');
// python3 from the host's /usr, allocating (and touching) N MiB, then holding it
const hold = (mb, s) => `python3 -c "import time; b = bytearray(${mb} << 20); time.sleep(${s})"`;

describe('cgroup per run (v1 on this machine)', { skip: !V1 && 'no cgroup v1 hierarchies here' }, () => {
  test('/health and the log say which cgroups are in use', async () => {
    const s = await start();
    try {
      const h = await health(s);
      assert.equal(h.cgroups, 'v1');
      assert.match(s.server.log(), /cgroups: v1, a cgroup per run/);
    } finally { await stop(s); }
  });

  test('memory is summed over the run: 4 x 100 MiB under 256 MiB ends with resource_limit memory; under 1024 it completes', async () => {
    const s = await start();
    try {
      const cmd = `for i in 1 2 3 4; do ${hold(100, 2)} & done; wait; echo all-done`;
      const bad = await call(s.client, 'execute_code', { command: cmd, ...limits({ max_memory_mb: 256 }) });
      assert.equal(bad.status, 'failed');
      assert.equal(limitEvent(bad)?.reason, 'memory', JSON.stringify(bad.output));
      assert.equal(last(bad).type, 'exit');
      assert.equal(last(bad).oom_killed, true);
      assert.ok(!bad.output.some((e) => e.data === 'all-done'));
      const ok = await call(s.client, 'execute_code', { command: cmd, ...limits({ max_memory_mb: 1024 }) });
      assert.equal(ok.status, 'completed', JSON.stringify(ok.output));
      assert.equal(ok.exit_code, 0);
      assert.ok(ok.output.some((e) => e.data === 'all-done'));
      assert.equal(last(ok).oom_killed, false);
      assert.ok(last(ok).peak_memory_bytes >= 400 * 2 ** 20, `peak ${last(ok).peak_memory_bytes}`);
    } finally { await stop(s); }
  });

  test('tmpfs pages are charged to the run: 300 MiB into /tmp under 256 MiB is killed; 200 MiB is fine', async () => {
    const s = await start();
    try {
      const bad = await call(s.client, 'execute_code', { command: 'head -c 300M /dev/zero > /tmp/fill; echo written', ...limits({ max_memory_mb: 256 }) });
      assert.equal(limitEvent(bad)?.reason, 'memory', JSON.stringify(bad.output));
      assert.ok(!bad.output.some((e) => e.data === 'written'));
      const ok = await call(s.client, 'execute_code', { command: 'head -c 200M /dev/zero > /tmp/fill; echo written', ...limits({ max_memory_mb: 256 }) });
      assert.equal(ok.status, 'completed', JSON.stringify(ok.output));
      assert.ok(ok.output.some((e) => e.data === 'written'));
      assert.ok(last(ok).peak_memory_bytes >= 200 * 2 ** 20);
    } finally { await stop(s); }
  });

  test('CPU is summed over the run: 3 busy processes under max_cpu_seconds 1 end with cpu_time; one short burst completes', async () => {
    const s = await start();
    try {
      const bad = await call(s.client, 'execute_code', {
        command: 'for i in 1 2 3; do (while :; do :; done) & done; wait', timeout_seconds: 60, ...limits({ max_cpu_seconds: 1 }) });
      assert.equal(bad.status, 'failed');
      assert.equal(limitEvent(bad)?.reason, 'cpu_time', JSON.stringify(bad.output));
      assert.ok(last(bad).cpu_ms >= 1000, `cpu_ms ${last(bad).cpu_ms}`);
      // the control: the same three processes, each stopping well inside the budget together
      const ok = await call(s.client, 'execute_code', {
        command: 'for i in 1 2 3; do (i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done) & done; wait; echo ok', ...limits({ max_cpu_seconds: 5 }) });
      assert.equal(ok.status, 'completed', JSON.stringify(ok.output));
      assert.equal(limitEvent(ok), undefined);
    } finally { await stop(s); }
  });

  test('a fork bomb stays within pids.max; the server stays responsive; 20 processes under 64 all start', async () => {
    const s = await start();
    try {
      const run = await call(s.client, 'execute_code_async', {
        command: 'echo started; b() { b | b & }; b; sleep 100', timeout_seconds: 4, ...limits({ max_processes: 32 }) });
      const dir = path.join(ownDirs().find((d) => d.ctrl === 'pids').dir, `mcp-${s.replica}-run-${run.execution_id}`);
      assert.equal(readFileSync(path.join(dir, 'pids.max'), 'utf8').trim(), String(32 + 2));
      let peak = 0, hitMax = 0;
      while (existsSync(dir)) {
        try {
          peak = Math.max(peak, Number(readFileSync(path.join(dir, 'pids.current'), 'utf8')));
          hitMax = Number(/max (\d+)/.exec(readFileSync(path.join(dir, 'pids.events'), 'utf8'))[1]);
        } catch { break; }
        const h = await fetch(`${s.server.base}/health`, { headers: { Authorization: `Bearer ${TOKEN}` } });
        assert.equal(h.status, 200);
        const st = await call(s.client, 'get_execution_status', { execution_id: run.execution_id });
        if (st.status !== 'running') break;
      }
      // the shell's `ulimit -p` (RLIMIT_NPROC in the run's user namespace) may stop the bomb first;
      // either way the run's cgroup never holds more than pids.max
      assert.ok(peak > 2 && peak <= 34, `pids.current peaked at ${peak} (pids.events max ${hitMax})`);
      const ok = await call(s.client, 'execute_code', {
        command: 'for i in $(seq 20); do sleep 2 & done; n=$(ls /proc | grep -c "^[0-9]"); wait; echo procs=$n', ...limits({ max_processes: 64 }) });
      assert.equal(ok.status, 'completed', JSON.stringify(ok.output));
      const n = Number(/procs=(\d+)/.exec(ok.output.map((e) => e.data).join('\n'))[1]);
      assert.ok(n >= 21, `${n} processes seen`);
    } finally { await stop(s); }
  });

  test('the exit event carries cpu_ms, peak_memory_bytes and oom_killed', async () => {
    const s = await start();
    try {
      const r = await call(s.client, 'execute_code', { command: `${hold(50, 0)}; i=0; while [ $i -lt 100000 ]; do i=$((i+1)); done` });
      const x = last(r);
      assert.equal(x.type, 'exit');
      assert.equal(typeof x.cpu_ms, 'number');
      assert.ok(x.cpu_ms > 50, `cpu_ms ${x.cpu_ms}`);
      assert.ok(x.peak_memory_bytes >= 50 * 2 ** 20 && x.peak_memory_bytes < 2 ** 31, `peak ${x.peak_memory_bytes}`);
      assert.equal(x.oom_killed, false);
    } finally { await stop(s); }
  });

  test('a run that outlives a server SIGKILL is killed at the next start (control: with --cgroups=off it survives)', async () => {
    // --isolation none: no PID namespace, so a setsid'd process escapes the run's process group
    // and PR_SET_PDEATHSIG: only its cgroup still ties it to the run
    const escape = async (args, replica) => {
      // a short wait deadline: get_execution_output wait:true returns while the run goes on
      const s = await start(['--isolation', 'none', '--wait-deadline', '1', ...args], { replica });
      const run = await call(s.client, 'execute_code_async', { command: 'setsid sleep 1000 </dev/null >/dev/null 2>&1 & echo pid=$!; sleep 1000' });
      let pid;
      while (pid === undefined) {
        const o = await call(s.client, 'get_execution_output', { execution_id: run.execution_id, wait: true });
        const m = /pid=(\d+)/.exec(o.output.map((e) => e.data ?? '').join('\n'));
        if (m) pid = Number(m[1]);
      }
      await s.client.close();
      s.server.proc.kill('SIGKILL');
      await s.server.exited;
      return { s, pid };
    };
    const alive = (pid) => {
      try { return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8')); } catch { return false; }
    };
    const waitDead = async (pid) => {
      const until = Date.now() + 15000;
      while (alive(pid) && Date.now() < until) await sleep(50);
    };
    // control: without cgroups nothing finds the escaped process again
    const c = await escape(['--cgroups=off']);
    try {
      assert.ok(alive(c.pid), 'the escaped process survived the SIGKILL');
      const again = await start(['--isolation', 'none', '--cgroups=off'], { replica: c.s.replica ?? undefined });
      assert.ok(alive(c.pid), 'a restart without cgroups does not find it');
      await stop(again);
    } finally { try { process.kill(c.pid, 'SIGKILL'); } catch { /* gone */ } await c.s.server.stop(); }

    const replica = `cgtest-${process.pid}-restart`;
    const { s, pid } = await escape([], replica);
    assert.ok(alive(pid), 'the escaped process survived the SIGKILL');
    assert.ok(leftovers(replica).length > 0, 'its run cgroup is still there');
    const again = await start(['--isolation', 'none'], { replica });
    try {
      await waitDead(pid);
      assert.ok(!alive(pid), `pid ${pid} of the old run is still alive after the restart`);
      assert.match(again.server.log(), /left by an earlier instance/);
    } finally {
      try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ }
      await s.server.stop();
      await stop(again);
    }
  });
});

describe('without cgroup access', () => {
  test('an empty --cgroup-root: the server starts, says it fell back to rlimits, and runs still work', async () => {
    const empty = mkdtempSync(path.join(os.tmpdir(), 'sandboxd-nocg-'));
    const s = await start(['--cgroup-root', empty]);
    try {
      const h = await health(s);
      assert.equal(h.cgroups, 'none (rlimits)');
      assert.equal(typeof h.cgroups_fallback_reason, 'string');
      assert.match(s.server.log(), /fall back to rlimits/);
      const r = await call(s.client, 'execute_code', { command: 'echo hi' });
      assert.equal(r.status, 'completed');
      assert.equal(last(r).peak_memory_bytes, null);
      assert.equal(typeof last(r).cpu_ms, 'number');
    } finally { await stop(s); rmSync(empty, { recursive: true, force: true }); }
  });

  test('max_concurrent x max_processes above kernel.pid_max is refused, naming both settings', () => {
    const pidMax = Number(readFileSync('/proc/sys/kernel/pid_max', 'utf8'));
    const conc = Math.ceil(pidMax / 1024) + 1;
    const r = spawnSync(BIN, ['--port', '1', '--max-concurrent', String(conc), '--max-processes', '1024'], { encoding: 'utf8', timeout: 10000 });
    assert.equal(r.status, 2, r.stderr);
    assert.match(r.stderr, /--max-concurrent.*--max-processes.*kernel\.pid_max/);
  });

  test('control: the same --max-concurrent with fewer processes per run starts', async () => {
    const pidMax = Number(readFileSync('/proc/sys/kernel/pid_max', 'utf8'));
    const s = await start(['--max-concurrent', String(Math.ceil(pidMax / 1024) + 1), '--max-processes', '16', '--processes', '16']);
    await stop(s);
  });
});

after(() => {
  // nothing of this file's servers may be left in the machine's cgroup tree
  const left = leftovers(`cgtest-${process.pid}`);
  if (left.length) execFileSync('ls', ['-d', ...left], { stdio: 'inherit' });
  assert.deepEqual(left, []);
});
