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
  /** Milliseconds of the parts (per step, on the critical path). */
  parts: { compute: number; bubble: number; pointToPoint: number; allReduce: number; update: number };
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
    return { ms: compute + updateMs * share + allReduce, parts: { compute, bubble: 0, pointToPoint: 0, allReduce, update: updateMs * share } };
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
  const stageMs = (stageLayers * layerMs * (1 + extra) + headMs + runsMs + accumulateMs) * share;
  const compute = m * stageMs;
  const bubble = ((l.pp - 1) / l.v) * stageMs;
  const actBytes = 4 * l.rows * T * C;
  // Forward activation and backward gradient, per micro-batch and chunk boundary, on the critical path.
  const pointToPoint = 1000 * 2 * (m + l.pp - 1) * l.v * actBytes * linkSecondsPerByte(spec);
  const update = (updateMs / l.pp) * share;
  return { ms: compute + bubble + pointToPoint + allReduce + update, parts: { compute, bubble, pointToPoint, allReduce, update } };
}
