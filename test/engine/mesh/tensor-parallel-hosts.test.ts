// tp2 x pp2 across two "hosts": two network namespaces joined by a veth link
// (test/launch/netns.ts), each running `atscale launch --nnodes 2 --node-rank I
// --nproc-per-node 2`, so the tensor-parallel pairs sit on one host (tp innermost, as Megatron
// places them on a node) and the pipeline's activations and gradients cross the link. 20 steps
// with dropout 0.1 give the losses of one process within 1e-5 relative.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CLI, collect } from '../../launch/helpers.js';
import { HOST_ADDRS, TwoHosts, netnsUnavailable } from '../../launch/netns.js';

const skip = netnsUnavailable();
const SECRET = '5d'.repeat(32);
let hosts: TwoHosts;
const work = mkdtempSync(join(tmpdir(), 'atscale-tp-hosts-'));
const corpus = join(work, 'corpus.txt');
writeFileSync(corpus, Array.from({ length: 300 }, (_, i) => `${i} little pigs went to market, ${i * 7} stayed home.\n`).join(''));
const TRAIN = ['train', '--data', corpus, '--n-layer', '4', '--n-head', '4', '--n-embd', '32', '--block-size', '16', '--dropout', '0.1', '--eval-interval', '20', '--eval-iters', '1', '--log-interval', '1', '--threads', '1', '--peak-gflops', '10', '--quiet', '--max-iters', '20', '--lr', '0.003', '--warmup-iters', '2', '--batch-size', '4', '--grad-accum', '4'];

before(() => {
  if (!skip) hosts = TwoHosts.create();
});
after(() => {
  hosts?.close();
  rmSync(work, { recursive: true, force: true });
});

function losses(dir: string): number[] {
  return readFileSync(join(dir, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { loss?: number }).filter((r) => r.loss !== undefined).map((r) => r.loss!);
}

test('2 hosts x 2 ranks, tp2 x pp2: the losses of one process', { skip }, async (t) => {
  const one = join(work, 'one');
  const r = spawnSync(process.execPath, [CLI, ...TRAIN, '--out', one], { encoding: 'utf8', timeout: 180_000, env: { ...process.env, WORLD_SIZE: '1' } });
  assert.equal(r.status, 0, r.stderr);
  const out = join(work, 'mesh');
  // Both "hosts" share this filesystem, as nodes sharing a volume would; rank 0 writes the metrics.
  const env = { PATH: process.env.PATH, ATSCALE_JOB_SECRET: SECRET };
  const runs = await Promise.all(
    ([0, 1] as const).map((i) =>
      collect(hosts.spawn(i, [process.execPath, CLI, 'launch', '--nnodes', '2', '--node-rank', String(i), '--nproc-per-node', '2', '--master-addr', HOST_ADDRS[0], '--master-port', '29641', '--timeout-ms', '60000', '--', process.execPath, CLI, ...TRAIN, '--tensor-model-parallel-size', '2', '--pipeline-model-parallel-size', '2', '--out', out], env), 240_000),
    ),
  );
  for (const run of runs) assert.equal(run.code, 0, run.stdout + run.stderr);
  assert.match(runs[0]!.stdout + runs[0]!.stderr, /mesh: dp 1 x pp 2 x tp 2/);
  const a = losses(one);
  const b = losses(out);
  assert.equal(a.length, 20);
  assert.equal(b.length, 20);
  const worst = Math.max(...a.map((x, i) => Math.abs(x - b[i]!) / x));
  t.diagnostic(`max relative loss difference vs one process: ${worst.toExponential(2)}`);
  assert.ok(worst < 1e-5, `max relative loss difference ${worst}`);
  assert.ok(a[19]! < a[0]! - 0.2, `loss fell from ${a[0]} to ${a[19]}`);
});
