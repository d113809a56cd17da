// A DeepSpeed-style JSON config (the subset atscale implements), parsed strictly: an unknown
// key is an error naming it and the known ones, a bad value names its key, and the three batch
// sizes must agree (any two give the third). Field names are DeepSpeed's, so an existing
// ds_config.json works when it only uses this subset.
import type { AdamWConfig } from '../optim/adamw.js';
import type { CosineSchedule } from '../optim/schedule.js';
import { checkDeepSpeedKeys, type DsDevice } from './ds-keys.js';
import type { MonitorOptions, MonitorSection } from '../monitor/index.js';

export type ZeroStage = 0 | 1 | 2 | 3;

export interface ZeroOptimization {
  stage: ZeroStage;
  /** Elements per gradient reduce-scatter (DeepSpeed counts elements, not bytes). */
  reduceBucketSize: number;
  /** Elements per parameter all-gather. */
  allgatherBucketSize: number;
  /** Reduce a segment's gradients while the next segment's backward runs (stages 2-3). */
  overlapComm: boolean;
  /** Accepted for compatibility: gradients are always one contiguous flat buffer here. */
  contiguousGradients: boolean;
}

export interface DeepSpeedConfig {
  trainBatchSize: number;
  microBatchPerGpu: number;
  gradAccum: number;
  worldSize: number;
  optimizer: AdamWConfig;
  /** The learning-rate schedule, mapped onto atscale's warmup + cosine schedule. */
  schedule: CosineSchedule;
  /** Global-norm clipping threshold; 0 disables it (DeepSpeed's default). */
  gradClip: number;
  zero: ZeroOptimization;
  stepsPerPrint: number;
  /** DeepSpeed's monitor sections (`tensorboard`, `csv_monitor`); absent ones keep atscale's defaults. */
  monitor: MonitorOptions;
}

export class DeepSpeedConfigError extends Error {
  override name = 'DeepSpeedConfigError';
}

const DEFAULT_BUCKET = 500_000_000;
// pipeline, tensor_parallel and activation_checkpointing are parsed by mesh/config.ts.
const MONITOR_KEYS = ['enabled', 'output_path', 'job_name'];
const OPT_KEYS = ['type', 'params'];
const OPT_PARAM_KEYS = ['lr', 'betas', 'eps', 'weight_decay', 'adam_w_mode'];
const ZERO_KEYS = ['stage', 'reduce_bucket_size', 'allgather_bucket_size', 'overlap_comm', 'contiguous_gradients'];
const SCHED_PARAMS: Record<string, string[]> = {
  WarmupCosineLR: ['total_num_steps', 'warmup_num_steps', 'warmup_min_ratio', 'cos_min_ratio', 'warmup_type'],
  WarmupDecayLR: ['total_num_steps', 'warmup_num_steps', 'warmup_min_lr', 'warmup_max_lr', 'warmup_type'],
  WarmupLR: ['warmup_num_steps', 'warmup_min_lr', 'warmup_max_lr', 'warmup_type'],
};

type Obj = Record<string, unknown>;

