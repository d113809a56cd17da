// Model-state bytes of one rank on a mesh, in closed form (fp32 training: 4 bytes of weights,
// 4 of gradients and 8 of AdamW moments per parameter, twice that in float64; ZeRO-1 divides
// the moments by dp):
// a GPT stage holds layerParams per layer (Narayanan et al. 2021), the first stage the token and
// position embeddings (V + s)h, the last the final norm 2h and, unless it is also the first,
// its own copy of the tied output embedding Vh. Tensor parallelism divides the matrices, the
// column-parallel biases and the vocabulary (padded to a multiple of tp) by tp and keeps the
// norms and row-parallel biases whole on every rank. Checked against the trainer's buffers, and
// used to refuse a layout whose state exceeds --max-memory-gb before anything is allocated.
import { layerParams } from '../../plan/params-flops.js';
import type { ModelSpec } from '../../plan/specs.js';
import { stageStarts, type MeshShape } from './layout.js';

export interface StateBytes {
  paramBytes: number;
  gradBytes: number;
  optimBytes: number;
}

/** Parameters pipeline rank `pp` holds: its v virtual stages' layers, plus embedding/head. */
export function rankParams(m: ModelSpec, mesh: MeshShape, virtual: number, stageLayers: number[], pp: number, bias = true): number {
  const starts = stageStarts(stageLayers);
  const last = mesh.pp * virtual - 1;
  let layers = 0;
  let first = false;
  let isLast = false;
  for (let c = 0; c < virtual; c++) {
    const s = c * mesh.pp + pp;
    layers += starts[s + 1]! - starts[s]!;
    first ||= s === 0;
    isLast ||= s === last;
  }
  const h = m.hidden;
  const t = mesh.tp;
  // Without biases a layer keeps only the layer-norm weights: 4h^2 + 2hf + 2h.
  let perLayer = bias ? layerParams(m) : 4 * h * h + 2 * h * m.ffn + 2 * h;
  // Split: the weights and the c_attn, c_fc biases; whole: two norms and two c_proj biases.
  if (t > 1) perLayer = (4 * h * h + 2 * h * m.ffn + (bias ? 3 * h + m.ffn : 0)) / t + (bias ? 6 : 2) * h;
  const vocab = Math.ceil(m.vocab / t);
  return layers * perLayer + (first ? (vocab + m.seqLen) * h : 0) + (isLast ? (bias ? 2 : 1) * h + (first ? 0 : vocab * h) : 0);
}

/** `itemBytes`: bytes per element of the training dtype (4 float32, 8 float64). */
export function rankStateBytes(m: ModelSpec, mesh: MeshShape, virtual: number, stageLayers: number[], pp: number, zeroStage: number, bias = true, itemBytes = 4): StateBytes {
  const p = rankParams(m, mesh, virtual, stageLayers, pp, bias);
  return { paramBytes: itemBytes * p, gradBytes: itemBytes * p, optimBytes: (2 * itemBytes * p) / (zeroStage >= 1 ? mesh.dp : 1) };
}

/** The largest rank's model state, and a clear refusal when it is above `capGb` (2^30 bytes). */
export function checkMemoryCap(m: ModelSpec, mesh: MeshShape, virtual: number, stageLayers: number[], zeroStage: number, capGb: number | undefined, bias = true, itemBytes = 4): void {
  if (capGb === undefined) return;
  let worst = { pp: 0, bytes: 0, b: { paramBytes: 0, gradBytes: 0, optimBytes: 0 } };
  for (let pp = 0; pp < mesh.pp; pp++) {
    const b = rankStateBytes(m, mesh, virtual, stageLayers, pp, zeroStage, bias, itemBytes);
    const bytes = b.paramBytes + b.gradBytes + b.optimBytes;
    if (bytes > worst.bytes) worst = { pp, bytes, b };
  }
  const cap = capGb * 2 ** 30;
  if (worst.bytes > cap) {
    const gb = (x: number) => (x / 2 ** 30).toPrecision(3);
    throw new Error(`pipeline stage ${worst.pp} needs ${gb(worst.bytes)} GB of model state (params ${gb(worst.b.paramBytes)} + grads ${gb(worst.b.gradBytes)} + optimizer ${gb(worst.b.optimBytes)}) at dp ${mesh.dp} x pp ${mesh.pp} x tp ${mesh.tp}, above --max-memory-gb ${capGb}; add pipeline stages, use ZeRO-1, or raise the cap`);
  }
}
