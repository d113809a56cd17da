// The step time of a parallel layout run on this machine (atscale launch on one host, one ONNX
// Runtime thread per rank), from the calibrated machine spec: the single-process step model of
// calibrate.ts split into per-layer and per-model work, then arranged as the engine runs it.
// - one process or data parallelism: every rank runs the fused step graph on its rows of each
//   micro-batch, m times, then one update; gradients are all-reduced (ring: 2 (dp-1)/dp of them);
// - pipeline: each stage runs its layers per micro-batch as separate block programs (a session
//   run each, forward and backward), recomputing what the granularity dropped; 1F1B takes
//   m + (p - 1)/v stage-times (the bubble), each micro-batch's activation and its gradient cross
//   every stage boundary, and the last stage also holds the head and the loss.
// Ranks beyond the free cores share them: on a quiet machine all compute slows by ranks / cores;
// beside other programs (the load the calibration saw), by (load + ranks) / (load + 1).
// Per-parameter traffic is charged where it happens: the calibrated fused step spends 249.4
// bytes per parameter (flat gradient, clipping, AdamW), which a layout with m micro-batches
// pays once per step in its update; each micro-batch only writes and accumulates the flat
// gradient. (Splitting the fused step by layer count instead put every layer's AdamW traffic
// into the per-layer time, so it was charged m times: 38% too much for one process, m = 4.)
// A pipeline block that recomputes less hands what it keeps out of ONNX Runtime: every kept
// tensor is a session output, copied into a fresh JavaScript buffer per micro-batch, and fed
// back to its backward later. The fused step never does this (its activations stay inside one
// run), so the copy is charged on its own: the bytes (stashedBytesPerLayer) at the calibrated
// copy bandwidth (outputCopySecondsPerByte).
import { type GptShape, type MachineSpec, predictCpuStepMs, runOverheadSeconds } from './calibrate.js';
import { paramCount } from './params-flops.js';
import type { Recompute } from './specs.js';

export interface LocalLayout {
  dp: number;
  pp: number;
  /** Model chunks per pipeline rank (interleaved 1F1B). */
  v: number;
  /** Micro-batches per step (gradient accumulation), each `rows` sequences per replica. */
  microBatches: number;
  rows: number;
  recompute: Recompute;
}

export interface LocalPrediction {
  ms: number;
  /** Milliseconds of the parts (per step, on the critical path); `stash`: copying what pipeline
   * blocks keep for their backward out of ONNX Runtime. */
  parts: { compute: number; bubble: number; stash: number; pointToPoint: number; allReduce: number; update: number };
}

/** Seconds per byte of the loopback link (all-reduce bus bandwidth, or a quarter of memory bandwidth). */
function linkSecondsPerByte(spec: MachineSpec): number {
  return 1 / ((spec.loopbackBusbwGBs ?? spec.memBandwidthGBs / 4) * 1e9);
}

/** Bytes per parameter that atscale's fused step moves outside the per-layer activation work
 * (calibrate.ts fits 249.4); the first 8 write the flat gradient (concat: read + write). */
const STEP_BYTES_PER_PARAM = 249.4;
const FLAT_GRAD_BYTES = 8;
/** Accumulating a micro-batch's flat gradient: one process scales it and adds it in its graph
 * (read 4 + write 4, then read 8 + write 4); a pipeline stage adds it in place on the host
 * (read 8 + write 4). */
const ACCUMULATE_BYTES = { graph: 20, host: 12 };

/**
 * Bytes one block's forward returns for its backward, per micro-batch, as atscale lowers it
 * (fp32 tensors, bool masks; engine/segments.ts cut by ir/remat.ts). Both none and selective keep
 * 15 tensors of B x T x C elements: ln_1's output, q, k and v, the attention output before its
 * projection, the residual, ln_2's output, and the MLP's two 4C-wide tensors (its input to GELU
 * and GELU's output). None also keeps the softmax probabilities (B x H x T x T); with dropout,
 * both keep the two residual-path masks and none also the attention mask and the dropped
 * probabilities. Full recomputation keeps only the block input, which is already a JavaScript
 * value (the stage's received or previous activation), so nothing more crosses.
 */
export function stashedBytesPerLayer(g: Omit<GptShape, 'nLayer'>, recompute: Recompute): number {
  if (recompute === 'full') return 0;
  const btc = g.batch * g.blockSize * g.nEmbd;
  const bhtt = g.batch * g.nHead * g.blockSize * g.blockSize;
  const dropout = (g.dropout ?? 0) > 0;
  let bytes = 4 * 15 * btc + (dropout ? 2 * btc : 0);
  if (recompute === 'none') bytes += 4 * bhtt + (dropout ? bhtt + 4 * bhtt : 0);
  return bytes;
}

