// Memory per GPU: model states (ZeRO, Rajbhandari et al. 2020) and activations (Korthikanti
// et al. 2022), for the pipeline stage that needs the most. GB here is 2^30 bytes, the unit
// in which GPU memory sizes are quoted (an "80 GB" A100 holds 80 x 2^30 bytes).
import { embeddingParams, expertParams, kvDim, layerParams } from './params-flops.js';
import { type ModelSpec, type TrainingSpec, activationBytes, gemmInputBytes } from './specs.js';

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
 * no parallelism, generalised to a feed-forward width f, kv heads and gated MLPs:
 * sb(10h + 4h + 4 kvDim + 4f) + 5as^2b, with 6f instead of 4f for a gated MLP (gate and up
 * outputs and their product) and the MLP part k-fold for k routed experts. Tensor parallelism
 * splits all but 10sbh (layer norms, dropouts and block inputs), sequence parallelism splits
 * that too, context parallelism splits the sequence; flash attention and selective
 * recomputation drop the 5as^2b attention core, full recomputation keeps only the 2sbh input.
 */
export function layerActivationBytes(m: ModelSpec, t: TrainingSpec, recompute = t.recompute): number {
  const cp = t.cp ?? 1;
  const s = t.seqLen / cp, b = t.microBatch, h = m.hidden, a = m.heads, tp = t.tp;
  const scale = t.dtype === 'fp32' || t.dtype === 'tf32' ? 2 : 1;
  const routed = m.moe ? m.moe.topK * m.moe.capacityFactor : 1;
  const replicated = 10 * s * b * h;
  const mlp = (m.gatedMlp ? 6 : 4) * m.ffn * routed;
  const splittable = s * b * (4 * h + 4 * kvDim(m) + mlp);
  const attentionCore = 5 * a * s * (s * cp) * b;
  const sp = t.sequenceParallel ? tp : 1;
  if (recompute === 'full') return (scale * 2 * s * b * h) / sp;
  const core = recompute === 'selective' || (t.attention ?? 'flash') !== 'materialized' ? 0 : attentionCore / tp;
  return scale * (replicated / sp + splittable / tp + core);
}

/** Micro-batches whose activations the first pipeline stage holds at its peak. */
export function inFlightMicroBatches(t: TrainingSpec): number {
  const m = t.globalBatch / (t.microBatch * t.dp);
  if (t.schedule === 'gpipe') return m;
  const base = Math.min(t.pp, m);
  // Interleaving runs more warm-up forwards: Korthikanti's factor 1 + (p - 1)/(p v).
  return t.interleave > 1 ? base * (1 + (t.pp - 1) / (t.pp * t.interleave)) : base;
}

/** Parameters of each virtual stage: its layers, the embedding on the first, the output on the last. */
export function stageParamCounts(m: ModelSpec, t: TrainingSpec): number[] {
  const layers = t.stageLayers ?? new Array<number>(t.pp * t.interleave).fill(m.layers / (t.pp * t.interleave));
  const S = layers.length;
  const emb = embeddingParams(m);
  const outputOwn = m.tiedEmbeddings === false ? m.vocab * m.hidden : 0;
  return layers.map((n, j) => {
    let p = n * layerParams(m);
    if (S === 1) return p + emb;
    if (j === 0) p += emb - outputOwn;
    // A tied output layer keeps its own copy of the embedding on the last stage.
    if (j === S - 1) p += outputOwn > 0 ? outputOwn : m.vocab * m.hidden;
    return p;
  });
}

/** Parameters one GPU of each physical stage holds (before ZeRO): its chunks, split by TP,
 * experts split by EP as well. */
export function gpuStageParams(m: ModelSpec, t: TrainingSpec): number[] {
  const perVirtual = stageParamCounts(m, t);
  const layers = t.stageLayers ?? new Array<number>(t.pp * t.interleave).fill(m.layers / (t.pp * t.interleave));
  const ep = t.ep ?? 1;
  const expertShare = m.moe ? m.moe.experts * expertParams(m) * (1 - 1 / ep) : 0;
  const out = new Array<number>(t.pp).fill(0);
  perVirtual.forEach((p, j) => (out[j % t.pp]! += (p - layers[j]! * expertShare) / t.tp));
  return out;
}

export function memoryPerGpu(m: ModelSpec, t: TrainingSpec): MemoryBreakdown {
  const stageParams = gpuStageParams(m, t);
  const layers = t.stageLayers ?? new Array<number>(t.pp * t.interleave).fill(m.layers / (t.pp * t.interleave));
  const bytes = modelStateBytes(t);
  const shard = (stage: number) => (t.zero >= stage ? t.dp * (t.cp ?? 1) : 1);
  const perLayer = layerActivationBytes(m, t);
  // With recomputation the layer being recomputed holds its full activations once.
  const working = t.recompute === 'none' ? 0 : layerActivationBytes(m, t, t.recompute === 'full' ? 'none' : 'selective');
  const inFlight = inFlightMicroBatches(t);
  // The last stage also holds the fp32 logits and their gradient.
  const logits = (2 * 4 * (t.seqLen / (t.cp ?? 1)) * t.microBatch * m.vocab) / t.tp;
  // Transformer Engine's userbuffers (--tp-comm-overlap): one static buffer per overlapped
  // GEMM, ten per layer kind, each of the gathered shape (sequence x micro-batch x hidden);
  // the six all-gather buffers hold fp8 in fp8 training (initialize_ub).
  const block = (t.seqLen / (t.cp ?? 1)) * t.microBatch * m.hidden;
  const userbuffers = t.tpCommOverlap && t.tp > 1 ? block * (6 * gemmInputBytes(t.dtype) + 4 * activationBytes(t.dtype)) : 0;
  let worst: MemoryBreakdown | undefined;
  for (let i = 0; i < t.pp; i++) {
    const P = stageParams[i]!;
    let params = (P * bytes.params) / shard(3);
    // ZeRO-3 materialises the current and the prefetched layer in full (within its TP shard).
    if (t.zero === 3) params += (2 * layerParams(m) * bytes.params) / t.tp;
    const grads = (P * bytes.grads) / shard(2);
    const optimizer = (P * bytes.optimizer) / shard(1);
    let stageLayerCount = 0;
    for (let j = i; j < layers.length; j += t.pp) stageLayerCount += layers[j]!;
    // 1F1B: stage i holds p - i micro-batches in flight (interleaving scales that).
    const held = t.pp === 1 ? inFlight : Math.max(1, inFlight * ((t.pp - i) / t.pp));
    let activations = perLayer * (stageLayerCount / t.interleave) * t.interleave * held + working;
    if (i === t.pp - 1) activations += logits;
    const overhead = FRAMEWORK_OVERHEAD_GB * GIB + userbuffers;
    const total = params + grads + optimizer + activations + overhead;
    const gb = (x: number) => x / GIB;
    const r = { params: gb(params), grads: gb(grads), optimizer: gb(optimizer), activations: gb(activations), overhead: gb(overhead), total: gb(total) };
    if (!worst || r.total > worst.total) worst = r;
  }
  return worst!;
}

/** Memory a GPU can give to training, after overhead and fragmentation. */
export function usableMemoryGB(gpuMemoryGB: number): number {
  return FRAMEWORK_OVERHEAD_GB + (gpuMemoryGB - FRAMEWORK_OVERHEAD_GB) * ALLOCATOR_USABLE_FRACTION;
}
