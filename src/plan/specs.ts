// Typed records for what the planner reasons about: a model, a GPU, a node, a cluster and a
// training layout. Each has a checker that turns a JSON object into the record and, on bad
// input, names the key that was wrong and says what would be right.

export type Dtype = 'fp32' | 'tf32' | 'bf16' | 'fp16' | 'fp8';
export const DTYPES: readonly Dtype[] = ['fp32', 'tf32', 'bf16', 'fp16', 'fp8'];
export type Recompute = 'none' | 'selective' | 'full';
export const RECOMPUTES: readonly Recompute[] = ['none', 'selective', 'full'];

/** A decoder-only transformer (GPT shape: learned positions, 4 matrices in attention, 2 in the MLP). */
export interface ModelSpec {
  name: string;
  layers: number;
  hidden: number;
  heads: number;
  seqLen: number;
  vocab: number;
  /** Feed-forward width; 4 x hidden unless given. */
  ffn: number;
  /** The global batch (sequences) the published run used, a default for planning. */
  globalBatch?: number;
}

export interface GpuSpec {
  name: string;
  /** Dense (not sparse) peak TFLOP/s per dtype, as on the datasheet; a missing dtype is unsupported. */
  peakTflops: Partial<Record<Dtype, number>>;
  memoryGB: number;
  memoryGBs: number;
}

export interface NodeSpec {
  gpusPerNode: number;
  gpu: GpuSpec;
  /** Per-GPU intra-node (NVLink) bandwidth, both directions together, as vendors quote it. */
  intraNodeGBs: number;
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
  return m;
}

export function checkGpu(o: Json, where = 'gpu'): GpuSpec {
  const peaks = obj(o, 'peakTflops', where);
  const peakTflops: Partial<Record<Dtype, number>> = {};
  for (const [k, v] of Object.entries(peaks)) {
    if (!DTYPES.includes(k as Dtype)) throw new PlanInputError(`${where}.peakTflops: unknown dtype '${k}'; known: ${DTYPES.join(', ')}`);
    peakTflops[k as Dtype] = num({ [k]: v }, k, `${where}.peakTflops`);
  }
  return { name: str(o, 'name', 'gpu'), peakTflops, memoryGB: num(o, 'memoryGB', where), memoryGBs: num(o, 'memoryGBs', where) };
}

export function checkCluster(o: Json, where = 'cluster'): ClusterSpec {
  const nodeJson = obj(o, 'node', where);
  const node: NodeSpec = {
    gpusPerNode: num(nodeJson, 'gpusPerNode', `${where}.node`, { int: true }),
    gpu: checkGpu(obj(nodeJson, 'gpu', `${where}.node`), `${where}.node.gpu`),
    intraNodeGBs: num(nodeJson, 'intraNodeGBs', `${where}.node`),
  };
  if (nodeJson.cpuCoresPerNode !== undefined) node.cpuCoresPerNode = num(nodeJson, 'cpuCoresPerNode', `${where}.node`, { int: true });
  const c: ClusterSpec = {
    name: str(o, 'name', 'cluster'),
    nodes: num(o, 'nodes', where, { int: true }),
    node,
    interNodeGbits: num(o, 'interNodeGbits', where),
    interNodeLatencyUs: num(o, 'interNodeLatencyUs', where, { allowZero: true }),
    dollarsPerGpuHour: num(o, 'dollarsPerGpuHour', where, { allowZero: true }),
  };
  if (typeof o.note === 'string') c.note = o.note;
  return c;
}

export function clusterGpus(c: ClusterSpec): number {
  return c.nodes * c.node.gpusPerNode;
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
