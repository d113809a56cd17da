// Time of one training step (one optimizer update over the global batch). Each pipeline
// stage's forward and backward pass of one micro-batch is built from its kernels (GEMMs by
// shape, flash or materialized attention, memory-bound kernels) and its collectives
// (tensor-parallel all-reduces, context-parallel KV exchange, expert all-to-alls, ZeRO-3
// weight gathers prefetched behind compute). The pipeline schedule is then simulated as an
// event timeline, and the data-parallel reduction (bucketed, overlapping the last backward)
// and the optimizer step follow.
import { allGatherSeconds, allReduceSeconds, allToAllSeconds, groupOf, sendSeconds } from './comm.js';
import { type Device, EFFICIENCY, flashSeconds, gemmSeconds, onRemainingSms, streamSeconds } from './efficiency.js';
import { DEFAULT_GPU_EFFICIENCY, FLASH_V1_SLOWDOWN } from './gpus.js';
import { gpuStageParams, layerActivationBytes, modelStateBytes, stageParamCounts } from './memory.js';
import { embeddingParams, expertParams, kvDim, layerParams, mlpMatrices } from './params-flops.js';
import { simulateExchanges } from './pipeline-exchange.js';
import { type PipelineResult, simulatePipeline } from './pipeline-sim.js';
import { type ClusterSpec, type ModelSpec, type TrainingSpec, activationBytes, deepspeedEngine, gemmInputBytes, peakFlops } from './specs.js';
import { type TpLinear, overlappedLinears } from './tp-overlap.js';

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
  gemm: 'compute (GEMMs and attention)',
  elementwise: 'memory-bound kernels',
  recompute: 'activation recomputation',
  tensorParallel: 'tensor/context/expert-parallel comm',
  pipelineSend: 'pipeline sends',
  bubble: 'pipeline bubble',
  dataParallel: 'data-parallel / ZeRO traffic (exposed)',
  optimizer: 'optimizer step',
};

/** One pass's seconds by cause. */
interface Cost {
  gemm: number;
  elementwise: number;
  comm: number;
  /** ZeRO-3 gather / reduce-scatter time not hidden behind compute. */
  zero: number;
  /** Weight-gradient GEMMs (what zero-bubble defers); part of `gemm`. */
  weightGrad: number;
}

const zeroCost = (): Cost => ({ gemm: 0, elementwise: 0, comm: 0, zero: 0, weightGrad: 0 });
const total = (c: Cost) => c.gemm + c.elementwise + c.comm + c.zero;
function add(a: Cost, b: Cost, k = 1): Cost {
  return { gemm: a.gemm + k * b.gemm, elementwise: a.elementwise + k * b.elementwise, comm: a.comm + k * b.comm, zero: a.zero + k * b.zero, weightGrad: a.weightGrad + k * b.weightGrad };
}

export function deviceOf(c: ClusterSpec, t: TrainingSpec): Device {
  const g = c.node.gpu;
  const v1 = t.attention === 'flash-v1' ? FLASH_V1_SLOWDOWN : 1;
  return {
    peakFlops: peakFlops(g, t.dtype),
    memoryBytesPerS: g.memoryGBs * 1e9,
    elementBytes: activationBytes(t.dtype),
    gemmBytes: gemmInputBytes(t.dtype),
    sms: g.sms ?? DEFAULT_GPU_EFFICIENCY.sms,
    gemmEfficiency: (t.dtype === 'fp8' ? g.gemmEfficiencyFp8 : undefined) ?? g.gemmEfficiency ?? DEFAULT_GPU_EFFICIENCY.gemm,
    memoryEfficiency: g.memoryEfficiency ?? DEFAULT_GPU_EFFICIENCY.memory,
    flashForward: (g.flashForwardEfficiency ?? DEFAULT_GPU_EFFICIENCY.flashForward) / v1,
    flashBackward: (g.flashBackwardEfficiency ?? DEFAULT_GPU_EFFICIENCY.flashBackward) / v1,
  };
}

/**
 * NCCL kernels run on SMs of their own: while a collective overlaps compute, that compute has
 * the other SMs only. NCCL's ring collectives on an 8-GPU NVSwitch node use 16 channels, one
 * thread block (SM) each (the "16 coll channels" of NCCL_DEBUG=INFO on DGX A100/H100).
 */
