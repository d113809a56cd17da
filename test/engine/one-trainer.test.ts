// One trainer: the mesh of one, dp2 with ZeRO-1/2/3 and a 2-stage pipeline are all the same
// class built by the same factory (createTrainer), which picks the step from the layout alone.
// The mesh of one takes the fused one-graph step; the 2-rank layouts (real processes, real
// sockets) give its losses within 1e-5 relative; ZeRO-2 with a pipeline is refused with the
// reason; and the universal checkpoint each layout writes loads into the mesh of one with
// exactly the parameters the ranks hold.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createTrainer, MeshTrainer } from '../../src/engine/mesh-trainer.js';
import { Mesh } from '../../src/engine/mesh/mesh.js';
import { FusedStep } from '../../src/engine/step/fused.js';
import { corpus, modelOf, rankBatches, SEQ } from './zero-case.js';
import { ONE_CASE, ONE_OPTIONS, layoutsOf, paramSums } from './one-trainer-case.js';
import { runRanks } from './spawn-ranks.js';

const WORKER = fileURLToPath(new URL('./one-trainer-worker.js', import.meta.url));
const single = () => ({ ...ONE_OPTIONS, shape: { batch: ONE_CASE.globalMicro, seq: SEQ } });
const relDiff = (a: number[], b: number[]) => Math.max(...a.map((x, i) => Math.abs(x - b[i]!) / Math.abs(b[i]!)));

test('the mesh of one takes the fused one-graph step', async () => {
  const t = await createTrainer(modelOf(ONE_CASE), Mesh.single(), { ...single(), gradAccum: 1 });
  assert.ok(t instanceof MeshTrainer);
  assert.equal(t.kind, 'fused');
  assert.ok(t.strategy instanceof FusedStep);
  assert.equal(t.strategy.stepPrograms, 1, 'one compiled graph runs the whole step');
  const b = rankBatches(ONE_CASE, corpus(), 0, 1).next().value![0]!;
  const r = await t.step([b], 1e-3, 0);
  assert.ok(Number.isFinite(r.loss) && r.loss > 0);
  assert.deepEqual(Object.keys(t.memoryReport()), ['paramBytes', 'gradBytes', 'optimBytes']);
  // With accumulation the same step runs as a micro-step graph and an update graph.
  const acc = await createTrainer(modelOf(ONE_CASE), Mesh.single(), single());
  assert.equal((acc.strategy as FusedStep).stepPrograms, 2);
});

test('the mesh of one refuses layouts that need a process group, naming the fix', () => {
  assert.throws(() => new MeshTrainer(modelOf(ONE_CASE), Mesh.single(), { ...single(), zeroStage: 2 }), /ZeRO stage 2 runs its step over a process group.*Mesh\.single\(\).*Mesh\.create/);
  const layout = { mesh: { dp: 1, pp: 1, tp: 1 }, virtual: 1, sequenceParallel: false, recompute: 'full' as const, schedule: '1f1b' as const };
  assert.throws(() => new MeshTrainer(modelOf(ONE_CASE), Mesh.single(), { ...single(), layout }), /recompute full runs its step over a process group/);
  assert.throws(() => new MeshTrainer(modelOf(ONE_CASE), Mesh.single(), { ...single(), layout: { ...layout, mesh: { dp: 2, pp: 1, tp: 1 } } }), /parallel layout is dp 2 x pp 1 x tp 1 but the mesh is dp 1 x pp 1 x tp 1/);
});

test('dp2 with ZeRO-1/2/3 and pp2 are the same trainer: the losses of the mesh of one, and checkpoints it loads', async () => {
  const ref = await createTrainer(modelOf(ONE_CASE), Mesh.single(), single());
  const batches = rankBatches(ONE_CASE, corpus(), 0, 1);
  const refLosses: number[] = [];
  for (let it = 0; it < ONE_CASE.steps; it++) refLosses.push((await ref.step(batches.next().value!, ONE_OPTIONS.optimizer.lr, it)).loss);
  assert.ok(refLosses.at(-1)! < refLosses[0]!, `the model learns: ${refLosses.join(', ')}`);
  const dir = mkdtempSync(join(tmpdir(), 'atscale-one-trainer-'));
  try {
    const runs = await runRanks(WORKER, 2, { ONE_TRAINER_DIR: dir });
    for (const r of runs) assert.equal(r.code, 0, `rank ${r.rank} failed: ${r.stderr}`);
    const expected: Record<string, string> = { 'dp2-zero1': 'zero-flat', 'dp2-zero2': 'zero-segmented', 'dp2-zero3': 'zero-segmented', 'pp2-zero1': 'pipeline' };
    const layouts = layoutsOf(2);
    type Res = { name: string; kind?: string; losses?: number[]; memory?: Record<string, number>; sums?: [number, number]; error?: string };
    const byRank = runs.map((r) => r.result!.results as Res[]);
    for (const [i, l] of layouts.entries()) {
      const [a, b] = [byRank[0]![i]!, byRank[1]![i]!];
      assert.equal(a.name, l.name);
      if (l.name === 'pp2-zero2') {
        for (const x of [a, b]) assert.match(x.error ?? '', /ZeRO stage 2 with pipeline parallelism is refused.*use zero_optimization\.stage 0 or 1/);
        continue;
      }
      assert.equal(a.error, undefined, `${l.name}: ${a.error}`);
      assert.equal(a.kind, expected[l.name], l.name);
      assert.equal(b.kind, a.kind);
      const d = relDiff(a.losses!, refLosses);
      console.log(`${l.name} (${a.kind} step): max relative loss difference vs the mesh of one ${d.toExponential(2)}`);
      assert.ok(d <= 1e-5, `${l.name}: ${a.losses} vs ${refLosses}`);
      assert.deepEqual(a.sums, b.sums, `${l.name}: every rank gathers the same full parameters`);
      // The checkpoint written by this layout resumes on the mesh of one with the same parameters.
      const t = await createTrainer(modelOf(ONE_CASE), Mesh.single(), single());
      const { meta, files } = await t.load(join(dir, l.name));
      assert.equal(meta.iter, ONE_CASE.steps);
      assert.equal(files['note.txt'], l.name);
      assert.deepEqual(paramSums(await t.fullParams()), a.sums, `${l.name}: checkpoint parameters`);
    }
    // ZeRO-3 shards the parameters that ZeRO-1 replicates: about half per rank at dp 2.
    const mem = (name: string) => byRank[0]![layouts.findIndex((l) => l.name === name)]!.memory!;
    const ratio = mem('dp2-zero3').paramBytes! / mem('dp2-zero1').paramBytes!;
    assert.ok(ratio > 0.45 && ratio < 0.55, `ZeRO-3 / ZeRO-1 parameter bytes ${ratio}`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
