// Memory per GPU: model states (ZeRO, Rajbhandari et al. 2020) and activations (Korthikanti
// et al. 2022), for the pipeline stage that needs the most. GB here is 2^30 bytes, the unit
// in which GPU memory sizes are quoted (an "80 GB" A100 holds 80 x 2^30 bytes).
import { layerParams } from './params-flops.js';
import type { ModelSpec, TrainingSpec } from './specs.js';

export const GIB = 2 ** 30;
/** CUDA context, cuBLAS/NCCL workspaces: memory the framework never gives to tensors. */
export const FRAMEWORK_OVERHEAD_GB = 1.5;
/** Fraction of the remaining memory the caching allocator can actually fill (fragmentation). */
export const ALLOCATOR_USABLE_FRACTION = 0.95;

export interface MemoryBreakdown {
  params: number;
  grads: number;
  optimizer: number;
  activations: number;
  overhead: number;
  total: number;
}

/** Bytes per parameter for weights, gradients and optimizer state (Adam). */
export function modelStateBytes(t: TrainingSpec): { params: number; grads: number; optimizer: number } {
  // Mixed precision keeps 16-bit weights plus fp32 master weights, momentum and variance
  // (ZeRO's K = 12). fp16 gradients stay 16-bit (loss scaling protects them); bf16's 8-bit
  // mantissa is too coarse to accumulate micro-batches in, so Megatron and DeepSpeed
  // accumulate and reduce bf16 runs' gradients in fp32. Pure fp32 needs no master copy.
  if (t.dtype === 'fp32' || t.dtype === 'tf32') return { params: 4, grads: 4, optimizer: 8 };
  if (t.dtype === 'fp16') return { params: 2, grads: 2, optimizer: 12 };
  return { params: 2, grads: 4, optimizer: 12 };
}

/**
 * Activation bytes one layer keeps for one micro-batch until its backward pass, by
 * Korthikanti et al. 2022 (16-bit activations, 1-byte dropout masks): sbh(34 + 5as/h) with
 * no parallelism, generalised to a feed-forward width f: sb(18h + 4f) + 5as^2b.
 * Tensor parallelism splits all but 10sbh (layer norms, dropouts and block inputs), sequence
 * parallelism splits that too; selective recomputation drops the 5as^2b attention core,
 * full recomputation keeps only the 2sbh layer input.
 */
export function layerActivationBytes(m: ModelSpec, t: TrainingSpec, recompute = t.recompute): number {
  const s = t.seqLen, b = t.microBatch, h = m.hidden, a = m.heads, tp = t.tp;
  const scale = t.dtype === 'fp32' || t.dtype === 'tf32' ? 2 : 1;
  const replicated = 10 * s * b * h;
  const splittable = s * b * (8 * h + 4 * m.ffn);
  const attentionCore = 5 * a * s * s * b;
  const sp = t.sequenceParallel ? tp : 1;
  if (recompute === 'full') return (scale * 2 * s * b * h) / sp;
  const core = recompute === 'selective' ? 0 : attentionCore / tp;
  return scale * (replicated / sp + splittable / tp + core);
}

/** Micro-batches whose activations the first pipeline stage holds at its peak (1F1B). */
export function inFlightMicroBatches(t: TrainingSpec): number {
  const m = t.globalBatch / (t.microBatch * t.dp);
  const base = Math.min(t.pp, m);
  // Interleaving runs more warm-up forwards: Korthikanti's factor 1 + (p - 1)/(p v).
  return t.interleave > 1 ? base * (1 + (t.pp - 1) / (t.pp * t.interleave)) : base;
}

export function memoryPerGpu(m: ModelSpec, t: TrainingSpec): MemoryBreakdown {
  const layersPerStage = m.layers / t.pp;
  // Embeddings sit on the first stage; the tied output copy on the last; both split by TP.
  const embedding = ((m.vocab + m.seqLen) * m.hidden) / t.tp;
  const stageParams = (layersPerStage * layerParams(m)) / t.tp + embedding;
  const bytes = modelStateBytes(t);
  const shard = (stage: number) => (t.zero >= stage ? t.dp : 1);
  let params = (stageParams * bytes.params) / shard(3);
  // ZeRO-3 materialises the current and the prefetched layer in full (within its TP shard).
  if (t.zero === 3) params += (2 * layerParams(m) * bytes.params) / t.tp;
  const grads = (stageParams * bytes.grads) / shard(2);
  const optimizer = (stageParams * bytes.optimizer) / shard(1);

  const perLayer = layerActivationBytes(m, t);
  // With recomputation the layer being recomputed holds its full activations once.
  const working = t.recompute === 'none' ? 0 : layerActivationBytes(m, t, t.recompute === 'full' ? 'none' : 'selective');
  const firstStage = perLayer * layersPerStage * inFlightMicroBatches(t) + working;
  // The last stage holds one micro-batch in flight but also fp32 logits and their gradient.
  const logits = (2 * 4 * t.seqLen * t.microBatch * m.vocab) / t.tp;
  const lastStage = perLayer * layersPerStage + working + logits;
  const activations = t.pp === 1 ? firstStage + logits : Math.max(firstStage, lastStage);

  const overhead = FRAMEWORK_OVERHEAD_GB * GIB;
  const total = params + grads + optimizer + activations + overhead;
  const gb = (x: number) => x / GIB;
  return { params: gb(params), grads: gb(grads), optimizer: gb(optimizer), activations: gb(activations), overhead: FRAMEWORK_OVERHEAD_GB, total: gb(total) };
}

/** Memory a GPU can give to training, after overhead and fragmentation. */
export function usableMemoryGB(gpuMemoryGB: number): number {
  return FRAMEWORK_OVERHEAD_GB + (gpuMemoryGB - FRAMEWORK_OVERHEAD_GB) * ALLOCATOR_USABLE_FRACTION;
}