export const NCCL_CHANNELS = 16;

/** Exposed seconds of `comm` that runs behind `compute`: what compute cannot cover, plus the
 * slowdown of the compute it overlaps from the SMs NCCL takes. */
function overlapped(dev: Device, comm: number, compute: number): number {
  const hidden = Math.min(comm, compute);
  return Math.max(0, comm - compute) + onRemainingSms(dev, hidden, NCCL_CHANNELS) - hidden;
}

interface LayerCosts {
  forward: Cost;
  backward: Cost;
  /** What recomputation adds to the backward pass. */
  recompute: Cost;
}

/** One transformer layer of one micro-batch on one GPU. */
function layerCosts(m: ModelSpec, c: ClusterSpec, t: TrainingSpec, dev: Device): LayerCosts {
  const { hidden: h, ffn: f, heads: a } = m;
  const tp = t.tp, cp = t.cp ?? 1, ep = t.ep ?? 1, b = t.microBatch;
  const s = t.seqLen, sq = s / cp, T = b * sq, d = h / a, kv = kvDim(m);
  const gpn = c.node.gpusPerNode;
  // Linear layers: attention projections, then the (expert) MLP.
  const proj: [number, number, number, number][] = [[T, h, (h + 2 * kv) / tp, 1], [T, h / tp, h, 1]];
  if (m.moe) {
    const local = m.moe.experts / ep;
    const perExpert = Math.ceil((T * ep * m.moe.topK * m.moe.capacityFactor) / m.moe.experts);
    proj.push([perExpert, h, ((mlpMatrices(m) - 1) * f) / tp, local], [perExpert, f / tp, h, local]);
  } else {
    proj.push([T, h, ((mlpMatrices(m) - 1) * f) / tp, 1], [T, f / tp, h, 1]);
  }
  // With TE's userbuffers (--tp-comm-overlap) the attention and dense MLP linears run with
  // their tensor-parallel collectives overlapped (tp-overlap.ts); expert GEMMs do not.
  const overlapTp = t.tpCommOverlap === true && tp > 1;
  const ubLinears = overlapTp ? (m.moe ? 2 : 4) : 0;
  let linear = 0, dgrad = 0, wgrad = 0;
  proj.slice(ubLinears).forEach(([M, K, N, n]) => {
    linear += gemmSeconds(dev, M, K, N, n);
    dgrad += gemmSeconds(dev, M, N, K, n);
    wgrad += gemmSeconds(dev, K, M, N, n);
  });
  // Tensor parallelism: two all-reduces of the b x s x h block output per pass, exposed. With
  // sequence parallelism, two all-gathers (of the column-parallel layers' inputs, forward; of
  // the row-parallel layers' output gradients, backward) and two reduce-scatters: the same
  // bytes, except that fp8 training (Transformer Engine) gathers the GEMM inputs in fp8.
  // Megatron since 2022 and TE also launch the column-parallel backward's reduce-scatter
  // (all-reduce without sequence parallelism) behind the weight-gradient GEMM; the frameworks
  // of the 2021-22 rows did not, and the model keeps it exposed.
  const tpGroup = groupOf(tp, 1, gpn);
  const blockAllReduce = allReduceSeconds(c, tpGroup, T * h * dev.elementBytes);
  let tpFwd = 2 * blockAllReduce, tpBwd = 2 * blockAllReduce;
  if (t.sequenceParallel && tp > 1 && !overlapTp) {
    const gather = allGatherSeconds(c, tpGroup, T * h * dev.gemmBytes);
    tpFwd = tpBwd = 2 * gather + 2 * allGatherSeconds(c, tpGroup, T * h * dev.elementBytes);
    // Sequence parallelism keeps only a slice of each column-parallel layer's input; its
    // weight gradient needs the whole, so the backward all-gathers it again, behind that
    // layer's data-gradient GEMM (Megatron's LinearWithGradAccumulationAndAsyncCommunication).
    const columns = m.moe ? [proj[0]!] : [proj[0]!, proj[2]!];
    for (const [M, K, N, n] of columns) tpBwd += overlapped(dev, gather, gemmSeconds(dev, M, N, K, n));
  }
  if (overlapTp) {
    const linears: TpLinear[] = proj.slice(0, ubLinears).map(([, K, N], i) => ({ kind: i % 2 === 0 ? 'column' : 'row', k: K, n: N }));
    const ub = overlappedLinears(dev, c, tp, T, h, linears, dev.gemmBytes, dev.elementBytes);
    linear += ub.forward.gemm;
    dgrad += ub.backward.gemm - ub.backward.weightGrad;
    wgrad += ub.backward.weightGrad;
    tpFwd = ub.forward.comm + (m.moe ? blockAllReduce : 0);
    tpBwd = ub.backward.comm + (m.moe ? blockAllReduce : 0);
  }
  const heads = (b * a) / tp;
  const flash = (t.attention ?? 'flash') !== 'materialized';
  // Materialized ALiBi attention adds its bias as the scores GEMM's C operand:
  // torch.baddbmm(alibi, q, k^T, beta=1) with a [b x heads, 1, s] bias (bigscience
  // Megatron-DeepSpeed, ParallelAttention), which PyTorch first expands into the full
  // [b x heads, s, s] output and the GEMM then reads back: 2 + 2 bytes per score that the
  // beta = 0 product (learned or rotary positions) does not move.
  const alibiBias = !flash && m.positions === 'alibi' ? streamSeconds(dev, 2 * dev.elementBytes * heads * sq * s) : 0;
  const coreFwd = flash ? flashSeconds(dev, b, a / tp, sq, s, d, 'forward') : gemmSeconds(dev, sq, d, s, heads) + gemmSeconds(dev, sq, s, d, heads) + alibiBias;
  const coreBwd = flash ? flashSeconds(dev, b, a / tp, sq, s, d, 'backward') : 2 * (coreFwd - alibiBias); // the bias has no gradient
  const k = EFFICIENCY.elementwisePerStoredByte;
  const stored = layerActivationBytes(m, t, 'none');
  const coreStored = stored - layerActivationBytes(m, t, 'selective');
  // The materialized attention core is counted kernel by kernel (Megatron's
  // FusedScaleMaskSoftmax and attention dropout, megatron/model/transformer.py; the score
  // matrix's write by QK^T and read by PV are in those GEMMs' bytes): per score the forward's
  // softmax reads the scores and writes the probabilities (2 + 2 bytes) and the dropout reads
  // them and writes its output and 1-byte mask (2 + 2 + 1): 9 bytes, 9/5 of the 5 the layer
  // keeps; the backward's dropout reads the gradient and the mask and writes (2 + 1 + 2), the
  // softmax's reads the gradient and the probabilities and writes (2 + 2 + 2): 11 bytes, 11/5.
  const rest = stored - coreStored;
  const coreEwFwd = streamSeconds(dev, (9 / 5) * coreStored), coreEwBwd = streamSeconds(dev, (11 / 5) * coreStored);
  const ew = streamSeconds(dev, k * rest) + coreEwFwd;
  const ewBwd = EFFICIENCY.elementwiseBackward * streamSeconds(dev, k * rest) + coreEwBwd;
  // Context parallelism: every rank gathers the others' keys and values (and reduce-scatters
  // their gradients), overlapped with its attention kernel.
  const kvBytes = 2 * b * s * (kv / tp) * dev.elementBytes;
  const cpGroup = groupOf(cp, tp, gpn);
  const kvGather = allGatherSeconds(c, cpGroup, kvBytes);
  const exposed = t.cpComm === 'all-gather';
  const cpFwd = exposed ? kvGather : Math.max(0, kvGather - coreFwd);
  const cpBwd = exposed ? kvGather : Math.max(0, kvGather - coreBwd);
  // Experts: dispatch and combine all-to-alls of the routed tokens, each pass.
  const a2a = m.moe ? 2 * allToAllSeconds(c, groupOf(ep, tp * cp, gpn), T * m.moe.topK * m.moe.capacityFactor * h * dev.elementBytes) : 0;
  const forward: Cost = { gemm: linear + coreFwd, elementwise: ew, comm: tpFwd + cpFwd + a2a, zero: 0, weightGrad: 0 };
  const backward: Cost = { gemm: dgrad + wgrad + coreBwd, elementwise: ewBwd, comm: tpBwd + cpBwd + a2a, zero: 0, weightGrad: wgrad };
  let recompute = zeroCost();
  if (t.recompute === 'full') recompute = { ...forward, weightGrad: 0 };
  else if (t.recompute === 'selective') recompute = { gemm: coreFwd, elementwise: coreEwFwd, comm: 0, zero: 0, weightGrad: 0 };
  // ZeRO-3: each layer's weights are gathered before its forward and again before its
  // backward, and its gradients reduce-scattered after; prefetching hides them behind the
  // previous layer's compute, so only what compute cannot cover is exposed.
  if (t.zero === 3 && t.dp * cp > 1) {
    const g = groupOf(t.dp * cp, tp, gpn);
    const gatherBytes = t.gatherDtype === 'fp32' ? 4 : dev.elementBytes;
    const w = layerParams(m) / tp;
    const gather = allGatherSeconds(c, g, w * gatherBytes);
    const scatter = allGatherSeconds(c, g, w * dev.elementBytes);
    // Weights gathered in fp32 are cast to 16 bits by autocast at every use (read 4, write 2
    // bytes per parameter), in the forward, the recomputed forward and the backward.
    if (gatherBytes > dev.elementBytes) {
      const cast = streamSeconds(dev, w * (gatherBytes + dev.elementBytes));
      forward.elementwise += cast;
      backward.elementwise += cast;
      if (t.recompute === 'full') recompute.elementwise += cast;
    }
    forward.zero = overlapped(dev, gather, total(forward));
    backward.zero = overlapped(dev, gather + scatter, total(backward) + total(recompute));
  }
  return { forward, backward, recompute };
}

