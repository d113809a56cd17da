// Typed records for what the planner reasons about: a model, a GPU, a node, a cluster and a
// training layout. Each has a checker that turns a JSON object into the record and, on bad
// input, names the key that was wrong and says what would be right.

export type Dtype = 'fp32' | 'tf32' | 'bf16' | 'fp16' | 'fp8';
export const DTYPES: readonly Dtype[] = ['fp32', 'tf32', 'bf16', 'fp16', 'fp8'];
export type Recompute = 'none' | 'selective' | 'full';
export const RECOMPUTES: readonly Recompute[] = ['none', 'selective', 'full'];

/** Mixture of experts in every layer's MLP (Switch/GShard/Mixtral style). */
export interface MoeSpec {
  experts: number;
  /** Experts each token is routed to. */
  topK: number;
  /** Tokens an expert accepts, as a multiple of its fair share (k T / E); 1 = exactly fair. */
  capacityFactor: number;
}

/**
 * A decoder-only transformer. The optional fields default to the GPT-2/GPT-3 shape: every
 * head has its own keys and values, a 2-matrix GeLU MLP, biases everywhere, LayerNorm,
 * learned positions and an output layer tied to the embedding. Llama-family models set
 * kvHeads (GQA/MQA), gatedMlp (SwiGLU: gate, up and down matrices), bias 'none', rmsnorm,
 * rope positions and, for the larger ones, untied heads.
 */
export interface ModelSpec {
  name: string;
  layers: number;
  hidden: number;
  heads: number;
  seqLen: number;
  vocab: number;
  /** Feed-forward width; 4 x hidden unless given. */
  ffn: number;
  /** Key/value heads (grouped-query attention); = heads unless given, 1 = multi-query. */
  kvHeads?: number;
  /** SwiGLU-style gated MLP: three h x f matrices instead of two. */
  gatedMlp?: boolean;
  /** Output layer shares the embedding matrix (default true). */
  tiedEmbeddings?: boolean;
  /** Which projections have biases: all (GPT), qkv only (Qwen2) or none (Llama). */
  bias?: 'all' | 'qkv' | 'none';
  norm?: 'layernorm' | 'rmsnorm';
  /** learned: an s x h position table; rope and alibi have no parameters. */
  positions?: 'learned' | 'rope' | 'alibi';
  moe?: MoeSpec;
  /** The global batch (sequences) the published run used, a default for planning. */
  globalBatch?: number;
}

export type Schedule = 'gpipe' | '1f1b' | 'interleaved' | 'zero-bubble';
export const SCHEDULES: readonly Schedule[] = ['gpipe', '1f1b', 'interleaved', 'zero-bubble'];
/**
 * The attention kernel: FlashAttention-2 ('flash', 2023 on), the first FlashAttention or its
 * Triton port ('flash-v1', 2022-23: what MosaicML's MPT benchmarks ran, attn_impl: triton), or
 * the 2021-22 materialized softmax.
 */
export type Attention = 'flash' | 'flash-v1' | 'materialized';
export const ATTENTIONS: readonly Attention[] = ['flash', 'flash-v1', 'materialized'];

export interface GpuSpec {
  name: string;
  /** Dense (not sparse) peak TFLOP/s per dtype, as on the datasheet; a missing dtype is unsupported. */
  peakTflops: Partial<Record<Dtype, number>>;
  memoryGB: number;
  memoryGBs: number;
  /** Streaming multiprocessors: how many GEMM tiles run at once (wave quantization). */
  sms?: number;
  /** Fraction of the dense peak the best-shaped GEMM reaches (measured MAMF / datasheet). */
  gemmEfficiency?: number;
  /** The same for fp8 GEMMs, where it was measured separately. */
  gemmEfficiencyFp8?: number;
  /** Fraction of datasheet HBM bandwidth a streaming kernel reaches. */
  memoryEfficiency?: number;
  /** Fractions of dense peak a causal flash-attention kernel reaches, forward and backward. */
  flashForwardEfficiency?: number;
  flashBackwardEfficiency?: number;
}

