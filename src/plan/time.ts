// Time of one training step (one optimizer update over the global batch): per micro-batch
// times of a pipeline stage built from GEMMs, memory-bound kernels and collectives, then
// composed by the 1F1B schedule with its bubble, data-parallel reduction and the optimizer.
import { allGatherSeconds, allReduceSeconds, groupOf, sendSeconds } from './comm.js';
import { type Device, EFFICIENCY, gemmSeconds, streamSeconds } from './efficiency.js';
import { layerActivationBytes, modelStateBytes } from './memory.js';
import { layerParams } from './params-flops.js';
import { type ClusterSpec, type ModelSpec, type TrainingSpec, peakFlops } from './specs.js';

/** Seconds per step on the critical path, by cause; they add up to `step`. */
export interface TimeBreakdown {
  gemm: number;
  elementwise: number;
  recompute: number;
  tensorParallel: number;
  pipelineSend: number;
  bubble: number;
  dataParallel: number;
  optimizer: number;
  step: number;
}

/** What each entry of TimeBreakdown is, in words. */
export const TIME_LABELS: Record<Exclude<keyof TimeBreakdown, 'step'>, string> = {
  gemm: 'matrix multiplies',
  elementwise: 'memory-bound kernels',
  recompute: 'activation recomputation',
  tensorParallel: 'tensor-parallel all-reduces',
  pipelineSend: 'pipeline sends',
  bubble: 'pipeline bubble',
  dataParallel: 'data-parallel / ZeRO traffic (exposed)',
  optimizer: 'optimizer step',
};

interface Pass {
  gemm: number;
  elementwise: number;
  comm: number;
}

const sum = (p: Pass) => p.gemm + p.elementwise + p.comm;

export function deviceOf(c: ClusterSpec, t: TrainingSpec): Device {
  const elementBytes = t.dtype === 'fp32' || t.dtype === 'tf32' ? 4 : t.dtype === 'fp8' ? 1 : 2;
  return { peakFlops: peakFlops(c.node.gpu, t.dtype), memoryBytesPerS: c.node.gpu.memoryGBs * 1e9, elementBytes };
}

/** Forward of one layer on one GPU: the six GEMMs of its tensor-parallel shard and the rest. */
function layerForward(m: ModelSpec, c: ClusterSpec, t: TrainingSpec, dev: Device): { full: Pass; attentionCore: Pass } {
  const { hidden: h, ffn: f, heads: a } = m;
  const bs = t.microBatch * t.seqLen, s = t.seqLen, d = h / a, tp = t.tp;
  const headsHere = (t.microBatch * a) / tp;
  const coreGemm = gemmSeconds(dev, s, d, s, headsHere) + gemmSeconds(dev, s, s, d, headsHere);
  const gemm =
    gemmSeconds(dev, bs, h, (3 * h) / tp) + gemmSeconds(dev, bs, h / tp, h) + gemmSeconds(dev, bs, h, f / tp) + gemmSeconds(dev, bs, f / tp, h) + coreGemm;
  const stored = layerActivationBytes(m, t, 'none');
  const coreStored = stored - layerActivationBytes(m, t, 'selective');
  const k = EFFICIENCY.elementwisePerStoredByte;
  // Two all-reduces of the b x s x h block output per forward (or, with sequence parallelism,
  // two all-gathers and two reduce-scatters: the same bytes on the wire).
  const tpGroup = groupOf(tp, 1, c.node.gpusPerNode);
  const comm = 2 * allReduceSeconds(c, tpGroup, bs * h * dev.elementBytes);
  return {
    full: { gemm, elementwise: streamSeconds(dev, k * stored), comm },
    attentionCore: { gemm: coreGemm, elementwise: streamSeconds(dev, k * coreStored), comm: 0 },
  };
}

/** Output projection to the vocabulary and the fp32 cross-entropy, forward + backward. */
function logitsSeconds(m: ModelSpec, t: TrainingSpec, dev: Device): number {
  const bs = t.microBatch * t.seqLen;
  const gemm = 3 * gemmSeconds(dev, bs, m.hidden, m.vocab / t.tp);
  // Logits are written, read by softmax, written as probabilities, read and written as grads.
  const crossEntropy = streamSeconds(dev, (5 * 4 * bs * m.vocab) / t.tp);
  return gemm + crossEntropy;
}