/**
 * Bytes the loss moves per logit (beyond the logits GEMM's own output), forward and backward.
 * 'unfused': Megatron's vocab_parallel_cross_entropy (megatron/mpu/cross_entropy.py in 2021,
 * megatron/core/tensor_parallel/cross_entropy.py in Megatron-Core; Megatron-DeepSpeed calls
 * the same) on logits cast to fp32: the cast (read 16-bit, write 4), the max (read 4), the
 * in-place subtraction, exp and division by the sum (read and write 4 each) and the sum
 * (read 4); backward, the in-place scaling by the output gradient (read and write 4) and the
 * cast back (read 4, write 16-bit). 'fused': one kernel each way (flash-attn's
 * CrossEntropyLoss, llm-foundry's default loss_fn), which reads the 16-bit logits once (a
 * row's maximum and sum of exponentials in one pass; a second pass over the row, where the
 * kernel makes one, finds it in L2) and, backward, reads them and writes the gradient.
 */
function crossEntropyBytesPerLogit(kind: 'unfused' | 'fused', elementBytes: number): { forward: number; backward: number } {
  if (kind === 'fused') return { forward: elementBytes, backward: 2 * elementBytes };
  const cast = elementBytes < 4 ? elementBytes + 4 : 0;
  return { forward: cast + 4 + 8 + 8 + 4 + 8, backward: 8 + cast };
}

