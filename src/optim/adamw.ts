// AdamW (decoupled weight decay, Loshchilov & Hutter) on flat buffers, recorded into the
// step graph. Per-step scalars (learning rate, bias corrections) come in as one small input
// so the graph never changes between steps.
import type { Tensor } from '../tensor/tensor.js';

export interface AdamWConfig {
  lr: number;
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
}

export const DEFAULT_ADAMW: AdamWConfig = { lr: 1e-3, beta1: 0.9, beta2: 0.99, eps: 1e-8, weightDecay: 0.1 };

/** The per-step scalars fed to the graph, in the order adamwUpdate reads them. */
/** In float64: the caller's buffer (float32 or float64) rounds them to the step's dtype. */
export function adamwScalars(cfg: AdamWConfig, lr: number, step: number): Float64Array {
  const bc1 = 1 - cfg.beta1 ** step;
  const bc2 = 1 - cfg.beta2 ** step;
  return Float64Array.from([lr * cfg.weightDecay, lr / bc1, 1 / Math.sqrt(bc2)]);
}
export const ADAMW_SCALARS = 3;

/**
 * p' = p (1 - lr wd mask) - (lr / bc1) m' / (sqrt(v') / sqrt(bc2) + eps), as PyTorch's AdamW.
 * `scalars` is adamwScalars(...) as a [3] tensor of the step's dtype; `decayMask` is 1 where decay applies.
 */
export function adamwUpdate(p: Tensor, g: Tensor, m: Tensor, v: Tensor, decayMask: Tensor, scalars: Tensor, cfg: AdamWConfig): { p: Tensor; m: Tensor; v: Tensor } {
  const [lrWd, stepSize, invSqrtBc2] = [0, 1, 2].map((i) => scalars.slice([i, i + 1]));
  const m2 = m.mul(cfg.beta1).add(g.mul(1 - cfg.beta1));
  const v2 = v.mul(cfg.beta2).add(g.mul(g).mul(1 - cfg.beta2));
  const decayed = cfg.weightDecay === 0 ? p : p.sub(p.mul(decayMask).mul(lrWd!));
  const update = m2.div(v2.sqrt().mul(invSqrtBc2!).add(cfg.eps)).mul(stepSize!);
  return { p: decayed.sub(update), m: m2, v: v2 };
}
