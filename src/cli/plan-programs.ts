// `atscale plan --calibrate` given a model shape (--layers --heads --hidden --vocab --seq-len
// --micro-batch): also times that model's programs as the trainer runs them (engine/
// program-profile.ts), so that `atscale plan --machine SPEC` with the same shape predicts local
// layouts from them (plan/local-layout.ts).
import { type FlagValues, camel } from './args.js';
import { PlanInputError } from '../plan/specs.js';
import { GRANULARITIES, type ProfiledShape, type ProgramProfile } from '../plan/program-profile.js';

const SHAPE_FLAGS = [['layers', 'nLayer'], ['heads', 'nHead'], ['hidden', 'nEmbd'], ['vocab', 'vocab'], ['seq-len', 'blockSize'], ['micro-batch', 'rows']] as const;

/** The shape to profile, from the flags; undefined when none of them is given. */
export function profiledShapeFrom(f: FlagValues): ProfiledShape | undefined {
  const given = SHAPE_FLAGS.filter(([k]) => f[camel(k)] !== undefined);
  if (given.length === 0) return undefined;
  const missing = SHAPE_FLAGS.filter(([k]) => f[camel(k)] === undefined).map(([k]) => `--${k}`);
  if (missing.length) throw new PlanInputError(`--calibrate with a model shape times that model's programs and needs all of ${SHAPE_FLAGS.map(([k]) => `--${k}`).join(' ')}; missing ${missing.join(' ')}`);
  const shape = Object.fromEntries(SHAPE_FLAGS.map(([k, key]) => {
    const v = Number(f[camel(k)]);
    if (!Number.isInteger(v) || v < 1) throw new PlanInputError(`--${k} must be a whole number >= 1, got ${f[camel(k)]}`);
    return [key, v];
  })) as unknown as ProfiledShape;
  if (shape.nEmbd % shape.nHead !== 0) throw new PlanInputError(`--hidden ${shape.nEmbd} must divide by --heads ${shape.nHead} (${shape.nEmbd} % ${shape.nHead} = ${shape.nEmbd % shape.nHead})`);
  return shape;
}

export async function measurePrograms(shape: ProfiledShape, threads: number, cores: number, quiet: boolean): Promise<ProgramProfile> {
  const { profilePrograms } = await import('../engine/program-profile.js');
  const p = await profilePrograms(shape, threads, cores);
  if (!quiet) {
    const s = p.shape;
    console.log(`programs of ${s.nLayer} layers x ${s.nEmbd} wide, ${s.nHead} heads, context ${s.blockSize}, vocabulary ${s.vocab}, ${s.rows} rows per micro-batch, ${threads} thread(s):`);
    for (const g of ['none', 'selective'] as const) console.log(`  one process, recompute ${g}: ${p.fused[g].microMs.toFixed(1)} ms per micro-batch, ${p.fused[g].updateMs.toFixed(1)} ms per step besides`);
    for (const g of GRANULARITIES) {
      const c = p.stages[g];
      console.log(`  pipeline stage calls, recompute ${g}: block forward ${c.blockForwardMs.toFixed(1)} / backward ${c.blockBackwardMs.toFixed(1)} ms; embedding +${c.embedForwardMs.toFixed(1)} / +${c.embedBackwardMs.toFixed(1)}; head +${c.headForwardMs.toFixed(1)} / +${c.headBackwardMs.toFixed(1)}`);
    }
    if (p.coRun) console.log(`  ${p.coRun.ranks} processes computing at once, the slowest of them slower than one alone: the one-process step ${p.coRun.fused.toFixed(2)}x, pipeline stage calls ${p.coRun.stages.toFixed(2)}x`);
  }
  return p;
}