/** Embedding (first stage) and output layer with the cross-entropy (last stage). */
function endCosts(m: ModelSpec, c: ClusterSpec, t: TrainingSpec, dev: Device): { first: LayerCosts; last: LayerCosts } {
  const T = (t.microBatch * t.seqLen) / (t.cp ?? 1);
  const block = T * m.hidden * dev.elementBytes;
  const lookup = streamSeconds(dev, 2 * block);
  // Both ends are split by vocabulary over the tensor-parallel ranks. The embedding's partial
  // lookups are summed by an all-reduce (a reduce-scatter into the sequence-parallel slices,
  // whose backward all-gathers the gradient); the output layer reads the whole hidden state
  // (all-gathered from the slices) and its input gradient, partial per rank, is all-reduced
  // (reduce-scattered) in the backward (Megatron's VocabParallelEmbedding and parallel_lm_logits
  // or output_layer: copy_to / reduce_from / gather_from the tensor-parallel region).
  const tpGroup = groupOf(t.tp, 1, c.node.gpusPerNode);
  const sp = t.sequenceParallel && t.tp > 1;
  const allReduce = allReduceSeconds(c, tpGroup, block), slice = allGatherSeconds(c, tpGroup, block);
  const first: LayerCosts = {
    forward: { ...zeroCost(), elementwise: lookup, comm: sp ? slice : allReduce },
    backward: { ...zeroCost(), elementwise: 2 * lookup, comm: sp ? slice : 0 },
    recompute: zeroCost(),
  };
  const Vt = m.vocab / t.tp;
  const logits = gemmSeconds(dev, T, m.hidden, Vt);
  const ce = crossEntropyBytesPerLogit(t.crossEntropy ?? 'unfused', dev.elementBytes);
  // The final norm before the output layer (on this rank's sequence slice with sequence
  // parallelism): forward reads and writes the block, backward reads the gradient and the
  // input and writes the gradient.
  const norm = (sp ? 1 / t.tp : 1) * block;
  const last: LayerCosts = {
    forward: { ...zeroCost(), gemm: logits, elementwise: streamSeconds(dev, ce.forward * T * Vt + 2 * norm), comm: sp ? slice : 0 },
    backward: {
      ...zeroCost(),
      gemm: gemmSeconds(dev, T, Vt, m.hidden) + gemmSeconds(dev, m.hidden, T, Vt),
      elementwise: streamSeconds(dev, ce.backward * T * Vt + 3 * norm),
      comm: sp ? slice : allReduce,
      weightGrad: gemmSeconds(dev, m.hidden, T, Vt),
    },
    recompute: zeroCost(),
  };
  if (t.zero === 3 && t.dp > 1) {
    const g = groupOf(t.dp * (t.cp ?? 1), t.tp, c.node.gpusPerNode);
    const bytes = (embeddingParams(m) / t.tp) * (t.gatherDtype === 'fp32' ? 4 : dev.elementBytes);
    const gather = allGatherSeconds(c, g, bytes);
    first.forward.zero = gather;
    first.backward.zero = 2 * gather;
  }
  return { first, last };
}

