// Hung peers in real processes: a rank stopped with SIGSTOP (its sockets stay open, so only
// silence gives it away) makes the launcher and every other rank exit within the configured
// timeout plus a bounded grace, naming the rank and host; nothing is left running.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { FIXTURES, collect, isAlive, startLauncher, waitFor } from './helpers.js';

const LOOP_WORKER = join(FIXTURES, 'loop-worker.mjs');

async function stopOneRank(args: string[], victim: number) {
  const child = startLauncher([...args, '--', process.execPath, LOOP_WORKER]);
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  const run = collect(child, 60_000);
  await waitFor('every rank to be in its all-reduce loop', () => (out.match(/\] LOOP /g) ?? []).length === 3, 30_000);
  const pids = [...out.matchAll(/\] START (.*)$/gm)].map((m) => JSON.parse(m[1]!) as { rank: number; pid: number });
  const pid = pids.find((p) => p.rank === victim)!.pid;
  process.kill(pid, 'SIGSTOP');
  const r = await run;
  await waitFor('killed processes to be reaped', () => pids.every((p) => !isAlive(p.pid)), 5000).catch(() => {});
  const left = pids.filter((p) => isAlive(p.pid));
  for (const p of left) process.kill(p.pid, 'SIGKILL');
  assert.deepEqual(left, [], 'processes left running after the launcher exited');
  return r;
}

test('a SIGSTOPped rank is found by its missing heartbeats: killed, the job stopped, rank and host named', async () => {
  // The collective timeout is long (60 s): only the heartbeat can end this run in time.
  const r = await stopOneRank(['--nproc-per-node', '3', '--timeout-ms', '60000', '--heartbeat-timeout-ms', '1500', '--stop-grace-ms', '1000'], 1);
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stderr, /atscale launch: rank 1 \(pid \d+\) on host \S+ sent no heartbeat for \d+ ms \(stopped by a signal, or its event loop is blocked; limit --heartbeat-timeout-ms 1500\); stopped the other 2 workers/);
});

test('without heartbeats, the other ranks time out naming the stopped rank and exit; the launcher follows', async () => {
  const r = await stopOneRank(['--nproc-per-node', '3', '--timeout-ms', '1500', '--heartbeat-timeout-ms', '0', '--stop-grace-ms', '1000'], 2);
  assert.notEqual(r.code, 0);
  assert.match(r.stderr, /FAILED .*rank 2 did not answer within 1500 ms/);
});
