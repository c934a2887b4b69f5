// Run cgroups ("mcp-<replica id>-run-<execution id>") under this process's own
// cgroup in each v1 hierarchy, for tests that must leave none behind.
import { readFileSync, readdirSync, rmdirSync } from 'node:fs';
import path from 'node:path';

const ROOT = '/sys/fs/cgroup';
export const CTRLS = ['memory', 'pids', 'cpu', 'cpuacct', 'freezer'];
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// This process's cgroup in each v1 hierarchy (a server we start begins in the same ones).
export function ownCgroupDirs() {
  const dirs = [];
  for (const line of readFileSync('/proc/self/cgroup', 'utf8').trim().split('\n')) {
    const [, ctrls, p] = line.split(':');
    for (const c of ctrls.split(',')) if (CTRLS.includes(c)) dirs.push({ ctrl: c, dir: path.join(ROOT, c, p) });
  }
  return dirs;
}

// Run cgroups of servers whose replica id starts with `replica`.
export function runCgroups(replica) {
  const left = [];
  for (const { dir } of ownCgroupDirs()) {
    try {
      for (const n of readdirSync(dir)) if (n.startsWith(`mcp-${replica}`) && n.includes('-run-')) left.push(path.join(dir, n));
    } catch { /* hierarchy not readable */ }
  }
  return left;
}

// The server with replica id `replica` was SIGKILLed (its runs died with it, by PR_SET_PDEATHSIG):
// removes the run cgroups it could not, once their last processes are gone.
export async function removeRunCgroups(replica, ms = 10000) {
  const until = Date.now() + ms;
  for (;;) {
    for (const d of runCgroups(replica)) {
      try { rmdirSync(d); } catch { /* still busy */ }
    }
    if (runCgroups(replica).length === 0 || Date.now() > until) return runCgroups(replica);
    await sleep(20);
  }
}

// The --replica-id a server was started with (startServer passes it through).
export const replicaOf = (server) => {
  const a = server.proc.spawnargs;
  const i = a.indexOf('--replica-id');
  return i >= 0 ? a[i + 1] : undefined;
};