export function stepTime(m: ModelSpec, c: ClusterSpec, t: TrainingSpec): TimeBreakdown {
  const dev = deviceOf(c, t);
  const gpn = c.node.gpusPerNode;
  const cp = t.cp ?? 1;
  const micro = t.globalBatch / (t.microBatch * t.dp);
  const S = t.pp * t.interleave;
  const layers = t.stageLayers ?? new Array<number>(S).fill(m.layers / S);
  const L = layerCosts(m, c, t, dev);
  const ends = endCosts(m, c, t, dev);
  // Per virtual stage: its layers, plus the embedding on the first and the output on the last.
  const fwd: Cost[] = [], bwd: Cost[] = [], redo: Cost[] = [];
  for (let j = 0; j < S; j++) {
    let f = add(zeroCost(), L.forward, layers[j]!);
    let bk = add(zeroCost(), L.backward, layers[j]!);
    const r = add(zeroCost(), L.recompute, layers[j]!);
    if (j === 0) { f = add(f, ends.first.forward); bk = add(bk, ends.first.backward); }
    if (j === S - 1) { f = add(f, ends.last.forward); bk = add(bk, ends.last.backward); }
    fwd.push(f); bwd.push(bk); redo.push(r);
  }
  // Gradient accumulation: every micro-batch's backward adds the fresh 16-bit weight gradients
  // into the gradient buffer (Megatron's main_grad hook and DeepSpeed's engine: read the new
  // gradient and the buffer, write the buffer; fp32 buffers for bf16, which Megatron enforces:
  // "bfloat16 requires gradient accumulation and all-reduce to be performed in fp32"). With
  // ZeRO-2/3 the buffer is the GPU's shard, reduce-scattered first: its traffic is 1/dp of that.
  const grad = modelStateBytes(t).grads;
  const ep = t.ep ?? 1;
  const expertShare = m.moe ? m.moe.experts * expertParams(m) * (1 - 1 / ep) : 0;
  const sharded = t.zero >= 2 ? t.dp * cp : 1;
  // DeepSpeed's pipeline engine with bf16 runs its BF16_Optimizer, which after every
  // micro-batch's backward adds each 16-bit gradient into its fp32 one as
  // hp_grad.add_(lp.grad.to(fp32)) (deepspeed/runtime/bf16_optimizer.py, update_hp_grads,
  // called from PipelineEngine._exec_backward_pass): the cast writes and reads an fp32 copy of
  // the gradient first, 4 + 4 more bytes per parameter.
  const deepspeedBf16 = deepspeedEngine(t) && t.dtype === 'bf16';
  stageParamCounts(m, t).forEach((p, j) => {
    const params = (p - layers[j]! * expertShare) / t.tp / sharded;
    bwd[j]!.elementwise += streamSeconds(dev, params * (dev.elementBytes + 2 * grad + (deepspeedBf16 ? 8 : 0)));
  });
  // How activations cross between stages. Megatron's scatter-gather (default): each TP rank
  // sends 1/tp of the activation to the next stage, asynchronously, and the receiving TP group
  // all-gathers it: a delay between the stages. The frameworks of 2021-22 did it differently:
  // Megatron-LM as of the SC21 artifact ('synchronous') and DeepSpeed's pipeline engine
  // ('blocking', or unpartitioned 'blocking-full') make every transfer a rendezvous that
  // stalls both stages, in the groupings their schedules use (pipeline-exchange.ts).
  // Neighbouring stages are tp x cp x dp ranks apart.
  const p2p = t.pipelineP2p ?? 'scatter-gather';
  const sliced = p2p !== 'blocking-full' && t.tp > 1;
  const sameNode = t.tp * cp * t.dp < gpn;
  const fullBytes = t.microBatch * (t.seqLen / cp) * m.hidden * dev.elementBytes;
  // With sequence parallelism the activation is already split by sequence across the TP
  // group, so each rank sends its own 1/tp and nothing is gathered (Megatron skips the
  // gather then: "scatter_gather_tensors_in_pipeline and not sequence_parallel").
  // The 2021-22 frameworks gathered through torch.distributed.all_gather into a list of
  // tensors, which PyTorch's NCCL backend runs into a flat buffer of its own and then copies out
  // to each (ProcessGroupNCCL::allgather: flatten_for_scatter_gather, a copy_ per output): the
  // full activation read and written once more. Megatron 2021 gathers into views of one buffer
  // (mpu.gather_split_1d_tensor): that copy only. DeepSpeed's PartitionedTensor.full()
  // (deepspeed/runtime/utils.py) also zero-fills its flat buffer, copies its own slice in and
  // returns a clone of the result: 1 + 2/tp + 2 + 2 passes over the full activation. Later
  // Megatron gathers with _all_gather_base into its buffer directly.
  const gatherCopies = p2p === 'synchronous' ? 2 : p2p === 'blocking' ? 5 + 2 / t.tp : 0;
  const gather = sliced && !t.sequenceParallel ? allGatherSeconds(c, groupOf(t.tp, 1, gpn), fullBytes) + streamSeconds(dev, gatherCopies * fullBytes) : 0;
  const wire = t.pp > 1 ? sendSeconds(c, sameNode, sliced ? fullBytes / t.tp : fullBytes) : 0;
  const exchanges = p2p !== 'scatter-gather' && t.pp > 1;
  const send = exchanges ? 0 : wire + gather;
  const forward = fwd.map(total);
  const backward = bwd.map((x, j) => total(x) + total(redo[j]!));
  const sim: PipelineResult & { comm?: number[] } = exchanges
    ? simulateExchanges({ framework: p2p === 'synchronous' ? 'megatron-2021' : 'deepspeed', stages: t.pp, chunks: t.interleave, microBatches: micro, forward, backward, wire, gather })
    : simulatePipeline({
      schedule: t.schedule ?? (t.interleave > 1 ? 'interleaved' : '1f1b'),
      stages: t.pp,
      chunks: t.interleave,
      microBatches: micro,
      forward,
      backward,
      weightGrad: bwd.map((x) => x.weightGrad),
      send: new Array<number>(Math.max(0, S - 1)).fill(send),
    });

  // Data-parallel gradient reduction (ZeRO 0-2), per stage, bucket by bucket behind the last
  // micro-batch's backward; ZeRO-1/2 then all-gather the updated 16-bit weights.
  const bytes = modelStateBytes(t);
  const stageParams = gpuStageParams(m, t);
  const dpGroup = groupOf(t.dp * cp, t.tp, gpn);
  const bucketBytes = 40e6 * bytes.grads; // Megatron's default bucket: 40M parameters
  let critical = 0, criticalEnd = -1, criticalDp = 0, optimizer = 0;
  for (let i = 0; i < t.pp; i++) {
    const grads = stageParams[i]! * bytes.grads;
    let dp = 0;
    if (t.dp * cp > 1 && t.zero < 3) {
      // DeepSpeed's BF16_Optimizer all-reduces the fp32 gradients in full even with its ZeRO-1
      // sharded step (PipelineEngine._bf16_reduce_grads: buffered_allreduce_fallback), then
      // all-gathers the updated bf16 weights.
      const fullReduce = t.zero === 0 || deepspeedBf16;
      const reduce = fullReduce ? allReduceSeconds(c, dpGroup, grads) : allGatherSeconds(c, dpGroup, grads);
      const buckets = Math.max(1, Math.ceil(grads / bucketBytes));
      const overlap = t.overlapGradReduce ?? true;
      const perReduce = overlap ? overlapped(dev, reduce, sim.lastBackward[i]!) + reduce / buckets : reduce;
      // ZeRO-2 keeps gradients sharded: it reduce-scatters after every micro-batch's backward.
      dp = t.zero === 2 ? micro * perReduce : perReduce;
      if (t.zero >= 1) {
        const gather = allGatherSeconds(c, dpGroup, stageParams[i]! * bytes.params);
        // Megatron-Core's --overlap-param-gather gathers each bucket of updated weights behind
        // the next step's first forward pass, waiting only for the bucket a layer needs.
        const stageForward = forward.filter((_, j) => j % t.pp === i).reduce((x, y) => x + y, 0);
        dp += t.overlapParamGather ? overlapped(dev, gather, stageForward) + gather / buckets : gather;
      }
    }
    // Adam reads master weights, momentum, variance and gradient, writes the first three and
    // the 16-bit copy: 4+4+4+g in, 4+4+4+p out per parameter this GPU updates. Before it, the
    // gradient norm (for clipping and the logged grad norm, computed by default: Megatron's
    // clip_grad 1.0, DeepSpeed's and Composer's gradient_clipping) reads every gradient once
    // more (g). fp16 with loss scaling first copies the 16-bit gradients into fp32 ones and
    // unscales them while checking for inf/nan (Megatron's Float16OptimizerWithFloat16Params:
    // _copy_model_grads_to_main_grads, _unscale_main_grads_and_check_for_nan; DeepSpeed's
    // FP16_Optimizer likewise): 2 + 4 and 4 + 4 bytes, and norm and Adam then read 4-byte
    // gradients, 2 + 2 more.
    const updated = t.zero >= 1 ? stageParams[i]! / (t.dp * cp) : stageParams[i]!;
    const lossScaled = t.dtype === 'fp16' ? 6 + 8 + 2 * (4 - bytes.grads) : 0;
    const opt = streamSeconds(dev, updated * (24 + 2 * bytes.grads + bytes.params + lossScaled));
    // A tied output layer's gradient is all-reduced between the first and the last stage after
    // the flush, before the data-parallel reduction (Megatron's embedding group all-reduce in
    // training.py; DeepSpeed's ReduceTiedGrads instruction).
    if (t.pp > 1 && m.tiedEmbeddings !== false && t.zero < 3 && (i === 0 || i === t.pp - 1)) {
      dp += allReduceSeconds(c, groupOf(2, t.tp * cp * t.dp * (t.pp - 1), gpn), (embeddingParams(m) / t.tp) * bytes.grads);
    }
    const end = sim.finish[i]! + dp + opt;
    if (end > criticalEnd) { criticalEnd = end; critical = i; criticalDp = dp; optimizer = opt; }
  }

  // Attribute the critical stage's time to causes.
  const mine = (arr: Cost[]) => arr.filter((_, j) => j % t.pp === critical).reduce((x, y) => add(x, y), zeroCost());
  const F = mine(fwd), B = mine(bwd), R = mine(redo);
  // Asynchronous sends delay the stages; synchronous exchanges occupy them (their transfer and
  // gather time; the wait for a partner is bubble).
  const sends = sim.comm ? sim.comm[critical]! : (t.pp > 1 ? 2 : 0) * send * t.interleave * micro;
  const busy = sim.busy[critical]!;
  const breakdown: TimeBreakdown = {
    gemm: micro * (F.gemm + B.gemm),
    elementwise: micro * (F.elementwise + B.elementwise),
    recompute: micro * total(R),
    tensorParallel: micro * (F.comm + B.comm),
    pipelineSend: sends,
    bubble: Math.max(0, sim.finish[critical]! - busy - sends),
    dataParallel: criticalDp + micro * (F.zero + B.zero),
    optimizer,
    step: criticalEnd,
  };
  return breakdown;
}