/** Seconds per byte of a session output on its way into JavaScript: onnxruntime-node copies it
 * into a new ArrayBuffer, which V8 zero-fills first, so each byte is read once and written
 * twice: 3 bytes of traffic at the calibrated copy bandwidth (which counts bytes read + written). */
function outputCopySecondsPerByte(spec: MachineSpec): number {
  return 3 / (spec.memBandwidthGBs * 1e9);
}

export function predictLocalStepMs(g: Omit<GptShape, 'batch'>, l: LocalLayout, spec: MachineSpec, cores: number): LocalPrediction {
  const shape = (nLayer: number): GptShape => ({ ...g, nLayer, batch: l.rows });
  const paramsOf = (nLayer: number) => paramCount({ name: 'local', layers: nLayer, hidden: g.nEmbd, heads: g.nHead, seqLen: g.blockSize, vocab: g.vocab, ffn: 4 * g.nEmbd });
  const params = paramsOf(g.nLayer);
  // Milliseconds to move `bytes` per parameter of `n` parameters through the non-GEMM kernels.
  const paramMs = (bytesPerParam: number, n: number) => (spec.elementwiseGBs ? (1000 * bytesPerParam * n) / (spec.elementwiseGBs * 1e9) : 0);
  // One micro-batch's forward + backward without the per-parameter traffic (linear in layers):
  // per layer, and everything else (embedding, head, loss).
  const microMs = (nLayer: number) => predictCpuStepMs(shape(nLayer), spec) - paramMs(STEP_BYTES_PER_PARAM, paramsOf(nLayer));
  const layerMs = microMs(2) - microMs(1);
  const headMs = Math.max(microMs(1) - layerMs, 0);
  // AdamW (with clipping), once per step over this rank's parameters.
  const updateMs = paramMs(STEP_BYTES_PER_PARAM - FLAT_GRAD_BYTES, params);
  // Ranks share the cores with each other and with the load the calibration ran beside: the
  // calibrated rates are one thread's among `backgroundLoad` others.
  const busy = spec.backgroundLoad ?? 0;
  const share = Math.max(1, (busy + l.dp * l.pp) / cores) / Math.max(1, (busy + 1) / cores);
  const m = l.microBatches;
  const allReduce = l.dp > 1 ? (1000 * 2 * ((l.dp - 1) / l.dp) * 4 * (params / l.pp) * linkSecondsPerByte(spec)) : 0;
  if (l.pp === 1) {
    const accumulateMs = paramMs(FLAT_GRAD_BYTES + ACCUMULATE_BYTES.graph, params);
    const compute = m * (g.nLayer * layerMs + headMs + accumulateMs) * share;
    return { ms: compute + updateMs * share + allReduce, parts: { compute, bubble: 0, stash: 0, pointToPoint: 0, allReduce, update: updateMs * share } };
  }
  // Recomputation in backward: the block forward again (a third of forward + backward), or
  // only the attention core (its share of the layer's FLOPs, a third of that).
  const C = g.nEmbd;
  const T = g.blockSize;
  const coreShare = (2 * T * C) / (24 * C * C + 4 * T * C);
  const extra = l.recompute === 'full' ? 1 / 3 : l.recompute === 'selective' ? coreShare / 3 : 0;
  const stageLayers = g.nLayer / l.pp;
  // Session runs per micro-batch on the last stage: forward and backward of each block, and the head.
  const runsMs = 1000 * runOverheadSeconds(spec) * (2 * stageLayers + 1);
  const accumulateMs = paramMs(FLAT_GRAD_BYTES + ACCUMULATE_BYTES.host, params / l.pp);
  // What the blocks keep for their backward, copied out of ONNX Runtime once per micro-batch.
  const stashMs = 1000 * stageLayers * stashedBytesPerLayer({ ...g, batch: l.rows }, l.recompute) * outputCopySecondsPerByte(spec);
  const stageMs = (stageLayers * layerMs * (1 + extra) + headMs + runsMs + accumulateMs) * share;
  const compute = m * stageMs;
  // Copies sit in every stage-time on the critical path, the bubble's included: m + (p - 1)/v.
  const stash = (m + (l.pp - 1) / l.v) * stashMs * share;
  const bubble = ((l.pp - 1) / l.v) * stageMs;
  const actBytes = 4 * l.rows * T * C;
  // Forward activation and backward gradient, per micro-batch and chunk boundary, on the critical path.
  const pointToPoint = 1000 * 2 * (m + l.pp - 1) * l.v * actBytes * linkSecondsPerByte(spec);
  const update = (updateMs / l.pp) * share;
  return { ms: compute + bubble + stash + pointToPoint + allReduce + update, parts: { compute, bubble, stash, pointToPoint, allReduce, update } };
}