/** How nodes are wired: a rail-optimised or fat-tree Clos with oversubscription above a
 * full-bisection domain. */
export interface NetworkSpec {
  topology: 'rail-optimized' | 'fat-tree';
  /** Nodes that reach each other at full bandwidth (one leaf, or one pod / scalable unit). */
  fullBisectionNodes: number;
  /** Down:up bandwidth ratio of the tier above that domain (1 = non-blocking). */
  oversubscription: number;
}

export interface NodeSpec {
  gpusPerNode: number;
  gpu: GpuSpec;
  /** Per-GPU intra-node bandwidth, both directions together, as vendors quote it. */
  intraNodeGBs: number;
  /** What carries it: NVLink / NVSwitch (default), or PCIe (GPUs without NVLink). */
  intraNodeLink?: 'nvlink' | 'pcie';
  cpuCoresPerNode?: number;
}

export interface ClusterSpec {
  name: string;
  nodes: number;
  node: NodeSpec;
  /** Injection bandwidth per node, one direction, in Gbit/s (sum over its NICs). */
  interNodeGbits: number;
  /** One-way latency of a small message between nodes, microseconds. */
  interNodeLatencyUs: number;
  dollarsPerGpuHour: number;
  /** Topology above the node; non-blocking when absent. */
  network?: NetworkSpec;
  note?: string;
}

/** A training run: batch, precision and the parallel layout. */
export interface TrainingSpec {
  gpus: number;
  globalBatch: number;
  microBatch: number;
  seqLen: number;
  dtype: Dtype;
  tp: number;
  pp: number;
  dp: number;
  /** Virtual pipeline stages per GPU (Megatron's interleaved 1F1B); 1 = plain 1F1B. */
  interleave: number;
  zero: 0 | 1 | 2 | 3;
  recompute: Recompute;
  sequenceParallel: boolean;
  tokens: number;
  /** Context parallelism: ranks that split each sequence (ring attention over KV). */
  cp?: number;
  /**
   * How context parallelism exchanges keys and values: a ring of point-to-point sends hidden
   * behind the attention kernel (Megatron-Core; default), or one all-gather before attention
   * and a reduce-scatter of their gradients after it, exposed on the critical path (Llama 3,
   * Dubey et al. 2024, section 3.3.2, chose it for document masks; small with GQA's few KV heads).
   */
  cpComm?: 'ring' | 'all-gather';
  /** Expert parallelism: ranks (taken from dp x cp) that split the experts. */
  ep?: number;
  /** Pipeline schedule; '1f1b' (or 'interleaved' when interleave > 1) unless given. */
  schedule?: Schedule;
  /** Flash attention, v2 or v1 (no s x s scores in memory), or the 2021-22 materialized softmax. */
  attention?: Attention;
  /** The dtype ZeRO-3/FSDP gathers weights in (fp32 for FSDP's default mixed precision). */
  gatherDtype?: Dtype;
  /** Layers on each pipeline stage (virtual stages with interleaving), first to last. */
  stageLayers?: number[];
  /**
   * Whether the data-parallel gradient reduction overlaps the last backward pass, bucket by
   * bucket (PyTorch DDP/FSDP, Megatron-Core's --overlap-grad-reduce since 2023; default), or
   * starts after the pipeline flush (Megatron-LM 2021-22 and DeepSpeed's pipeline engine).
   */
  overlapGradReduce?: boolean;
  /**
   * Megatron-Core's --tp-comm-overlap: Transformer Engine's userbuffers overlap each
   * tensor-parallel all-gather and reduce-scatter with the GEMM beside it (tp-overlap.ts).
   * Needs sequence parallelism and the TP group inside one node.
   */
  tpCommOverlap?: boolean;
  /**
   * How the loss is computed over the logits: 'unfused' (default), Megatron's
   * vocab-parallel cross-entropy as a chain of fp32 kernels; 'fused', one kernel each way
   * (flash-attn's CrossEntropyLoss, as llm-foundry uses by default).
   */
  crossEntropy?: 'unfused' | 'fused';
  /**
   * Megatron-Core's --overlap-param-gather: the distributed optimizer's all-gather of updated
   * weights runs behind the next step's forward pass instead of after the optimizer step.
   * Needs ZeRO-1 (the distributed optimizer).
   */
  overlapParamGather?: boolean;
  /**
   * How activations move between pipeline stages. 'scatter-gather' (Megatron, default): each TP
   * rank sends 1/tp of the tensor and the receivers all-gather it over NVLink, as a delay
   * between the stages. 'blocking' (DeepSpeed's pipeline engine): the same 1/tp slices
   * (PipelineEngine sets is_pipe_partitioned when there is model parallelism and sends a
   * PartitionedTensor, all-gathered on arrival) through blocking 2-rank broadcasts, so the
   * transfer stalls both stages. 'blocking-full': DeepSpeed with pipe_partitioned: false, the
   * whole tensor from every TP rank. 'synchronous' (Megatron-LM as of 2021, the SC21 artifact):
   * scatter-gather slices, but every exchange is a batch_isend_irecv waited on and followed by
   * torch.cuda.synchronize(), so it too stalls both stages (pipeline-exchange.ts).
   */
  pipelineP2p?: 'scatter-gather' | 'synchronous' | 'blocking' | 'blocking-full';
}

