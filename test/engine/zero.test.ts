// ZeRO stages 0-3 in real rank processes over real sockets: the same global batch and seed give
// the same losses as one process on the mesh of one (the fused step) (within 1e-5 relative), the measured per-rank
// bytes equal the ZeRO formulas (within 1%), and sharded checkpoints resume exactly and
// consolidate into one safetensors file with the model's parameter names.
import { test } from 'node:test';
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
import { initProcessGroup } from '../../src/dist/index.js';
import { createTrainer, deepSpeedOptions } from '../../src/engine/mesh-trainer.js';
import { corpus, dsConfig, LLAMA_MODEL, MODEL, modelOf, rankBatches, SEQ, WORKER, type ZeroCase } from './zero-case.js';
import { freePort, runRanks } from './spawn-ranks.js';

const STEPS = 20;
const tokens = corpus();
const references = new Map<string, number[]>();

/** Losses of one process (the mesh of one, fused step) on the whole global batch. */
async function reference(c: ZeroCase): Promise<number[]> {
  const key = `${c.globalMicro}x${c.gas} ${c.arch?.family ?? 'gpt2'}`;
  if (!references.has(key)) {
    const cfg = parseDeepSpeedConfig(dsConfig(c), 1);
    const t = new MeshTrainer(modelOf(c), Mesh.single(), { shape: { batch: c.globalMicro, seq: SEQ }, optimizer: cfg.optimizer, gradClip: cfg.gradClip, gradAccum: c.gas, seed: c.seed, threads: 1 });
    const batches = rankBatches(c, tokens, 0, 1);
    const losses: number[] = [];
    for (let it = 0; it < c.steps; it++) losses.push((await t.step(batches.next().value!, cosineLr(cfg.schedule, it), it)).loss);
    references.set(key, losses);
  }
  return references.get(key)!;
}

function maxRelDiff(a: number[], b: number[]): number {
  assert.equal(a.length, b.length);
  return Math.max(...a.map((x, i) => Math.abs(x - b[i]!) / Math.abs(b[i]!)));
}

function checkMemory(m: MemoryReport, params: number): void {
  const f = zeroFormula(m.stage, params, m.ranks);
  for (const [measured, formula, what] of [[m.paramBytes, f.paramBytes, 'params'], [m.gradBytes, f.gradBytes, 'grads'], [m.optimBytes, f.optimBytes, 'optimizer']] as const) {
    assert.ok(Math.abs(measured - formula) <= 0.01 * formula, `stage ${m.stage}, ${m.ranks} ranks: ${what} ${measured} bytes, formula ${formula}`);
  }
}

async function runCase(c: ZeroCase): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'atscale-zero-'));
  try {
    const ckptDir = c.checkpointAt !== undefined ? join(dir, 'ckpt') : undefined;
    const runs = await runRanks(WORKER, c.world, { ZERO_CASE: JSON.stringify({ ...c, ckptDir }) });
    for (const r of runs) assert.equal(r.code, 0, `rank ${r.rank} failed:\n${r.stderr}`);
    const ref = await reference(c);
    for (const r of runs) {
      const res = r.result!;
      const diff = maxRelDiff(res.losses as number[], ref);
      console.log(`${c.arch?.family ?? 'gpt2'}: stage ${c.stage}, ${c.world} ranks, gas ${c.gas}, rank ${r.rank}: max relative loss difference vs one process ${diff.toExponential(2)}`);
      assert.ok(diff <= 1e-5, `stage ${c.stage} rank ${r.rank}: ${diff} > 1e-5\n${res.losses}\n${ref}`);
      checkMemory(res.memory as MemoryReport, res.params as number);
      if (ckptDir) {
        assert.deepEqual(res.resumedLosses, (res.losses as number[]).slice(c.checkpointAt), 'resuming from the checkpoint repeats the losses exactly');
        assert.deepEqual(res.resumedMeta, { iter: c.checkpointAt });
        assert.deepEqual(res.resumedFiles, { 'note.txt': 'zero test' });
        if (r.rank === 0 && c.stage > 0) assert.equal(res.consolidated, true, 'the consolidated file holds every parameter by name, equal to the saved values');
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const base = { globalMicro: 8, gas: 1, steps: STEPS, seed: 1337 };
for (const stage of [0, 1, 2, 3]) {
  for (const world of [2, 4]) {
    const ck = (stage === 0 && world === 2) || (stage === 1 && world === 4) || (stage === 3 && world === 2) ? { checkpointAt: 10 } : {};
    test(`ZeRO stage ${stage}, ${world} ranks: same losses as one process, ZeRO memory formulas${ck.checkpointAt ? ', checkpoint resume + consolidation' : ''}`, () => runCase({ ...base, stage, world, ...ck }));
  }
}

test('ZeRO with gradient accumulation (2 micro-steps) and small buckets: stages 2 and 3 on 2 ranks match one process', async () => {
  // A 20k-element bucket splits each block into several pieces, exercising many reduce-scatters per segment.
  await runCase({ ...base, globalMicro: 4, gas: 2, stage: 3, world: 2, reduceBucketSize: 20_000 });
  await runCase({ ...base, globalMicro: 4, gas: 2, stage: 2, world: 2, checkpointAt: 7 });
  await runCase({ ...base, globalMicro: 4, gas: 2, stage: 1, world: 2, reduceBucketSize: 20_000 });
});

test('Llama family (GQA, rope scaling, Qwen2 biases) under ZeRO: stage 3 with checkpoint resume and stage 2 with accumulation, 2 ranks, match one process', async () => {
  await runCase({ ...base, stage: 3, world: 2, arch: LLAMA_MODEL, checkpointAt: 10 });
  await runCase({ ...base, globalMicro: 4, gas: 2, stage: 2, world: 2, arch: LLAMA_MODEL });
});

test('stage 0 on a process group of one matches the fused step of the mesh of one: same losses', async () => {
  const c = { ...base, stage: 0, world: 1 };
  const pg = await initProcessGroup({ rank: 0, worldSize: 1, masterAddr: '127.0.0.1', masterPort: await freePort(), secret: 'ab'.repeat(32), timeoutMs: 10_000 });
  try {
    const cfg = parseDeepSpeedConfig(dsConfig(c), 1);
    const t = await createTrainer(new GPT(MODEL), Mesh.create(pg, { dp: 1, pp: 1, tp: 1 }), { ...deepSpeedOptions(cfg), seed: c.seed, threads: 1, shape: { batch: c.globalMicro, seq: SEQ } });
    const batches = rankBatches(c, tokens, 0, 1);
    const losses: number[] = [];
    for (let it = 0; it < c.steps; it++) losses.push((await t.step(batches.next().value!, cosineLr(cfg.schedule, it), it)).loss);
    const diff = maxRelDiff(losses, await reference(c));
    console.log(`stage 0, world size 1: max relative loss difference vs the fused step ${diff.toExponential(2)}`);
    // Not bit-equal: the fused step is one graph, the ZeRO path runs micro-step + update.
    assert.ok(diff <= 1e-5, String(diff));
    assert.ok(losses.at(-1)! < losses[0]! - 0.5, 'the model learns');
    assert.deepEqual(await t.fullParams(), (await t.fullParams()).slice());
    await assert.rejects(t.step([], 1e-3, 0), /needs gradient_accumulation_steps = 1 micro-batches/);
  } finally {
    await pg.destroy();
  }
});
