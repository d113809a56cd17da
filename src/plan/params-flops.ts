// Parameter count and FLOPs of a decoder-only transformer, in closed form. For the GPT shape
// this is Narayanan et al. 2021, section 5.1; the same sums cover grouped-query attention,
// gated (SwiGLU) MLPs, untied output layers and mixtures of experts.
import type { ModelSpec, Recompute } from './specs.js';

/** Width of the key (or value) projection: kvHeads heads of h/heads each. */
export function kvDim(m: ModelSpec): number {
  return ((m.kvHeads ?? m.heads) * m.hidden) / m.heads;
}

/** Matrices of h x f in one expert's (or the dense) MLP: 3 for SwiGLU, 2 for GeLU. */
export function mlpMatrices(m: ModelSpec): number {
  return m.gatedMlp ? 3 : 2;
}

/** Attention parameters of one layer: Q and O are h x h, K and V h x kvDim, plus biases. */
export function attentionParams(m: ModelSpec): number {
  const h = m.hidden, kv = kvDim(m);
  const bias = m.bias ?? 'all';
  const biases = bias === 'all' ? 2 * h + 2 * kv : bias === 'qkv' ? h + 2 * kv : 0;
  return 2 * h * h + 2 * h * kv + biases;
}

/** Parameters of one expert (or of the dense MLP): the matrices and, for GPT, their biases. */
export function expertParams(m: ModelSpec): number {
  const { hidden: h, ffn: f } = m;
  const biases = (m.bias ?? 'all') === 'all' ? (mlpMatrices(m) - 1) * f + h : 0;
  return mlpMatrices(m) * h * f + biases;
}

function normParams(m: ModelSpec): number {
  return (m.norm ?? 'layernorm') === 'layernorm' ? 2 * m.hidden : m.hidden;
}

/** Parameters of one transformer layer (all experts counted). */
export function layerParams(m: ModelSpec): number {
  const experts = m.moe ? m.moe.experts * expertParams(m) + m.hidden * m.moe.experts : expertParams(m);
  return attentionParams(m) + experts + 2 * normParams(m);
}

/** Embedding, learned positions and (if untied) the output layer. */
export function embeddingParams(m: ModelSpec): number {
  const positions = (m.positions ?? 'learned') === 'learned' ? m.seqLen * m.hidden : 0;
  const output = m.tiedEmbeddings === false ? m.vocab * m.hidden : 0;
  return m.vocab * m.hidden + positions + output;
}

/**
 * P = l (attention + MLP + norms) + embeddings. With the GPT defaults and f = 4h this is
 * Narayanan's 12lh^2 (1 + 13/(12h) + (V + s)/(12lh)). The final norm (h or 2h parameters) is
 * left out, as Narayanan leaves it out: it changes no count by more than 1e-5.
 */
export function paramCount(m: ModelSpec): number {
  return m.layers * layerParams(m) + embeddingParams(m);
}

/** Parameters one token passes through: with experts, only the k it is routed to. */
export function activeParamCount(m: ModelSpec): number {
  if (!m.moe) return paramCount(m);
  const inactive = (m.moe.experts - m.moe.topK) * expertParams(m);
  return paramCount(m) - m.layers * inactive;
}

/**
 * Forward FLOPs of one layer for b sequences of length s: the attention projections
 * (2bs(2h^2 + 2h kvDim)), the MLP (2bs h f per matrix, k experts per token) and the two
 * attention batched products QK^T and PV (4bs^2h, counted in full as papers count them).
 */
export function layerForwardFlops(m: ModelSpec, b: number, s: number): number {
  const { hidden: h, ffn: f } = m;
  const k = m.moe ? m.moe.topK : 1;
  return 2 * b * s * (2 * h * h + 2 * h * kvDim(m)) + 2 * b * s * h * f * mlpMatrices(m) * k + 4 * b * s * s * h;
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
 * (3 x forward): with the GPT shape this is 72Bslh^2 (1 + s/(6h) + V/(12lh)). Hardware FLOPs add
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
