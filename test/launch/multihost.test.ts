// Two hosts x two ranks: each "host" is a network namespace with its own address, joined by a
// veth link (netns.ts), each running its own `atscale launch --nnodes 2 --node-rank I`.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { CLI, FIXTURES, type LaunchRun, collect, isAlive } from './helpers.js';
import { HOST_ADDRS, TwoHosts, netnsUnavailable } from './netns.js';

const skip = netnsUnavailable();
const DIST_BUILT = existsSync(fileURLToPath(new URL('../../src/dist/index.js', import.meta.url)));
const SECRET = '5e'.repeat(32);
const TIMEOUT_MS = 20_000;
let hosts: TwoHosts;

before(() => {
  if (!skip) hosts = TwoHosts.create();
});
after(() => hosts?.close());

/** Runs one launcher per host with the same worker and waits for both. */
async function launchBothHosts(worker: string, port: number, extraEnv: NodeJS.ProcessEnv = {}): Promise<[LaunchRun, LaunchRun]> {
  const env = { PATH: process.env.PATH, ATSCALE_JOB_SECRET: SECRET, ...extraEnv };
  const runs = ([0, 1] as const).map((i) =>
    collect(
      hosts.spawn(i, [process.execPath, CLI, 'launch', '--nnodes', '2', '--node-rank', String(i), '--nproc-per-node', '2', '--master-addr', HOST_ADDRS[0], '--master-port', String(port), '--timeout-ms', String(TIMEOUT_MS), '--stop-grace-ms', '1000', '--', process.execPath, worker], env),
      TIMEOUT_MS * 2,
    ),
  );
  return (await Promise.all(runs)) as [LaunchRun, LaunchRun];
}

function jsonLines(tag: string, out: string): Map<number, Record<string, unknown>> {
  const m = new Map<number, Record<string, unknown>>();
  for (const line of out.matchAll(new RegExp(`^\\[rank (\\d+)\\] ${tag} (.*)$`, 'gm'))) m.set(Number(line[1]), JSON.parse(line[2]!));
  return m;
}

test('2 hosts x 2 ranks: every rank reaches the master address over the veth link', { skip }, async () => {
  const [a, b] = await launchBothHosts(join(FIXTURES, 'tcp-echo-worker.mjs'), 29610);
  assert.equal(a.code, 0, a.stderr);
  assert.equal(b.code, 0, b.stderr);
  const echoes = new Map([...jsonLines('ECHO', a.stdout), ...jsonLines('ECHO', b.stdout)]);
  assert.deepEqual([...echoes.keys()].sort(), [0, 1, 2, 3]);
  for (const [rank, e] of echoes) {
    assert.equal(e.ok, true, `rank ${rank} got a bad echo`);
    // Ranks 2 and 3 live on the second host, so their traffic came over the link.
    assert.equal(e.local, rank < 2 ? HOST_ADDRS[0] : HOST_ADDRS[1]);
  }
  assert.match(a.stderr, /ranks 0-1 of 4 on node 0 of 2/);
  assert.match(b.stderr, /ranks 2-3 of 4 on node 1 of 2/);
  assert.ok(!(a.stdout + a.stderr + b.stdout + b.stderr).includes(SECRET));
});

test('2 hosts x 2 ranks: initProcessGroup() and an all-reduce across both hosts give the exact sum', { skip: skip ?? (DIST_BUILT ? undefined : 'src/dist is not built') }, async () => {
  const [a, b] = await launchBothHosts(join(FIXTURES, 'allreduce-worker.mjs'), 29611);
  assert.equal(a.code, 0, a.stderr);
  assert.equal(b.code, 0, b.stderr);
  const results = new Map([...jsonLines('ALLREDUCE', a.stdout), ...jsonLines('ALLREDUCE', b.stdout)]);
  assert.deepEqual([...results.keys()].sort(), [0, 1, 2, 3]);
  for (const r of results.values()) assert.deepEqual([r.world, r.ok], [4, true]);
});

test('a rank killed on one host: its launcher names it, the other host\'s ranks fail naming a dead rank, nothing is left', { skip: skip ?? (DIST_BUILT ? undefined : 'src/dist is not built') }, async () => {
  const t0 = Date.now();
  const [a, b] = await launchBothHosts(join(FIXTURES, 'allreduce-worker.mjs'), 29612, { FAULT_RANK: '3' });
  const elapsed = Date.now() - t0;
  // Rank 2 may notice first and exit 1 on its own; the launcher still names rank 3 as the cause.
  assert.match(b.stderr, /atscale launch: rank 3 \(pid \d+\) was killed by signal SIGKILL(; also failed: rank 2 exited with status 1)?(; stopped the other 1 worker)?\n/);
  assert.equal(b.code, 128 + 9);
  assert.notEqual(a.code, 0, 'the surviving host must fail too');
  const faults = jsonLines('FAULT', a.stdout);
  // The first of ranks 0 and 1 to notice fails, and its launcher then stops the other, which
  // may or may not have reported by then.
  assert.ok(faults.size >= 1 && [...faults.keys()].every((r) => r === 0 || r === 1), a.stdout + a.stderr);
  for (const f of faults.values()) assert.match(String(f.error), /rank [23]\b/);
  assert.match(a.stderr, /atscale launch: rank [01] \(pid \d+\) exited with status 1/);
  assert.ok(elapsed < TIMEOUT_MS + 10_000, `took ${elapsed} ms`);
  const started = new Map([...jsonLines('START', a.stdout), ...jsonLines('START', b.stdout)]);
  const pids = [...started.values()].map((r) => Number(r.pid));
  assert.equal(pids.length, 4);
  assert.deepEqual(pids.filter(isAlive), []);
  console.log(`fault seen by the other host: ${[...faults.values()].map((f) => `${f.error} after ${f.afterMs} ms`).join(' | ')}; both launchers done in ${elapsed} ms`);
});
