// One table of every training setting's type and range, used for flags, --config files and a
// checkpoint's meta.json alike, so a value that would be refused as a flag is refused when it
// arrives any other way (a string seed used to give the RNG an all-zero state and hang).
// Bounds are generous sanity limits; the memory estimate (memory-estimate.ts) judges size.
import { TRAIN_DTYPES } from '../ir/dtype.js';
import type { GPTConfig } from '../models/config.js';
import { PRESETS, type TrainHyper } from '../models/presets.js';

export class ConfigValueError extends Error {
  override name = 'ConfigValueError';
}

export type Rule =
  | { kind: 'int'; min: number; max: number }
  | { kind: 'number'; min: number; max: number; minOpen?: boolean; maxOpen?: boolean }
  | { kind: 'bool' }
  | { kind: 'string' }
  | { kind: 'enum'; values: readonly string[] }
  /** 'auto' or a whole number of steps (a number, or its text as a flag gives it). */
  | { kind: 'interval'; max: number };

const int = (min: number, max: number): Rule => ({ kind: 'int', min, max });
const real = (min: number, max: number, open: { minOpen?: boolean; maxOpen?: boolean } = {}): Rule => ({ kind: 'number', min, max, ...open });
const BIG_STEPS = 1e9; // a billion optimizer steps is beyond any run; 1e12 is a typo

/** Model settings (GPTConfig keys). */
export const MODEL_RULES: Record<keyof GPTConfig, Rule> = {
  nLayer: int(1, 10_000),
  nHead: int(1, 4096),
  nEmbd: int(1, 1 << 17),
  blockSize: int(1, 1 << 20),
  vocabSize: int(1, 1 << 24),
  bias: { kind: 'bool' },
  dropout: real(0, 1, { maxOpen: true }),
};

/** Optimisation settings (TrainHyper keys). */
export const HYPER_RULES: Record<keyof TrainHyper, Rule> = {
  batchSize: int(1, 1 << 20),
  gradAccum: int(1, 1 << 16),
  maxIters: int(0, BIG_STEPS),
  lr: real(0, 10, { minOpen: true }),
  minLr: real(0, 10),
  warmupIters: int(0, BIG_STEPS),
  decayIters: int(0, BIG_STEPS),
  beta1: real(0, 1, { maxOpen: true }),
  beta2: real(0, 1, { maxOpen: true }),
  weightDecay: real(0, 10),
  gradClip: real(0, 1e6),
  evalInterval: int(1, BIG_STEPS),
  evalIters: int(1, 1e6),
  logInterval: int(1, BIG_STEPS),
};

/** The seed feeds a 32-bit RNG (and seed + 1 the validation stream). */
export const SEED_RULE = int(0, 2 ** 32 - 2);

/** Every other `atscale train` setting (camelCase flag names). */
export const RUN_RULES: Record<string, Rule> = {
  preset: { kind: 'enum', values: Object.keys(PRESETS) },
  data: { kind: 'string' },
  tokenizer: { kind: 'enum', values: ['char', 'bpe'] },
  bpeVocab: int(257, 1 << 20),
  out: { kind: 'string' },
  resume: { kind: 'string' },
  initFrom: { kind: 'enum', values: ['scratch', 'resume'] },
  compile: { kind: 'bool' },
  device: { kind: 'enum', values: ['cpu', 'webgpu'] },
  dtype: { kind: 'enum', values: [...TRAIN_DTYPES] },
  threads: int(1, 4096),
  seed: SEED_RULE,
  peakGflops: real(0, 1e12, { minOpen: true }),
  machine: { kind: 'string' },
  profile: { kind: 'bool' },
  deepspeedConfig: { kind: 'string' },
  maxMemoryGb: real(0, 1 << 30, { minOpen: true }),
  onNonfinite: { kind: 'enum', values: ['stop', 'rollback'] },
  quiet: { kind: 'bool' },
  model: { kind: 'string' },
  tensorboard: { kind: 'bool' },
  csv: { kind: 'bool' },
  dashboard: { kind: 'bool' },
  dashboardPort: int(0, 65535),
  dashboardHost: { kind: 'string' },
  tensorModelParallelSize: int(1, 4096),
  pipelineModelParallelSize: int(1, 4096),
  virtualPipelineModelParallelSize: int(1, 4096),
  pipelineSchedule: { kind: 'enum', values: ['gpipe', '1f1b', 'interleaved'] },
  sequenceParallel: { kind: 'bool' },
  recomputeGranularity: { kind: 'enum', values: ['none', 'selective', 'full'] },
  asyncCheckpoint: { kind: 'bool' },
  checkpointInterval: { kind: 'interval', max: BIG_STEPS },
  mtbfHours: real(0, 1e9, { minOpen: true }),
};