function isObj(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function object(v: unknown, where: string, known: string[]): Obj {
  if (!isObj(v)) throw new DeepSpeedConfigError(`${where} must be a JSON object, got ${JSON.stringify(v)}`);
  for (const k of Object.keys(v)) {
    if (!known.includes(k)) throw new DeepSpeedConfigError(`unknown key '${where === 'config' ? k : `${where}.${k}`}' in the DeepSpeed config; known keys here: ${known.join(', ')}`);
  }
  return v;
}

function num(o: Obj, key: string, where: string, check: (x: number) => boolean, want: string): number | undefined {
  const v = o[key];
  if (v === undefined) return undefined;
  if (typeof v !== 'number' || !Number.isFinite(v) || !check(v)) throw new DeepSpeedConfigError(`${where}${key} must be ${want}, got ${JSON.stringify(v)}`);
  return v;
}

const posInt = (o: Obj, key: string, where = '') => num(o, key, where, (x) => Number.isInteger(x) && x >= 1, 'a positive integer');
const nonNeg = (o: Obj, key: string, where = '') => num(o, key, where, (x) => x >= 0, 'a number >= 0');

function bool(o: Obj, key: string, where: string, dflt: boolean): boolean {
  const v = o[key];
  if (v === undefined) return dflt;
  if (typeof v !== 'boolean') throw new DeepSpeedConfigError(`${where}${key} must be true or false, got ${JSON.stringify(v)}`);
  return v;
}

/** Resolves the batch triple: any two give the third; all three must agree. */
function batchSizes(c: Obj, world: number): { trainBatchSize: number; microBatchPerGpu: number; gradAccum: number } {
  const tb = posInt(c, 'train_batch_size');
  const mb = posInt(c, 'train_micro_batch_size_per_gpu');
  const ga = posInt(c, 'gradient_accumulation_steps');
  const derive = (total: number, part: number, what: string): number => {
    if (total % part !== 0) throw new DeepSpeedConfigError(`cannot derive ${what}: train_batch_size ${total} is not divisible by ${part === world ? `world size ${world}` : `${part} (the other sizes x world size ${world})`}`);
    return total / part;
  };
  if (tb !== undefined && mb !== undefined && ga !== undefined) {
    if (tb !== mb * ga * world) {
      throw new DeepSpeedConfigError(`train_batch_size ${tb} != train_micro_batch_size_per_gpu ${mb} x gradient_accumulation_steps ${ga} x world size ${world} = ${mb * ga * world}`);
    }
    return { trainBatchSize: tb, microBatchPerGpu: mb, gradAccum: ga };
  }
  if (tb !== undefined && mb !== undefined) return { trainBatchSize: tb, microBatchPerGpu: mb, gradAccum: derive(tb, mb * world, 'gradient_accumulation_steps') };
  if (tb !== undefined && ga !== undefined) return { trainBatchSize: tb, microBatchPerGpu: derive(tb, ga * world, 'train_micro_batch_size_per_gpu'), gradAccum: ga };
  if (mb !== undefined) {
    const g = ga ?? 1;
    return { trainBatchSize: mb * g * world, microBatchPerGpu: mb, gradAccum: g };
  }
  if (tb !== undefined) return { trainBatchSize: tb, microBatchPerGpu: derive(tb, world, 'train_micro_batch_size_per_gpu'), gradAccum: 1 };
  throw new DeepSpeedConfigError('the config needs at least two of train_batch_size, train_micro_batch_size_per_gpu, gradient_accumulation_steps (or train_micro_batch_size_per_gpu alone, with gradient_accumulation_steps defaulting to 1)');
}

function optimizer(v: unknown): AdamWConfig {
  const o = object(v, 'optimizer', OPT_KEYS);
  if (o.type !== 'AdamW' && o.type !== 'Adam') throw new DeepSpeedConfigError(`optimizer.type must be "AdamW" or "Adam" (the optimizers atscale implements), got ${JSON.stringify(o.type)}`);
  const p = object(o.params ?? {}, 'optimizer.params', OPT_PARAM_KEYS);
  const w = 'optimizer.params.';
  // DeepSpeed's "Adam" defaults to adam_w_mode (decoupled weight decay) too; L2-style Adam is not implemented.
  if (!bool(p, 'adam_w_mode', w, true)) throw new DeepSpeedConfigError('optimizer.params.adam_w_mode false (L2-regularised Adam) is not supported; remove it or set it to true');
  let betas: [number, number] = [0.9, 0.999];
  if (p.betas !== undefined) {
    const b = p.betas;
    if (!Array.isArray(b) || b.length !== 2 || !b.every((x) => typeof x === 'number' && x >= 0 && x < 1)) throw new DeepSpeedConfigError(`optimizer.params.betas must be two numbers in [0, 1), got ${JSON.stringify(b)}`);
    betas = [b[0] as number, b[1] as number];
  }
  return {
    lr: num(p, 'lr', w, (x) => x > 0, 'a number > 0') ?? 1e-3,
    beta1: betas[0],
    beta2: betas[1],
    eps: num(p, 'eps', w, (x) => x > 0, 'a number > 0') ?? 1e-8,
    weightDecay: nonNeg(p, 'weight_decay', w) ?? 0.01,
  };
}

/** Maps DeepSpeed's schedulers onto warmup + cosine (WarmupDecayLR's linear decay becomes a
 * cosine decay over the same steps; WarmupLR holds the peak after warmup). Warmup is linear. */
function schedule(v: unknown, lr: number): CosineSchedule {
  if (v === undefined) return { lr, minLr: lr, warmupIters: 0, decayIters: 0 };
  const s = object(v, 'scheduler', ['type', 'params']);
  const known = typeof s.type === 'string' ? SCHED_PARAMS[s.type] : undefined;
  if (!known) throw new DeepSpeedConfigError(`scheduler.type must be one of ${Object.keys(SCHED_PARAMS).join(', ')}, got ${JSON.stringify(s.type)}`);
  const p = object(s.params ?? {}, 'scheduler.params', known);
  const w = 'scheduler.params.';
  if (p.warmup_type !== undefined && p.warmup_type !== 'linear') throw new DeepSpeedConfigError(`scheduler.params.warmup_type must be "linear" (the only warmup atscale implements), got ${JSON.stringify(p.warmup_type)}`);
  const warmup = num(p, 'warmup_num_steps', w, (x) => Number.isInteger(x) && x >= 0, 'an integer >= 0') ?? 0;
  const total = posInt(p, 'total_num_steps', w);
  if (s.type === 'WarmupCosineLR') {
    if (total === undefined) throw new DeepSpeedConfigError('scheduler.params.total_num_steps is required for WarmupCosineLR');
    const ratio = num(p, 'cos_min_ratio', w, (x) => x >= 0 && x <= 1, 'a number in [0, 1]') ?? 0.0001;
    return { lr, minLr: lr * ratio, warmupIters: warmup, decayIters: total };
  }
  const peak = num(p, 'warmup_max_lr', w, (x) => x > 0, 'a number > 0') ?? lr;
  if (s.type === 'WarmupDecayLR') {
    if (total === undefined) throw new DeepSpeedConfigError('scheduler.params.total_num_steps is required for WarmupDecayLR');
    return { lr: peak, minLr: 0, warmupIters: warmup, decayIters: total };
  }
  return { lr: peak, minLr: peak, warmupIters: warmup, decayIters: warmup };
}

/** DeepSpeed's zero_optimization defaults for a stage (buckets, overlap), as a config without them gets. */
export function defaultZero(stage: ZeroStage): ZeroOptimization {
  return zero({ stage });
}

function zero(v: unknown): ZeroOptimization {
  const z = object(v ?? {}, 'zero_optimization', ZERO_KEYS);
  const w = 'zero_optimization.';
  const stage = z.stage ?? 0;
  if (stage !== 0 && stage !== 1 && stage !== 2 && stage !== 3) throw new DeepSpeedConfigError(`zero_optimization.stage must be 0, 1, 2 or 3, got ${JSON.stringify(stage)}`);
  return {
    stage,
    reduceBucketSize: posInt(z, 'reduce_bucket_size', w) ?? DEFAULT_BUCKET,
    allgatherBucketSize: posInt(z, 'allgather_bucket_size', w) ?? DEFAULT_BUCKET,
    overlapComm: bool(z, 'overlap_comm', w, true),
    contiguousGradients: bool(z, 'contiguous_gradients', w, true),
  };
}

/** `{ enabled, output_path, job_name }` as DeepSpeed's monitor sections spell them. */
function monitorSection(v: unknown, where: string): MonitorSection | undefined {
  if (v === undefined) return undefined;
  const m = object(v, where, MONITOR_KEYS);
  const text = (key: string): string | undefined => {
    const x = m[key];
    if (x === undefined || x === '') return undefined;
    if (typeof x !== 'string') throw new DeepSpeedConfigError(`${where}.${key} must be a string, got ${JSON.stringify(x)}`);
    return x;
  };
  return { enabled: bool(m, 'enabled', `${where}.`, false), outputPath: text('output_path'), jobName: text('job_name') };
}

/** Parses a config (JSON text or a parsed object) for a job of `worldSize` ranks on `device`.
 * Every documented DeepSpeed key is known (ds-keys.ts): honoured, or refused with a reason. */
export function parseDeepSpeedConfig(input: string | unknown, worldSize: number, device: DsDevice = 'cpu'): DeepSpeedConfig {
  if (!Number.isInteger(worldSize) || worldSize < 1) throw new DeepSpeedConfigError(`world size must be a positive integer, got ${worldSize}`);
  let raw: unknown = input;
  if (typeof input === 'string') {
    try {
      raw = JSON.parse(input);
    } catch (e) {
      throw new DeepSpeedConfigError(`the DeepSpeed config is not valid JSON: ${(e as Error).message}`);
    }
  }
  if (!isObj(raw)) throw new DeepSpeedConfigError(`the DeepSpeed config must be a JSON object, got ${JSON.stringify(raw)}`);
  const problems = checkDeepSpeedKeys(raw, device);
  if (problems.length) throw new DeepSpeedConfigError(problems.join('\n'));
  const c = raw;
  const opt = c.optimizer === undefined ? optimizer({ type: 'AdamW' }) : optimizer(c.optimizer);
  return {
    ...batchSizes(c, worldSize),
    worldSize,
    optimizer: opt,
    schedule: schedule(c.scheduler, opt.lr),
    gradClip: nonNeg(c, 'gradient_clipping') ?? 0,
    zero: zero(c.zero_optimization),
    stepsPerPrint: posInt(c, 'steps_per_print') ?? 10,
    monitor: { tensorboard: monitorSection(c.tensorboard, 'tensorboard'), csv: monitorSection(c.csv_monitor, 'csv_monitor') },
  };
}
