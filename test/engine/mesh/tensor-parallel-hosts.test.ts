// tp2 x pp2 across two "hosts": two network namespaces joined by a veth link
// (test/launch/netns.ts), each running `atscale launch --nnodes 2 --node-rank I
// --nproc-per-node 2`, so the tensor-parallel pairs sit on one host (tp innermost, as Megatron
// places them on a node) and the pipeline's activations and gradients cross the link. 20 steps
// with dropout 0.1 give the losses of one process within 1e-5 relative; in float64 (--dtype
// float64) the consolidated checkpoint also equals the one-process one within 1e-6.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { collect } from '../../launch/helpers.js';
import { CLI, meshCase, runTrain, sameCheckpoint, sameLosses } from './mesh-case.js';
import { HOST_ADDRS, TwoHosts, netnsUnavailable } from '../../launch/netns.js';

const skip = netnsUnavailable();
const SECRET = '5d'.repeat(32);
let hosts: TwoHosts;
const { work, FLAGS: TRAIN } = meshCase('atscale-tp-hosts-');

before(() => {
  if (!skip) hosts = TwoHosts.create();
});
after(() => {
  hosts?.close();
  rmSync(work, { recursive: true, force: true });
});

/** One process, then tp2 x pp2 over the two hosts, with the same extra flags; returns both dirs. */
async function oneAndTwoHosts(name: string, extra: string[], port: number): Promise<{ one: string; out: string }> {
  const one = join(work, `one-${name}`);
  runTrain([...TRAIN, ...extra], 1, one);
  const out = join(work, `mesh-${name}`);
  // Both "hosts" share this filesystem, as nodes sharing a volume would; rank 0 writes the metrics.
  const env = { PATH: process.env.PATH, ATSCALE_JOB_SECRET: SECRET };
  const runs = await Promise.all(
    ([0, 1] as const).map((i) =>
      collect(hosts.spawn(i, [process.execPath, CLI, 'launch', '--nnodes', '2', '--node-rank', String(i), '--nproc-per-node', '2', '--master-addr', HOST_ADDRS[0], '--master-port', String(port), '--timeout-ms', '60000', '--', process.execPath, CLI, ...TRAIN, ...extra, '--tensor-model-parallel-size', '2', '--pipeline-model-parallel-size', '2', '--out', out], env), 240_000),
    ),
  );
  for (const run of runs) assert.equal(run.code, 0, run.stdout + run.stderr);
  assert.match(runs[0]!.stdout + runs[0]!.stderr, /mesh: dp 1 x pp 2 x tp 2/);
  return { one, out };
}

test('2 hosts x 2 ranks, tp2 x pp2: the losses of one process', { skip }, async (t) => {
  const { one, out } = await oneAndTwoHosts('f32', [], 29641);
  const worst = sameLosses(one, out, 'tp2 x pp2 on 2 hosts');
  t.diagnostic(`max relative loss difference vs one process: ${worst.toExponential(2)}`);
});

test('2 hosts x 2 ranks, tp2 x pp2 in float64: the losses and the checkpoint of one process (1e-6)', { skip }, async (t) => {
  const { one, out } = await oneAndTwoHosts('f64', ['--dtype', 'float64'], 29642);
  const loss = sameLosses(one, out, 'float64 tp2 x pp2 on 2 hosts');
  const { worst } = sameCheckpoint(one, out, 'float64 tp2 x pp2 on 2 hosts', 1e-6);
  t.diagnostic(`max relative loss difference ${loss.toExponential(2)}, max checkpoint difference ${worst.toExponential(2)}`);
});