/** Bad input, with a message that names the key and shows the arithmetic. */
export class PlanInputError extends Error {
  override name = 'PlanInputError';
}

type Json = Record<string, unknown>;

function num(o: Json, key: string, where: string, opts: { int?: boolean; allowZero?: boolean } = {}): number {
  const v = o[key];
  if (typeof v !== 'number' || !Number.isFinite(v)) {
    throw new PlanInputError(`${where}: key '${key}' must be a number, got ${JSON.stringify(v)}`);
  }
  if (opts.int && !Number.isInteger(v)) throw new PlanInputError(`${where}: key '${key}' must be a whole number, got ${v}`);
  if (v < 0 || (v === 0 && !opts.allowZero)) {
    throw new PlanInputError(`${where}: key '${key}' must be ${opts.allowZero ? 'zero or more' : 'positive'}, got ${v}`);
  }
  return v;
}

function obj(o: Json, key: string, where: string): Json {
  const v = o[key];
  if (typeof v !== 'object' || v === null || Array.isArray(v)) {
    throw new PlanInputError(`${where}: key '${key}' must be an object, got ${JSON.stringify(v)}`);
  }
  return v as Json;
}

function str(o: Json, key: string, fallback: string): string {
  const v = o[key];
  return typeof v === 'string' && v.length > 0 ? v : fallback;
}

