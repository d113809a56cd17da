// Median milliseconds of one training step of a model shape on this machine (random tokens,
// compile time excluded): the measurement behind calibration and the training benchmark.
import { type Architecture, createModel } from '../models/registry.js';
import { createTrainer, singleLayout } from './mesh-trainer.js';
import { Mesh } from './mesh/mesh.js';
import { Rng } from '../tensor/rng.js';
import { median } from '../runtime/median.js';

type Recompute = 'none' | 'selective';

/** A one-process trainer of shape (arch, batch). `recompute` omitted: the fused step's default. */
async function timedTrainer(arch: Architecture, batch: number, threads?: number, recompute?: Recompute) {
  const model = createModel(arch);
  const trainer = await createTrainer(model, Mesh.single(), { shape: { batch, seq: model.dims.blockSize }, optimizer: { lr: 1e-3, beta1: 0.9, beta2: 0.99, eps: 1e-8, weightDecay: 0.1 }, gradClip: 1, gradAccum: 1, seed: 1, threads, ...(recompute ? { layout: singleLayout(recompute) } : {}) });
  return { model, trainer };
}

export async function timeTrainingStep(arch: Architecture, batch: number, opts: { threads?: number; iters?: number; warmup?: number; recompute?: Recompute } = {}): Promise<{ msPerIter: number; params: number; all: number[] }> {
  const { model, trainer } = await timedTrainer(arch, batch, opts.threads, opts.recompute);
  const c = model.dims;
  const rng = new Rng(3);
  const tokens = () => Int32Array.from({ length: batch * c.blockSize }, () => rng.int(c.vocabSize));
  const all: number[] = [];
  const warmup = opts.warmup ?? 2;
  for (let i = 0; i < warmup + (opts.iters ?? 6); i++) {
    const b = { x: tokens(), y: tokens() };
    const t0 = performance.now();
    await trainer.step([b], 1e-3, i);
    if (i >= warmup) all.push(performance.now() - t0);
  }
  return { msPerIter: median(all), params: trainer.layout.size, all };
}

/**
 * Several shapes timed in alternation: every trainer is built and warmed up first, then each
 * round runs `reps[i]` steps of shape i (and its forward pass, with `forward`) in turn, so a
 * burst of load on a shared host lands on all of them rather than on one. Medians per shape,
 * per step.
 */
export async function timeTrainingStepsTogether(shapes: { arch: Architecture; batch: number; reps: number }[], opts: { threads?: number; rounds?: number; forward?: boolean } = {}): Promise<{ msPerIter: number; forwardMs?: number }[]> {
  const rng = new Rng(3);
  const runs = [];
  for (const s of shapes) {
    // No recomputation: the lowering the planner's byte counts describe (calibrate.ts).
    const { model, trainer } = await timedTrainer(s.arch, s.batch, opts.threads, 'none');
    const n = s.batch * model.dims.blockSize;
    const vocab = model.dims.vocabSize;
    const b = { x: Int32Array.from({ length: n }, () => rng.int(vocab)), y: Int32Array.from({ length: n }, () => rng.int(vocab)) };
    for (let i = 0; i < 2; i++) {
      await trainer.step([b], 1e-3, i);
      if (opts.forward) await trainer.evalLoss(b);
    }
    runs.push({ trainer, b, reps: s.reps, steps: [] as number[], forward: [] as number[] });
  }
  for (let round = 0; round < (opts.rounds ?? 5); round++) {
    for (const r of runs) {
      const t0 = performance.now();
      for (let i = 0; i < r.reps; i++) await r.trainer.step([r.b], 1e-3, 2 + round * r.reps + i);
      r.steps.push((performance.now() - t0) / r.reps);
      if (!opts.forward) continue;
      const t1 = performance.now();
      for (let i = 0; i < r.reps; i++) await r.trainer.evalLoss(r.b);
      r.forward.push((performance.now() - t1) / r.reps);
    }
  }
  return runs.map((r) => ({ msPerIter: median(r.steps), ...(opts.forward ? { forwardMs: median(r.forward) } : {}) }));
}
