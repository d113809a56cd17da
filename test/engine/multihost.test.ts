// ZeRO across two "hosts": two network namespaces joined by a veth link (test/launch/netns.ts),
// each running `atscale launch --nnodes 2 --node-rank I --nproc-per-node 2`, so ranks talk over
// TCP between their own IP addresses. Stages 2 and 3 must give the same losses as one process.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GPT } from '../../src/models/gpt.js';
import { MeshTrainer } from '../../src/engine/mesh-trainer.js';
import { Mesh } from '../../src/engine/mesh/mesh.js';
import { parseDeepSpeedConfig } from '../../src/engine/ds-config.js';
import { zeroFormula, type MemoryReport } from '../../src/engine/zero/index.js';
import { cosineLr } from '../../src/optim/schedule.js';
import { CLI, collect } from '../launch/helpers.js';
import { HOST_ADDRS, TwoHosts, netnsUnavailable } from '../launch/netns.js';
import { corpus, dsConfig, MODEL, rankBatches, SEQ, WORKER, type ZeroCase } from './zero-case.js';

const skip = netnsUnavailable();
const SECRET = '3c'.repeat(32);
let hosts: TwoHosts;

before(() => {
  if (!skip) hosts = TwoHosts.create();
});
after(() => hosts?.close());

async function referenceLosses(c: ZeroCase): Promise<number[]> {
  const cfg = parseDeepSpeedConfig(dsConfig(c), 1);
  const t = new MeshTrainer(new GPT(MODEL), Mesh.single(), { shape: { batch: c.globalMicro, seq: SEQ }, optimizer: cfg.optimizer, gradClip: cfg.gradClip, gradAccum: c.gas, seed: c.seed, threads: 1 });
  const batches = rankBatches(c, corpus(), 0, 1);
  const out: number[] = [];
  for (let it = 0; it < c.steps; it++) out.push((await t.step(batches.next().value!, cosineLr(cfg.schedule, it), it)).loss);
  return out;
}

for (const [stage, port] of [[2, 29631], [3, 29632]] as const) {
  test(`2 hosts x 2 ranks, ZeRO stage ${stage}: same losses as one process`, { skip }, async () => {
    const c: ZeroCase = { stage, world: 4, globalMicro: 8, gas: 1, steps: 20, seed: 1337, checkpointAt: 10 };
    const dir = mkdtempSync(join(tmpdir(), 'atscale-zero-mh-'));
    try {
      // Both "hosts" share this filesystem, as nodes sharing a checkpoint volume would.
      const env = { PATH: process.env.PATH, ATSCALE_JOB_SECRET: SECRET, ZERO_CASE: JSON.stringify({ ...c, ckptDir: join(dir, 'ckpt') }) };
      const runs = await Promise.all(
        ([0, 1] as const).map((i) =>
          collect(hosts.spawn(i, [process.execPath, CLI, 'launch', '--nnodes', '2', '--node-rank', String(i), '--nproc-per-node', '2', '--master-addr', HOST_ADDRS[0], '--master-port', String(port), '--timeout-ms', '30000', '--', process.execPath, WORKER], env), 90_000),
        ),
      );
      for (const r of runs) assert.equal(r.code, 0, r.stderr);
      const results = new Map<number, Record<string, unknown>>();
      for (const m of runs.map((r) => r.stdout).join('\n').matchAll(/^\[rank (\d+)\] RESULT (.*)$/gm)) results.set(Number(m[1]), JSON.parse(m[2]!));
      assert.deepEqual([...results.keys()].sort(), [0, 1, 2, 3]);
      const ref = await referenceLosses(c);
      for (const [rank, res] of results) {
        const losses = res.losses as number[];
        const diff = Math.max(...losses.map((x, i) => Math.abs(x - ref[i]!) / Math.abs(ref[i]!)));
        console.log(`2 hosts x 2 ranks, stage ${stage}, rank ${rank}: max relative loss difference vs one process ${diff.toExponential(2)}`);
        assert.ok(diff <= 1e-5, `rank ${rank}: ${diff}`);
        assert.deepEqual(res.resumedLosses, losses.slice(10), 'the sharded checkpoint written from both hosts resumes exactly');
        const m = res.memory as MemoryReport;
        const f = zeroFormula(stage, res.params as number, 4);
        assert.ok(Math.abs(m.gradBytes - f.gradBytes) <= 0.01 * f.gradBytes && Math.abs(m.paramBytes - f.paramBytes) <= 0.01 * f.paramBytes);
      }
      assert.equal(results.get(0)!.consolidated, true);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
}
