// The run one-trainer.test.ts repeats on every layout: the ZeRO tests' small GPT (dropout 0),
// 2 micro-batches per step so a 2-stage 1F1B pipeline has one per stage, and the layouts.
import type { MeshShape } from '../../src/engine/mesh/layout.js';
import type { ZeroCase } from './zero-case.js';

export const ONE_CASE: ZeroCase = { stage: 0, world: 1, globalMicro: 4, gas: 2, steps: 4, seed: 11 };
export const ONE_OPTIONS = {
  optimizer: { lr: 3e-3, beta1: 0.9, beta2: 0.99, eps: 1e-8, weightDecay: 0.1 },
  gradClip: 1,
  gradAccum: ONE_CASE.gas,
  seed: ONE_CASE.seed,
  threads: 1,
};

export interface OneLayout {
  name: string;
  mesh: MeshShape;
  zero: number;
}

/** The layouts run by `world` ranks; the last is refused (ZeRO-2 with a pipeline). */
export function layoutsOf(world: number): OneLayout[] {
  return [
    ...[1, 2, 3].map((zero) => ({ name: `dp${world}-zero${zero}`, mesh: { dp: world, pp: 1, tp: 1 }, zero })),
    { name: `pp${world}-zero1`, mesh: { dp: 1, pp: world, tp: 1 }, zero: 1 },
    { name: `pp${world}-zero2`, mesh: { dp: 1, pp: world, tp: 1 }, zero: 2 },
  ];
}

/** Sum and sum of squares in float64: equal parameters give equal sums, exactly. */
export function paramSums(p: Float32Array): [number, number] {
  let s = 0;
  let q = 0;
  for (const x of p) {
    s += x;
    q += x * x;
  }
  return [s, q];
}
