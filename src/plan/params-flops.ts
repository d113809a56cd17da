// Parameter count and FLOPs of a GPT, in closed form (Narayanan et al. 2021, section 5.1),
// generalised to a feed-forward width f that need not be 4h.
import type { ModelSpec, Recompute } from './specs.js';

/**
 * P = l(4h^2 + 2hf + 9h + f) + (V + s)h. With f = 4h this is Narayanan's
 * 12lh^2 (1 + 13/(12h) + (V + s)/(12lh)): QKV and output projections (4h^2 + 4h biases),
 * MLP (2hf + f + h biases), two layer norms (4h), token and position embeddings (tied output).
 */
export function paramCount(m: ModelSpec): number {
  const { layers: l, hidden: h, ffn: f, vocab: V, seqLen: s } = m;
  return l * (4 * h * h + 2 * h * f + 9 * h + f) + (V + s) * h;
}

/** Parameters of one transformer layer (what a pipeline stage holds per layer). */
export function layerParams(m: ModelSpec): number {
  const { hidden: h, ffn: f } = m;
  return 4 * h * h + 2 * h * f + 9 * h + f;
}

/**
 * Forward FLOPs of one layer for b sequences of length s: the four attention matrices
 * (8bsh^2), the MLP (4bshf) and the two attention batched products QK^T and PV (4bs^2h).
 */
export function layerForwardFlops(m: ModelSpec, b: number, s: number): number {
  const { hidden: h, ffn: f } = m;
  return 8 * b * s * h * h + 4 * b * s * h * f + 4 * b * s * s * h;
}

/** Forward FLOPs of the attention core alone (what selective recomputation redoes). */
export function attentionCoreForwardFlops(m: ModelSpec, b: number, s: number): number {
  return 4 * b * s * s * m.hidden;
}

/** Forward FLOPs of the output projection to the vocabulary. */
export function logitsForwardFlops(m: ModelSpec, b: number, s: number): number {
  return 2 * b * s * m.hidden * m.vocab;
}

/**
 * FLOPs per iteration of B sequences of length s. Model FLOPs count forward + backward
 * (3 x forward): with f = 4h this is 72Bslh^2 (1 + s/(6h) + V/(12lh)). Hardware FLOPs add
 * what recomputation redoes: all layer forwards for full recomputation, giving Narayanan's
 * 96Bslh^2 (1 + s/(6h) + V/(16lh)), or the attention core for selective recomputation.
 */
export function iterationFlops(m: ModelSpec, batch: number, seqLen: number, recompute: Recompute): { model: number; hardware: number } {
  const layers = m.layers * layerForwardFlops(m, batch, seqLen);
  const model = 3 * (layers + logitsForwardFlops(m, batch, seqLen));
  const redo = recompute === 'full' ? layers : recompute === 'selective' ? m.layers * attentionCoreForwardFlops(m, batch, seqLen) : 0;
  return { model, hardware: model + redo };
}

/** Narayanan's end-to-end estimate: days to train on `tokens` at a sustained per-GPU rate. */
export function trainingDays(m: ModelSpec, tokens: number, gpus: number, tflopsPerGpu: number, recompute: Recompute): number {
  const perToken = iterationFlops(m, 1, m.seqLen, recompute).hardware / m.seqLen;
  return (tokens * perToken) / (gpus * tflopsPerGpu * 1e12) / 86400;
}

/** The paper's own shortcut, 8TP/(nX): it drops the attention and vocabulary terms. */
export function trainingDaysApprox(params: number, tokens: number, gpus: number, tflopsPerGpu: number): number {
  return (8 * tokens * params) / (gpus * tflopsPerGpu * 1e12) / 86400;
}