function describe(r: Rule): string {
  switch (r.kind) {
    case 'int':
      return `an integer in [${r.min}, ${r.max}]`;
    case 'number':
      return `a number in ${r.minOpen ? '(' : '['}${r.min}, ${r.max}${r.maxOpen ? ')' : ']'}`;
    case 'bool':
      return 'true or false';
    case 'string':
      return 'a non-empty string';
    case 'enum':
      return `one of ${r.values.join(', ')}`;
    case 'interval':
      return `'auto' or an integer in [1, ${r.max}]`;
  }
}

const show = (v: unknown): string => (typeof v === 'number' ? String(v) : JSON.stringify(v) ?? String(v));

/** Returns v if it satisfies the rule, else throws naming `what` (a flag, a config key, a meta field). */
export function checkValue(what: string, v: unknown, r: Rule): unknown {
  let ok: boolean;
  switch (r.kind) {
    case 'int':
      ok = typeof v === 'number' && Number.isInteger(v) && v >= r.min && v <= r.max;
      break;
    case 'number':
      ok = typeof v === 'number' && Number.isFinite(v) && (r.minOpen ? v > r.min : v >= r.min) && (r.maxOpen ? v < r.max : v <= r.max);
      break;
    case 'bool':
      ok = typeof v === 'boolean';
      break;
    case 'string':
      ok = typeof v === 'string' && v.length > 0;
      break;
    case 'enum':
      ok = typeof v === 'string' && r.values.includes(v);
      break;
    case 'interval': {
      const n = typeof v === 'string' && v !== 'auto' && /^\d+$/.test(v) ? Number(v) : v;
      ok = v === 'auto' || (typeof n === 'number' && Number.isInteger(n) && n >= 1 && n <= r.max);
      break;
    }
  }
  if (!ok) throw new ConfigValueError(`${what} must be ${describe(r)}, got ${show(v)}${typeof v === 'string' && r.kind !== 'string' && r.kind !== 'enum' && r.kind !== 'interval' ? ' (a string)' : ''}`);
  return v;
}

/** The rule for a camelCase train setting, or undefined when the name is not a setting. */
export function ruleFor(key: string): Rule | undefined {
  return (MODEL_RULES as Record<string, Rule>)[key] ?? (HYPER_RULES as Record<string, Rule>)[key] ?? RUN_RULES[key];
}

/** Checks a record of camelCase settings; `name(key)` says how the user wrote it (--lr, 'lr' in FILE). */
export function checkSettings(settings: Record<string, unknown>, name: (key: string) => string): void {
  for (const [k, v] of Object.entries(settings)) {
    if (v === undefined) continue;
    const rule = ruleFor(k);
    if (rule) checkValue(name(k), v, rule);
  }
}

/** Relations between settings that each look fine alone. */
export function checkHyperRelations(h: TrainHyper, where: string): void {
  if (h.minLr > h.lr) throw new ConfigValueError(`${where}: min-lr ${h.minLr} is above lr ${h.lr}; the cosine schedule decays from lr down to min-lr`);
}
