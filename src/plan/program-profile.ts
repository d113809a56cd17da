// The programs of one model shape, timed on this machine by `atscale plan --calibrate` given that
// shape (engine/program-profile.ts measures them), as the machine spec stores them. With them the
// local layout model (local-layout.ts) costs each instruction of a layout's schedule from what
// the trainer's own programs took, rather than from GEMM and bandwidth rates.
import { PlanInputError } from './specs.js';

export const GRANULARITIES = ['none', 'selective', 'full'] as const;

/** The model shape and the rows of one micro-batch the programs were timed at. */
export interface ProfiledShape {
  nLayer: number;
  nHead: number;
  nEmbd: number;
  blockSize: number;
  vocab: number;
  rows: number;
}

/** A pipeline rank's calls for one micro-batch, ms alone on a core: one block's forward and
 * backward (its recomputation included), and what the first stage adds (embedding) and the last
 * (final norm, head and loss). */
export interface SegmentCosts {
  blockForwardMs: number;
  blockBackwardMs: number;
  embedForwardMs: number;
  embedBackwardMs: number;
  headForwardMs: number;
  headBackwardMs: number;
}

export interface ProgramProfile {
  shape: ProfiledShape;
  /** ONNX Runtime threads each program ran with (a rank's). */
  threads: number;
  /** One process with gradient accumulation, by recomputation inside its graph: one micro-step
   * (forward, backward, accumulate), and the per-step rest (clipping and AdamW over every parameter). */
  fused: Record<'none' | 'selective', { microMs: number; updateMs: number }>;
  /** Pipeline stage calls by recompute granularity. */
  stages: Record<(typeof GRANULARITIES)[number], SegmentCosts>;
  /** How much slower the slowest of `ranks` processes ran at once than one alone (engine/co-run.ts):
   * the one process's step, and a pipeline rank's stage calls; absent on a one-core machine. */
  coRun?: { ranks: number } & Record<CoRunKind, number>;
}

/** The programs a rank runs: the one-process (fused) step, or a pipeline rank's stage calls. */
export type CoRunKind = 'fused' | 'stages';

/** How much slower each computing rank runs while `running` ranks compute at once on a host of
 * `cores` cores, by co-running alone (time slicing beyond the cores is charged apart): 1 for one,
 * the measured slowdown at the measured count, in proportion between. */
export function coRunSlowdown(p: ProgramProfile | undefined, kind: CoRunKind, running: number, cores: number): number {
  const c = p?.coRun;
  if (!c || running <= 1 || c.ranks <= 1) return 1;
  const k = Math.min(running, cores, c.ranks);
  return 1 + ((c[kind] - 1) * (k - 1)) / (c.ranks - 1);
}

const SHAPE_KEYS = ['nLayer', 'nHead', 'nEmbd', 'blockSize', 'vocab', 'rows'] as const;
const SEGMENT_KEYS = ['blockForwardMs', 'blockBackwardMs', 'embedForwardMs', 'embedBackwardMs', 'headForwardMs', 'headBackwardMs'] as const;

/** Validates the `programs` key of a machine spec read from JSON; errors name the key. */
export function checkProgramProfile(o: unknown, where: string): ProgramProfile {
  const obj = (v: unknown, key: string): Record<string, unknown> => {
    if (typeof v !== 'object' || v === null) throw new PlanInputError(`${where}: key '${key}' must be an object (write it with atscale plan --calibrate and a model shape)`);
    return v as Record<string, unknown>;
  };
  const num = (v: unknown, key: string, min: number) => {
    if (typeof v !== 'number' || !Number.isFinite(v) || !(v >= min)) throw new PlanInputError(`${where}: key '${key}' must be a number >= ${min}, got ${JSON.stringify(v)}`);
    return v;
  };
  const p = obj(o, 'programs');
  const sh = obj(p.shape, 'programs.shape');
  const shape = Object.fromEntries(SHAPE_KEYS.map((k) => [k, num(sh[k], `programs.shape.${k}`, 1)])) as unknown as ProfiledShape;
  const fusedIn = obj(p.fused, 'programs.fused');
  const fused = {} as ProgramProfile['fused'];
  for (const g of ['none', 'selective'] as const) {
    const f = obj(fusedIn[g], `programs.fused.${g}`);
    fused[g] = { microMs: num(f.microMs, `programs.fused.${g}.microMs`, 0), updateMs: num(f.updateMs, `programs.fused.${g}.updateMs`, 0) };
  }
  const stagesIn = obj(p.stages, 'programs.stages');
  const stages = {} as ProgramProfile['stages'];
  for (const g of GRANULARITIES) {
    const s = obj(stagesIn[g], `programs.stages.${g}`);
    stages[g] = Object.fromEntries(SEGMENT_KEYS.map((k) => [k, num(s[k], `programs.stages.${g}.${k}`, 0)])) as unknown as SegmentCosts;
  }
  const out: ProgramProfile = { shape, threads: num(p.threads, 'programs.threads', 1), fused, stages };
  if (p.coRun !== undefined) {
    const c = obj(p.coRun, 'programs.coRun');
    out.coRun = { ranks: num(c.ranks, 'programs.coRun.ranks', 1), fused: num(c.fused, 'programs.coRun.fused', 1), stages: num(c.stages, 'programs.coRun.stages', 1) };
  }
  return out;
}

/** The profile when it was timed at this model shape and micro-batch rows, else undefined (the
 * model then falls back on the calibrated rates). */
export function profileFor(p: ProgramProfile | undefined, g: { nLayer: number; nHead: number; nEmbd: number; blockSize: number; vocab: number }, rows: number): ProgramProfile | undefined {
  if (!p) return undefined;
  const s = p.shape;
  return s.nLayer === g.nLayer && s.nHead === g.nHead && s.nEmbd === g.nEmbd && s.blockSize === g.blockSize && s.vocab === g.vocab && s.rows === rows ? p : undefined;
}
