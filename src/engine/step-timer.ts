// Median milliseconds of one training step of a model shape on this machine (random tokens,
// compile time excluded): the measurement behind calibration and the training benchmark.
import { type Architecture, createModel } from '../models/registry.js';
import { createTrainer } from './mesh-trainer.js';
import { Mesh } from './mesh/mesh.js';
import { Rng } from '../tensor/rng.js';
import { median } from '../runtime/gemm-probe.js';

/** With `forward`, the same trainer's forward pass (its evaluation loss, no dropout) is timed
 * too, interleaved with the steps: `forwardMs`. */
export async function timeTrainingStep(arch: Architecture, batch: number, opts: { threads?: number; iters?: number; warmup?: number; forward?: boolean } = {}): Promise<{ msPerIter: number; params: number; all: number[]; forwardMs?: number }> {
  const model = createModel(arch);
  const c = model.dims;
  const trainer = await createTrainer(model, Mesh.single(), { shape: { batch, seq: c.blockSize }, optimizer: { lr: 1e-3, beta1: 0.9, beta2: 0.99, eps: 1e-8, weightDecay: 0.1 }, gradClip: 1, gradAccum: 1, seed: 1, threads: opts.threads });
  const rng = new Rng(3);
  const tokens = () => Int32Array.from({ length: batch * c.blockSize }, () => rng.int(c.vocabSize));
  const all: number[] = [];
  const forward: number[] = [];
  const warmup = opts.warmup ?? 2;
  for (let i = 0; i < warmup + (opts.iters ?? 6); i++) {
    const b = { x: tokens(), y: tokens() };
    const t0 = performance.now();
    await trainer.step([b], 1e-3, i);
    if (i >= warmup) all.push(performance.now() - t0);
    if (!opts.forward) continue;
    const t1 = performance.now();
    await trainer.evalLoss(b);
    if (i >= warmup) forward.push(performance.now() - t1);
  }
  return { msPerIter: median(all), params: trainer.layout.size, all, ...(opts.forward ? { forwardMs: median(forward) } : {}) };
}