export function stepTime(m: ModelSpec, c: ClusterSpec, t: TrainingSpec): TimeBreakdown {
  const dev = deviceOf(c, t);
  const gpn = c.node.gpusPerNode;
  const micro = t.globalBatch / (t.microBatch * t.dp);
  const layers = m.layers / t.pp;
  const fwd = layerForward(m, c, t, dev);
  const redo = t.recompute === 'full' ? fwd.full : t.recompute === 'selective' ? fwd.attentionCore : { gemm: 0, elementwise: 0, comm: 0 };
  // Backward runs two GEMMs per forward GEMM and 1.5x the forward's memory traffic; its
  // collectives mirror the forward's.
  const perLayer = {
    gemm: 3 * fwd.full.gemm,
    elementwise: (1 + EFFICIENCY.elementwiseBackward) * fwd.full.elementwise,
    recompute: sum(redo),
    tensorParallel: 2 * fwd.full.comm,
  };
  const layerTotal = perLayer.gemm + perLayer.elementwise + perLayer.recompute + perLayer.tensorParallel;
  // Megatron's scatter-gather: each TP rank sends 1/tp of the activation to the next stage,
  // forward and backward. Neighbouring stages are tp x dp ranks apart.
  const sameNode = t.tp * t.dp < gpn;
  const activationBytes = (t.microBatch * t.seqLen * m.hidden * dev.elementBytes) / t.tp;
  const send = t.pp > 1 ? 2 * sendSeconds(c, sameNode, activationBytes) : 0;
  const logits = logitsSeconds(m, t, dev);

  // The last stage also runs the output layer, so it sets the steady-state pace; the fill
  // and drain of the pipeline, (p - 1)/v micro-batch slots, run at the average stage's pace.
  const slowest = layers * layerTotal + logits + send;
  const average = layers * layerTotal + logits / t.pp + send;
  const bubble = ((t.pp - 1) / t.interleave) * average;

  // Data-parallel gradient reduction and ZeRO traffic, hidden behind backward where possible.
  const stageParams = (layers * layerParams(m)) / t.tp + ((m.vocab + m.seqLen) * m.hidden) / t.tp;
  const bytes = modelStateBytes(t);
  const dpGroup = groupOf(t.dp, t.tp, gpn);
  const gradBytes = stageParams * bytes.grads;
  const paramBytes = stageParams * bytes.params;
  const backwardPerMicro = layers * (2 * fwd.full.gemm + EFFICIENCY.elementwiseBackward * fwd.full.elementwise + perLayer.recompute);
  const forwardPerMicro = layers * (fwd.full.gemm + fwd.full.elementwise);
  let dataParallel = 0;
  if (t.dp > 1) {
    if (t.zero <= 1) {
      // One all-reduce (ZeRO-1: reduce-scatter then all-gather of updated weights, the same
      // bytes) after the last micro-batch, overlapping that micro-batch's backward; ZeRO-1's
      // all-gather follows the optimizer step and cannot overlap.
      const reduce = t.zero === 0 ? allReduceSeconds(c, dpGroup, gradBytes) : allGatherSeconds(c, dpGroup, gradBytes);
      dataParallel = Math.max(0, reduce - backwardPerMicro) + (t.zero === 1 ? allGatherSeconds(c, dpGroup, paramBytes) : 0);
    } else if (t.zero === 2) {
      // Sharded gradients must be reduce-scattered every micro-batch.
      const rs = allGatherSeconds(c, dpGroup, gradBytes);
      dataParallel = micro * Math.max(0, rs - backwardPerMicro) + allGatherSeconds(c, dpGroup, paramBytes);
    } else {
      // ZeRO-3 gathers weights for the forward, again for backward (and recomputation), and
      // reduce-scatters gradients, every micro-batch, prefetched behind compute.
      const gathers = t.recompute === 'full' ? 3 : 2;
      const traffic = gathers * allGatherSeconds(c, dpGroup, paramBytes) + allGatherSeconds(c, dpGroup, gradBytes);
      dataParallel = micro * Math.max(0, traffic - (forwardPerMicro + backwardPerMicro));
    }
  }

  // Adam reads master weights, momentum, variance and gradient, writes the first three and
  // the 16-bit copy: 4+4+4+g in, 4+4+4+p out per parameter this GPU updates.
  const updated = t.zero >= 1 ? stageParams / t.dp : stageParams;
  const optimizer = streamSeconds(dev, updated * (24 + bytes.grads + bytes.params));

  const steady = micro * slowest;
  const scale = micro * layers;
  const breakdown: TimeBreakdown = {
    gemm: scale * perLayer.gemm + micro * logits,
    elementwise: scale * perLayer.elementwise,
    recompute: scale * perLayer.recompute,
    tensorParallel: scale * perLayer.tensorParallel,
    pipelineSend: micro * send,
    bubble,
    dataParallel,
    optimizer,
    step: steady + bubble + dataParallel + optimizer,
  };
  return breakdown;
}