export function checkModel(o: Json, where = 'model'): ModelSpec {
  const hidden = num(o, 'hidden', where, { int: true });
  const heads = num(o, 'heads', where, { int: true });
  if (hidden % heads !== 0) {
    throw new PlanInputError(`${where}: key 'hidden' (${hidden}) must be divisible by 'heads' (${heads}): ${hidden} / ${heads} = ${(hidden / heads).toFixed(2)}`);
  }
  const ffn = o.ffn === undefined ? 4 * hidden : num(o, 'ffn', where, { int: true });
  const m: ModelSpec = {
    name: str(o, 'name', 'custom'),
    layers: num(o, 'layers', where, { int: true }),
    hidden,
    heads,
    seqLen: num(o, 'seqLen', where, { int: true }),
    vocab: num(o, 'vocab', where, { int: true }),
    ffn,
  };
  if (o.globalBatch !== undefined) m.globalBatch = num(o, 'globalBatch', where, { int: true });
  if (o.kvHeads !== undefined) {
    const kv = num(o, 'kvHeads', where, { int: true });
    if (heads % kv !== 0) {
      throw new PlanInputError(`${where}: key 'kvHeads' (${kv}) must divide 'heads' (${heads}): ${heads} / ${kv} = ${(heads / kv).toFixed(2)} query heads per key/value head; use one of ${divisorList(heads)}`);
    }
    m.kvHeads = kv;
  }
  for (const k of ['gatedMlp', 'tiedEmbeddings'] as const) {
    if (o[k] === undefined) continue;
    if (typeof o[k] !== 'boolean') throw new PlanInputError(`${where}: key '${k}' must be true or false, got ${JSON.stringify(o[k])}`);
    m[k] = o[k] as boolean;
  }
  const choice = <T extends string>(k: string, options: readonly T[]): T | undefined => {
    if (o[k] === undefined) return undefined;
    if (!options.includes(o[k] as T)) throw new PlanInputError(`${where}: key '${k}' must be one of ${options.join(', ')}, got ${JSON.stringify(o[k])}`);
    return o[k] as T;
  };
  const bias = choice('bias', ['all', 'qkv', 'none'] as const);
  if (bias) m.bias = bias;
  const norm = choice('norm', ['layernorm', 'rmsnorm'] as const);
  if (norm) m.norm = norm;
  const positions = choice('positions', ['learned', 'rope', 'alibi'] as const);
  if (positions) m.positions = positions;
  if (o.moe !== undefined) m.moe = checkMoe(obj(o, 'moe', where), `${where}.moe`);
  return m;
}

export function divisorList(n: number, limit = 128): string {
  const out: number[] = [];
  for (let i = 1; i <= Math.min(n, limit); i++) if (n % i === 0) out.push(i);
  return out.join(', ');
}

export function checkMoe(o: Json, where = 'moe'): MoeSpec {
  const experts = num(o, 'experts', where, { int: true });
  const topK = num(o, 'topK', where, { int: true });
  if (topK > experts) throw new PlanInputError(`${where}: key 'topK' (${topK}) cannot exceed 'experts' (${experts}): a token is routed to at most every expert once`);
  const capacityFactor = o.capacityFactor === undefined ? 1 : num(o, 'capacityFactor', where);
  if (capacityFactor < 1) throw new PlanInputError(`${where}: key 'capacityFactor' (${capacityFactor}) must be at least 1: below 1 the experts cannot hold even a perfectly balanced k T / E tokens each`);
  return { experts, topK, capacityFactor };
}

export function checkGpu(o: Json, where = 'gpu'): GpuSpec {
  const peaks = obj(o, 'peakTflops', where);
  const extra: Partial<GpuSpec> = {};
  for (const k of ['sms'] as const) if (o[k] !== undefined) extra[k] = num(o, k, where, { int: true });
  for (const k of ['gemmEfficiency', 'gemmEfficiencyFp8', 'memoryEfficiency', 'flashForwardEfficiency', 'flashBackwardEfficiency'] as const) {
    if (o[k] === undefined) continue;
    const v = num(o, k, where);
    if (v > 1) throw new PlanInputError(`${where}: key '${k}' is a fraction of the datasheet figure and must be at most 1, got ${v}`);
    extra[k] = v;
  }
  const peakTflops: Partial<Record<Dtype, number>> = {};
  for (const [k, v] of Object.entries(peaks)) {
    if (!DTYPES.includes(k as Dtype)) throw new PlanInputError(`${where}.peakTflops: unknown dtype '${k}'; known: ${DTYPES.join(', ')}`);
    peakTflops[k as Dtype] = num({ [k]: v }, k, `${where}.peakTflops`);
  }
  return { name: str(o, 'name', 'gpu'), peakTflops, memoryGB: num(o, 'memoryGB', where), memoryGBs: num(o, 'memoryGBs', where), ...extra };
}

