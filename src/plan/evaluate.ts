// One layout, fully evaluated: memory per GPU, step time by cause, throughput, utilisation,
// and what the whole token budget costs in days, GPU-hours and dollars.
import { type MemoryBreakdown, memoryPerGpu, usableMemoryGB } from './memory.js';
import { activeParamCount, iterationFlops, paramCount } from './params-flops.js';
import { type ClusterSpec, type ModelSpec, type TrainingSpec, peakFlops } from './specs.js';
import { type TimeBreakdown, stepTime } from './time.js';

export interface PlanResult {
  model: ModelSpec;
  cluster: string;
  /** The cluster's description (states the topology when a preset was scaled). */
  clusterNote?: string;
  training: TrainingSpec;
  params: number;
  memory: MemoryBreakdown;
  memoryLimitGB: number;
  fits: boolean;
  time: TimeBreakdown;
  tokensPerS: number;
  /** FLOP/s per GPU counting the model's arithmetic only (forward + backward). */
  tflopsModel: number;
  /** FLOP/s per GPU counting what the GPUs actually compute (recomputation included). */
  tflopsHardware: number;
  mfu: number;
  hfu: number;
  days: number;
  gpuHours: number;
  costDollars: number;
}

export function evaluate(m: ModelSpec, c: ClusterSpec, t: TrainingSpec): PlanResult {
  const memory = memoryPerGpu(m, t);
  const memoryLimitGB = usableMemoryGB(c.node.gpu.memoryGB);
  const time = stepTime(m, c, t);
  const flops = iterationFlops(m, t.globalBatch, t.seqLen, t.recompute);
  const peak = peakFlops(c.node.gpu, t.dtype);
  const perGpu = (f: number) => f / time.step / t.gpus;
  const tokensPerStep = t.globalBatch * t.seqLen;
  const tokensPerS = tokensPerStep / time.step;
  const seconds = t.tokens / tokensPerS;
  const gpuHours = (seconds / 3600) * t.gpus;
  return {
    model: m,
    cluster: c.name,
    ...(c.note !== undefined ? { clusterNote: c.note } : {}),
    training: t,
    params: paramCount(m),
    memory,
    memoryLimitGB,
    fits: memory.total <= memoryLimitGB,
    time,
    tokensPerS,
    tflopsModel: perGpu(flops.model) / 1e12,
    tflopsHardware: perGpu(flops.hardware) / 1e12,
    mfu: perGpu(flops.model) / peak,
    hfu: perGpu(flops.hardware) / peak,
    days: seconds / 86400,
    gpuHours,
    costDollars: gpuHours * c.dollarsPerGpuHour,
  };
}

/** The JSON object `atscale plan --json` prints. */
export function toJson(r: PlanResult): Record<string, unknown> {
  const t = r.training;
  const round = (x: number, d = 4) => Number(x.toPrecision(d));
  return {
    model: r.model.name,
    cluster: r.cluster,
    layout: {
      gpus: t.gpus, tp: t.tp, pp: t.pp, dp: t.dp, interleave: t.interleave, global_batch: t.globalBatch, micro_batch: t.microBatch,
      seq_len: t.seqLen, dtype: t.dtype, zero: t.zero, recompute: t.recompute, sequence_parallel: t.sequenceParallel, tokens: t.tokens,
      cp: t.cp ?? 1, ep: t.ep ?? 1, schedule: t.schedule ?? '1f1b', attention: t.attention ?? 'flash', stage_layers: t.stageLayers,
      tp_comm_overlap: t.tpCommOverlap === true && t.tp > 1, overlap_param_gather: t.overlapParamGather === true, cross_entropy: t.crossEntropy ?? 'unfused',
    },
    cluster_note: r.clusterNote,
    params: r.params,
    active_params: activeParamCount(r.model),
    memory_gb_per_gpu: {
      params: round(r.memory.params), grads: round(r.memory.grads), optimizer: round(r.memory.optimizer),
      activations: round(r.memory.activations), overhead: round(r.memory.overhead), total: round(r.memory.total), limit: round(r.memoryLimitGB),
    },
    fits: r.fits,
    step_time_s: round(r.time.step),
    step_time_breakdown_s: Object.fromEntries(Object.entries(r.time).filter(([k]) => k !== 'step').map(([k, v]) => [k, round(v)])),
    tokens_per_s: round(r.tokensPerS),
    tflops_per_gpu_model: round(r.tflopsModel),
    tflops_per_gpu_hardware: round(r.tflopsHardware),
    mfu: round(r.mfu, 3),
    hfu: round(r.hfu, 3),
    days: round(r.days),
    gpu_hours: round(r.gpuHours),
    cost_usd: round(r.costDollars),
  };
}
