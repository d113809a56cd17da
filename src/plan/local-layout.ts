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
import { type GptShape, type MachineSpec, STEP_BYTES_PER_PARAM, atscaleElementwiseBytes, gemmStepSeconds, gptParams, sessionRunSeconds } from './calibrate.js';
import type { Recompute } from './specs.js';
import { elementwiseSecondsPerByte, stashedBytesPerLayer, stepWorkingSetBytes, workingSetBytes } from './working-set.js';

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

/** Of the bytes per parameter that atscale's fused step moves outside the per-layer activation
 * work (STEP_BYTES_PER_PARAM), the first 8 write the flat gradient (concat: read + write). */
const FLAT_GRAD_BYTES = 8;
/** Accumulating a micro-batch's flat gradient: one process scales it and adds it in its graph
 * (read 4 + write 4, then read 8 + write 4); a pipeline stage adds it in place on the host
 * (read 8 + write 4). */
const ACCUMULATE_BYTES = { graph: 20, host: 12 };

/** Seconds per byte of a session output on its way into JavaScript, as --calibrate measured it.
 * A spec written before that was measured: onnxruntime-node copies it into a new ArrayBuffer,
 * which V8 zero-fills first, so each byte is read once and written twice: 3 bytes of traffic at
 * the calibrated copy bandwidth (which counts bytes read + written). */
function outputCopySecondsPerByte(spec: MachineSpec): number {
  return spec.outputCopySecondsPerByte ?? 3 / (spec.memBandwidthGBs * 1e9);
}

/** Bytes per parameter AdamW's program keeps touching: weights, gradient, both moments and the
 * decay mask read, weights and moments written. */
const UPDATE_WORKING_BYTES_PER_PARAM = 32;

/** `backgroundLoad`: other programs' runnable threads while the layout runs (default: what the
 * calibration ran beside, spec.backgroundLoad). */