export function checkCluster(o: Json, where = 'cluster'): ClusterSpec {
  const nodeJson = obj(o, 'node', where);
  const node: NodeSpec = {
    gpusPerNode: num(nodeJson, 'gpusPerNode', `${where}.node`, { int: true }),
    gpu: checkGpu(obj(nodeJson, 'gpu', `${where}.node`), `${where}.node.gpu`),
    intraNodeGBs: num(nodeJson, 'intraNodeGBs', `${where}.node`),
  };
  if (nodeJson.intraNodeLink !== undefined) {
    if (nodeJson.intraNodeLink !== 'nvlink' && nodeJson.intraNodeLink !== 'pcie') {
      throw new PlanInputError(`${where}.node: key 'intraNodeLink' must be 'nvlink' or 'pcie', got ${JSON.stringify(nodeJson.intraNodeLink)}`);
    }
    node.intraNodeLink = nodeJson.intraNodeLink;
  }
  if (nodeJson.cpuCoresPerNode !== undefined) node.cpuCoresPerNode = num(nodeJson, 'cpuCoresPerNode', `${where}.node`, { int: true });
  const c: ClusterSpec = {
    name: str(o, 'name', 'cluster'),
    nodes: num(o, 'nodes', where, { int: true }),
    node,
    interNodeGbits: num(o, 'interNodeGbits', where),
    interNodeLatencyUs: num(o, 'interNodeLatencyUs', where, { allowZero: true }),
    dollarsPerGpuHour: num(o, 'dollarsPerGpuHour', where, { allowZero: true }),
  };
  if (o.network !== undefined) c.network = checkNetwork(obj(o, 'network', where), `${where}.network`);
  if (typeof o.note === 'string') c.note = o.note;
  return c;
}

export function checkNetwork(o: Json, where = 'network'): NetworkSpec {
  const topology = o.topology;
  if (topology !== 'rail-optimized' && topology !== 'fat-tree') {
    throw new PlanInputError(`${where}: key 'topology' must be 'rail-optimized' or 'fat-tree', got ${JSON.stringify(topology)}`);
  }
  const oversubscription = num(o, 'oversubscription', where);
  if (oversubscription < 1) throw new PlanInputError(`${where}: key 'oversubscription' is down:up bandwidth and must be at least 1 (1 = non-blocking), got ${oversubscription}`);
  return { topology, fullBisectionNodes: num(o, 'fullBisectionNodes', where, { int: true }), oversubscription };
}

export function clusterGpus(c: ClusterSpec): number {
  return c.nodes * c.node.gpusPerNode;
}

/** Whether the run uses DeepSpeed's pipeline engine (its p2p modes name it). */
export function deepspeedEngine(t: TrainingSpec): boolean {
  return t.pp > 1 && (t.pipelineP2p === 'blocking' || t.pipelineP2p === 'blocking-full');
}

/** Bytes per activation element: 4 for fp32 and tf32 training, 2 otherwise (fp8 keeps 16-bit
 * activations between its GEMMs). */
export function activationBytes(dtype: Dtype): number {
  return dtype === 'fp32' || dtype === 'tf32' ? 4 : 2;
}

/** Bytes per element of a GEMM's inputs: 1 in fp8 training, else the activation width. */
export function gemmInputBytes(dtype: Dtype): number {
  return dtype === 'fp8' ? 1 : activationBytes(dtype);
}

export function peakFlops(gpu: GpuSpec, dtype: Dtype): number {
  const t = gpu.peakTflops[dtype];
  if (t === undefined) {
    const have = Object.keys(gpu.peakTflops).join(', ');
    throw new PlanInputError(`dtype '${dtype}' is not supported by ${gpu.name} (it has: ${have}); pick one of those with --dtype`);
  }
  return t * 1e12;
}

/** The training dtype when none is given: bf16 where the GPU has it, else fp16, else fp32. */
export function defaultDtype(gpu: GpuSpec): Dtype {
  for (const d of ['bf16', 'fp16'] as const) if (gpu.peakTflops[d] !== undefined) return d;
  return 'fp32';
}
