// `atscale launch --nnodes MIN:MAX` across two "hosts" (network namespaces): when one host is
// lost (its link down, its launcher and workers killed) the rendezvous on the other notices,
// re-forms the group with the node that remains, and `atscale train` resumes from the newest
// complete checkpoint at world size 2, ending bit-identical to the world-4 run continued at
// world size 2 from that checkpoint. With MIN not met the job exits with a message naming it.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { References, runTrial, writeCorpus } from '../../bench/chaos-trial.js';
import net from 'node:net';
import { RendezvousClient } from '../../src/launch/rendezvous-client.js';
import { CLI, collect, launch, startLauncher } from './helpers.js';
import { HOST_ADDRS, TwoHosts, netnsUnavailable } from './netns.js';

const skip = netnsUnavailable();
let hosts: TwoHosts;
const work = mkdtempSync(join(tmpdir(), 'atscale-elastic-nnodes-'));
before(() => {
  if (!skip) hosts = TwoHosts.create();
});
after(() => {
  hosts?.close();
  rmSync(work, { recursive: true, force: true });
});

test('a host is lost: the job re-forms on the remaining host at world size 2 and ends as the new layout would', { skip }, async () => {
  const corpus = join(work, 'corpus.txt');
  writeCorpus(corpus);
  const job = { work, corpus, steps: 20, every: 5, seed: 7, trialTimeoutMs: 150_000 };
  const r = await runTrial(job, hosts, new References(job), 'host-loss', 7, 29651);
  assert.ok(r.recovered, `${r.note}; ${r.summary}`);
  assert.equal(r.world_after, 2);
  assert.match(r.summary, /job succeeded after 1 of at most 3 restarts \(restart 1: node 1 \(.*10\.77\.0\.2\) was lost: .*; resumed with 1 node, world size 2 \(was 4\)\)/);
  assert.ok(r.resumed_step !== null && r.resumed_step >= r.published_step, `resumed from ${r.resumed_step}, the newest checkpoint at the fault was ${r.published_step}`);
  const meta = JSON.parse(readFileSync(join(work, 'trial-29651', 'ckpt', 'meta.json'), 'utf8')) as { iter: number; world: number };
  assert.deepEqual([meta.iter, meta.world], [20, 2]);
  assert.ok(r.bit_identical, r.note);
});

test('MIN not met: with --nnodes 2:2 and one host gone, the job stops with a message naming the shortfall', { skip }, async () => {
  const env = { PATH: process.env.PATH, ATSCALE_JOB_SECRET: 'c7'.repeat(32) };
  const worker = [process.execPath, '-e', 'setTimeout(() => {}, 60000)'];
  const args = (i: number) => [process.execPath, CLI, 'launch', '--nnodes', '2:2', '--node-rank', String(i), '--nproc-per-node', '1', '--master-addr', HOST_ADDRS[0], '--master-port', '29652', '--max-restarts', '2', '--rdzv-timeout-ms', '3000', '--rdzv-keepalive-ms', '2000', '--stop-grace-ms', '500', '--', ...worker];
  const h0 = collect(hosts.spawn(0, args(0), env), 60_000);
  const c1 = hosts.spawn(1, args(1), env);
  const h1 = collect(c1, 60_000);
  let seen = '';
  c1.stderr!.on('data', (d: Buffer) => (seen += d.toString()));
  while (!/round 0: ranks/.test(seen)) await new Promise((r) => setTimeout(r, 50));
  c1.kill('SIGKILL'); // the `ip netns exec` process is the launcher itself
  const [r0] = await Promise.all([h0, h1]);
  assert.notEqual(r0.code, 0);
  assert.match(r0.stderr, /worker group of round 0 failed \(node 1 \(.*\) was lost: connection (closed|error)/);
  assert.match(r0.stderr, /job failed: only 1 node \(.*\) joined round 1 within 3000 ms, and --nnodes 2:2 needs at least 2 after 1 of at most 2 restarts/);
});

test('elastic restarts run out: every launcher exits with the failing rank status and the same one-line summary', async () => {
  const env = { ATSCALE_JOB_SECRET: 'd4'.repeat(32) };
  const worker = [process.execPath, '-e', 'process.exit(process.env.RANK === "3" ? 3 : 0)'];
  // Rank 2 may still be running when rank 3 fails (then it is stopped, and the line says so).
  const args = (i: number) => ['--nnodes', '2:2', '--node-rank', String(i), '--nproc-per-node', '2', '--master-addr', '127.0.0.1', '--master-port', '29653', '--max-restarts', '1', '--stop-grace-ms', '500', '--', ...worker];
  const runs = await Promise.all([0, 1].map((i) => launch(args(i), env)));
  const summaries = runs.map((r) => r.stderr.split('\n').filter((l) => l.startsWith('atscale launch: job ')));
  for (const [i, r] of runs.entries()) {
    assert.equal(r.code, 3, r.stderr);
    assert.equal(summaries[i]!.length, 1, r.stderr);
    assert.match(summaries[i]![0]!, /^atscale launch: job failed: node 1 \(.*\): rank 3 \(pid \d+\) exited with status 3(; stopped the other 1 worker)? after 1 of at most 1 restart \(restart 1: node 1 \(.*\): rank 3 \(pid \d+\) exited with status 3(; stopped the other 1 worker)?; resumed with 2 nodes, world size 4\)$/);
  }
  assert.equal(summaries[0]![0], summaries[1]![0]);
});

test('the rendezvous port refuses garbage, a wrong secret and an unauthenticated client, names them, and the job goes on', async () => {
  const env = { ATSCALE_JOB_SECRET: 'e5'.repeat(32) };
  const worker = [process.execPath, '-e', 'setTimeout(() => {}, 2500)'];
  const child = startLauncher(['--nnodes', '1:1', '--node-rank', '0', '--master-addr', '127.0.0.1', '--master-port', '29654', '--', ...worker], env);
  const run = collect(child, 30_000);
  let seen = '';
  child.stderr!.on('data', (d: Buffer) => (seen += d.toString()));
  while (!/round 0: ranks/.test(seen)) await new Promise((r) => setTimeout(r, 50));
  const poke = (bytes: Buffer) => new Promise<void>((resolve) => {
    const s = net.connect({ host: '127.0.0.1', port: 29654 }, () => s.write(bytes));
    s.on('error', () => resolve());
    s.on('close', () => resolve());
  });
  await poke(Buffer.from('GET / HTTP/1.1\r\n\r\n'.repeat(4)));
  const wrong = await RendezvousClient.connect({ host: '127.0.0.1', port: 29654, secret: Buffer.from('ab'.repeat(32), 'hex'), identity: 'intruder', connectTimeoutMs: 5000, keepaliveMs: 5000 }).then(() => 'joined', (e: Error) => e.message);
  assert.match(wrong, /does not know this job's secret|refused|secret/);
  const r = await run;
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, /elastic rendezvous 127\.0\.0\.1:29654|launcher at 127\.0\.0\.1:\d+: .*(magic|secret)/);
  assert.match(r.stderr, /bad frame magic/);
  assert.match(r.stderr, /job succeeded after 0 of at most 0 restarts/);
});
