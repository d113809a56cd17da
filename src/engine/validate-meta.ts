// A checkpoint's meta.json checked for meaning before anything is built from it. The
// manifest's checksums only prove the bytes are the ones that were written; a hand-edited or
// foreign meta.json (null, "iter": "12", a negative lr, a string seed) must be refused with
// the field named, never trusted (a zero RNG state hangs sampling; a null meta used to restart
// from scratch). Unknown top-level fields are allowed: trainers add their own (atscale_zero).
import type { GPTConfig } from '../models/config.js';
import type { TrainHyper } from '../models/presets.js';
import type { RngState } from '../tensor/rng.js';
import { FAMILIES, type Architecture } from '../models/registry.js';
import { ConfigValueError, HYPER_RULES, MODEL_RULES, SEED_RULE, checkValue } from './validate-config.js';

/** What the training loop writes into meta.json. */
export interface RunMeta {
  iter: number;
  /** The model's architecture() record (family and sizes). */
  architecture: Architecture;
  /** Checkpoints written before families existed: a GPT-2 config. */
  config?: Architecture;
  hyper: TrainHyper;
  seed: number;
  trainRng: RngState;
  valRng: RngState;
  /** The tokenizer's fingerprint (sha256 hex of its canonical JSON). */
  tokenizer: string;
  world: number;
  /** Steps whose batch was skipped after a non-finite loss (--on-nonfinite rollback). */
  skipped?: number[];
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

function record(v: unknown, what: string, rules: Record<string, Parameters<typeof checkValue>[2]>, optional: readonly string[] = []): Record<string, unknown> {
  if (!isObject(v)) throw new ConfigValueError(`${what} must be an object, got ${JSON.stringify(v)}`);
  for (const k of Object.keys(v)) if (!(k in rules)) throw new ConfigValueError(`${what} has an unknown field '${k}'; known fields: ${Object.keys(rules).join(', ')}`);
  for (const [k, rule] of Object.entries(rules)) {
    if (!(k in v)) {
      if (optional.includes(k)) continue;
      throw new ConfigValueError(`${what} is missing '${k}'`);
    }
    checkValue(`${what}.${k}`, v[k], rule);
  }
  return v;
}

/** A saved xoshiro128 state: four uint32 words, not all zero (the all-zero state never leaves zero). */
export function checkRngState(v: unknown, what: string): RngState {
  if (!Array.isArray(v) || v.length !== 4 || !v.every((x) => Number.isInteger(x) && x >= 0 && x <= 0xffffffff)) {
    throw new ConfigValueError(`${what} must be four unsigned 32-bit integers, got ${JSON.stringify(v)}`);
  }
  if (v.every((x) => x === 0)) throw new ConfigValueError(`${what} is all zeros, which is not a valid RNG state`);
  return v as RngState;
}

/** Checks the model config a checkpoint declares (also what `sample` and `export` build). */
export function checkMetaConfig(v: unknown, source: string): GPTConfig {
  // Checkpoints written through the model interface also name the architecture family.
  if (isObject(v) && 'family' in v) {
    if (v.family !== 'gpt2') throw new ConfigValueError(`${source}: meta.json config.family must be "gpt2" (the architecture atscale builds), got ${JSON.stringify(v.family)}`);
    const { family: _family, ...rest } = v;
    v = rest;
  }
  const c = record(v, `${source}: meta.json config`, MODEL_RULES) as unknown as GPTConfig;
  if (c.nEmbd % c.nHead !== 0) throw new ConfigValueError(`${source}: meta.json config.nEmbd ${c.nEmbd} is not divisible by config.nHead ${c.nHead}`);
  return c;
}

/**
 * A checkpoint's architecture record: the family must be known; a GPT-2 record is checked field
 * by field (MODEL_RULES); other families' sizes must be positive integers (their own
 * constructors check the rest). Returned as written, family included.
 */
export function checkArchitecture(v: unknown, source: string): Architecture {
  if (!isObject(v)) throw new ConfigValueError(`${source}: meta.json architecture must be an object, got ${JSON.stringify(v)}`);
  const family = v.family ?? 'gpt2';
  if (typeof family !== 'string' || !(FAMILIES as readonly string[]).includes(family)) throw new ConfigValueError(`${source}: meta.json architecture family must be one of ${FAMILIES.join(', ')}, got ${JSON.stringify(family)}`);
  if (family === 'gpt2') {
    checkMetaConfig(v, source);
    return v as Architecture;
  }
  for (const [k, x] of Object.entries(v)) {
    if (typeof x === 'number' && !(Number.isFinite(x) && x >= 0 && x <= 2 ** 40)) throw new ConfigValueError(`${source}: meta.json architecture.${k} must be a finite number >= 0, got ${x}`);
  }
  return v as Architecture;
}

/** The whole loop meta, with every field's type and range checked; `source` names the checkpoint. */
export function checkRunMeta(meta: unknown, source: string): RunMeta {
  const where = `${source}: meta.json`;
  if (!isObject(meta)) throw new ConfigValueError(`${where} must be a JSON object, got ${JSON.stringify(meta)}; the checkpoint is not usable (was it edited by hand?)`);
  if (meta.architecture === undefined && meta.config === undefined) throw new ConfigValueError(`${where} has neither 'architecture' nor 'config'; it does not say which model it holds`);
  const architecture = checkArchitecture(meta.architecture ?? meta.config, source);
  const hyper = record(meta.hyper, `${where} hyper`, HYPER_RULES) as unknown as TrainHyper;
  checkValue(`${where} seed`, meta.seed, SEED_RULE);
  checkValue(`${where} world`, meta.world, { kind: 'int', min: 1, max: 1 << 20 });
  checkValue(`${where} iter`, meta.iter, HYPER_RULES.maxIters);
  checkRngState(meta.trainRng, `${where} trainRng`);
  checkRngState(meta.valRng, `${where} valRng`);
  if (typeof meta.tokenizer !== 'string' || !/^[0-9a-f]{64}$/.test(meta.tokenizer)) {
    throw new ConfigValueError(`${where} tokenizer must be a 64-digit hex fingerprint, got ${JSON.stringify(meta.tokenizer)}`);
  }
  if (meta.skipped !== undefined) {
    const s = meta.skipped;
    if (!Array.isArray(s) || !s.every((x) => Number.isInteger(x) && x >= 0 && x < (meta.iter as number))) {
      throw new ConfigValueError(`${where} skipped must be a list of step numbers below iter ${String(meta.iter)}, got ${JSON.stringify(s)}`);
    }
  }
  return { ...(meta as unknown as RunMeta), architecture, hyper };
}