export function predictLocalStepMs(g: Omit<GptShape, 'batch'>, l: LocalLayout, spec: MachineSpec, cores: number, backgroundLoad?: number): LocalPrediction {
  const shape = (nLayer: number): GptShape => ({ ...g, nLayer, batch: l.rows });
  const params = gptParams(shape(g.nLayer));
  const ranks = l.dp * l.pp;
  // Seconds per byte of non-GEMM traffic in a program touching `ws` bytes; all ranks' tensors
  // share the one L3 (working-set.ts). A spec without a calibrated rate has the copy bandwidth.
  const perByte = (ws: number) => elementwiseSecondsPerByte(spec, ws, ranks) ?? 1 / (spec.memBandwidthGBs * 1e9);
  // One micro-batch's forward + backward without the per-parameter traffic, both linear in
  // layers: GEMM seconds and non-GEMM bytes per layer, and of everything else (embedding, head, loss).
  const gemmOf = (n: number) => gemmStepSeconds(shape(n), spec);
  const bytesOf = (n: number) => atscaleElementwiseBytes(shape(n), gptParams(shape(n))) - STEP_BYTES_PER_PARAM * gptParams(shape(n));
  const layer = { gemm: gemmOf(2) - gemmOf(1), bytes: bytesOf(2) - bytesOf(1) };
  const head = { gemm: Math.max(gemmOf(1) - layer.gemm, 0), bytes: Math.max(bytesOf(1) - layer.bytes, 0) };
  const ms = (part: { gemm: number; bytes: number }, t: number) => 1000 * (part.gemm + part.bytes * t);
  // AdamW (with clipping), once per step over this rank's parameters, in its own program.
  const rankParams = params / l.pp;
  const updateMs = 1000 * (STEP_BYTES_PER_PARAM - FLAT_GRAD_BYTES) * rankParams * perByte(UPDATE_WORKING_BYTES_PER_PARAM * rankParams);
  // Ranks share the cores with each other and with other programs; the calibrated rates are one
  // thread's among the `backgroundLoad` others the calibration ran beside.
  const busy = spec.backgroundLoad ?? 0;
  const share = Math.max(1, ((backgroundLoad ?? busy) + ranks) / cores) / Math.max(1, (busy + 1) / cores);
  const m = l.microBatches;
  const allReduce = l.dp > 1 ? (1000 * 2 * ((l.dp - 1) / l.dp) * 4 * rankParams * linkSecondsPerByte(spec)) : 0;
  if (l.pp === 1) {
    // The fused micro-step holds every layer's activations and the head's logits at once.
    const t = perByte(stepWorkingSetBytes(shape(g.nLayer), params));
    const accumulateMs = 1000 * (FLAT_GRAD_BYTES + ACCUMULATE_BYTES.graph) * params * t;
    const compute = m * (g.nLayer * ms(layer, t) + ms(head, t) + accumulateMs) * share;
    return { ms: compute + updateMs * share + allReduce, parts: { compute, bubble: 0, stash: 0, pointToPoint: 0, allReduce, update: updateMs * share } };
  }
  const C = g.nEmbd;
  const T = g.blockSize;
  const stageLayers = g.nLayer / l.pp;
  const rows = { ...g, batch: l.rows };
  // A stage's programs keep touching what its in-flight micro-batches keep (1F1B: up to p of
  // them on the first stage; each block's input besides what the granularity keeps), the one
  // layer a backward rebuilds, the head's logits (the last stage's time is the stage time) and
  // its parameters' arrays.
  const kept = stashedBytesPerLayer(rows, l.recompute) + 4 * l.rows * T * C;
  const ws = workingSetBytes(rows, { keptLayers: Math.min(m, l.pp) * stageLayers, keptPerLayer: kept, head: true, params: rankParams, rebuilt: l.recompute !== 'none' });
  const t = perByte(ws);
  // Recomputation in backward: the block forward again (the calibrated forward share of a
  // layer's forward + backward; a third, as the FLOPs split, for a spec without it), or only
  // the attention core (its share of the layer's FLOPs, of that).
  const forward = spec.forwardFraction ?? 1 / 3;
  const coreShare = (2 * T * C) / (24 * C * C + 4 * T * C);
  const extra = l.recompute === 'full' ? forward : l.recompute === 'selective' ? coreShare * forward : 0;
  // Session runs per micro-batch on the last stage: forward and backward of each block, and the
  // head; each block hands its output, its input gradient and its parameters' gradients to
  // JavaScript (fresh outputs, at the calibrated rate).
  const layerParams = gptParams(shape(2)) - gptParams(shape(1));
  const handedMs = 1000 * stageLayers * (2 * 4 * l.rows * T * C + 4 * layerParams) * outputCopySecondsPerByte(spec);
  const runsMs = 1000 * sessionRunSeconds(spec) * (2 * stageLayers + 1) + handedMs;
  const accumulateMs = 1000 * (FLAT_GRAD_BYTES + ACCUMULATE_BYTES.host) * rankParams * t;
  // What the blocks keep for their backward, copied out of ONNX Runtime once per micro-batch.
  const stashMs = 1000 * stageLayers * stashedBytesPerLayer(rows, l.recompute) * outputCopySecondsPerByte(spec);
  const stageMs = (stageLayers * ms(layer, t) * (1 + extra) + ms(head, t) + runsMs + accumulateMs) * share;
  const compute = m * stageMs;
  // Copies sit in every stage-time on the critical path, the bubble's included: m + (p - 1)/v.
  const stash = (m + (l.pp - 1) / l.v) * stashMs * share;
  const bubble = ((l.pp - 1) / l.v) * stageMs;
  const actBytes = 4 * l.rows * T * C;
  // Forward activation and backward gradient, per micro-batch and chunk boundary, on the critical path.
  const pointToPoint = 1000 * 2 * (m + l.pp - 1) * l.v * actBytes * linkSecondsPerByte(spec);
  const update = updateMs * share;
  return { ms: compute + bubble + stash + pointToPoint + allReduce + update, parts: { compute, bubble, stash, pointToPoint, allReduce, update } };
}
