// Checks that a parallel layout is possible for a model and a cluster. Every error shows the
// arithmetic that failed and what would make it work.
import { type ClusterSpec, type ModelSpec, PlanInputError, RECOMPUTES, type TrainingSpec, clusterGpus, defaultDtype } from './specs.js';

/** What a user gives: anything left out is derived (dp from gpus) or defaulted. */
export type LayoutInput = Partial<TrainingSpec>;

function divisors(n: number): number[] {
  const out: number[] = [];
  for (let i = 1; i <= n; i++) if (n % i === 0) out.push(i);
  return out;
}

function near(n: number, options: number[]): string {
  const sorted = [...options].sort((x, y) => Math.abs(x - n) - Math.abs(y - n));
  return sorted.slice(0, 4).sort((x, y) => x - y).join(', ');
}

/** Fills in defaults and derived degrees, then checks every constraint. */
export function resolveLayout(m: ModelSpec, c: ClusterSpec, l: LayoutInput): TrainingSpec {
  const tp = l.tp ?? 1;
  const pp = l.pp ?? 1;
  let gpus = l.gpus;
  let dp = l.dp;
  if (gpus === undefined) gpus = dp !== undefined ? tp * pp * dp : clusterGpus(c);
  if (dp === undefined) {
    if (gpus % (tp * pp) !== 0) {
      throw new PlanInputError(
        `--gpus ${gpus} is not divisible by tp x pp = ${tp} x ${pp} = ${tp * pp} (${gpus} / ${tp * pp} = ${(gpus / (tp * pp)).toFixed(2)}); ` +
          `use a GPU count that is a multiple of ${tp * pp}, e.g. ${Math.max(1, Math.floor(gpus / (tp * pp))) * tp * pp}`,
      );
    }
    dp = gpus / (tp * pp);
  }
  const seqLen = l.seqLen ?? m.seqLen;
  const globalBatch = l.globalBatch ?? m.globalBatch ?? dp;
  const t: TrainingSpec = {
    gpus,
    globalBatch,
    microBatch: l.microBatch ?? 1,
    seqLen,
    dtype: l.dtype ?? defaultDtype(c.node.gpu),
    tp,
    pp,
    dp,
    interleave: l.interleave ?? 1,
    zero: l.zero ?? 0,
    recompute: l.recompute ?? 'full',
    sequenceParallel: l.sequenceParallel ?? false,
    tokens: l.tokens ?? 300e9,
  };
  checkLayout(m, c, t);
  return t;
}

export function checkLayout(m: ModelSpec, c: ClusterSpec, t: TrainingSpec): void {
  for (const key of ['gpus', 'tp', 'pp', 'dp', 'globalBatch', 'microBatch', 'seqLen', 'interleave'] as const) {
    const v = t[key];
    if (!Number.isInteger(v) || v < 1) throw new PlanInputError(`${key} must be a whole number of at least 1, got ${v}`);
  }
  if (t.tp * t.pp * t.dp !== t.gpus) {
    throw new PlanInputError(
      `tp x pp x dp = ${t.tp} x ${t.pp} x ${t.dp} = ${t.tp * t.pp * t.dp}, but --gpus is ${t.gpus}: the degrees must multiply to the GPU count ` +
        `(leave --dp out to derive it: ${t.gpus} / (${t.tp} x ${t.pp}) = ${t.gpus / (t.tp * t.pp)})`,
    );
  }
  const have = clusterGpus(c);
  if (t.gpus > have) {
    throw new PlanInputError(`--gpus ${t.gpus} is more than cluster ${c.name} has: ${c.nodes} nodes x ${c.node.gpusPerNode} GPUs = ${have}`);
  }
  if (m.heads % t.tp !== 0) {
    throw new PlanInputError(
      `heads ${m.heads} are not divisible by tp ${t.tp} (${m.heads} / ${t.tp} = ${(m.heads / t.tp).toFixed(2)}): each tensor-parallel rank needs whole heads; ` +
        `use tp in {${divisors(m.heads).filter((d) => d <= 64).join(', ')}}`,
    );
  }
  if (m.ffn % t.tp !== 0) throw new PlanInputError(`ffn ${m.ffn} is not divisible by tp ${t.tp} (${m.ffn} / ${t.tp} = ${(m.ffn / t.tp).toFixed(2)})`);
  // A vocabulary not divisible by tp is padded by Megatron; the planner just splits it evenly.
  if (m.layers % (t.pp * t.interleave) !== 0) {
    throw new PlanInputError(
      `layers ${m.layers} are not divisible by pp x interleave = ${t.pp} x ${t.interleave} = ${t.pp * t.interleave} ` +
        `(${m.layers} / ${t.pp * t.interleave} = ${(m.layers / (t.pp * t.interleave)).toFixed(2)}); use pp in {${near(t.pp, divisors(m.layers))}}`,
    );
  }
  const per = t.microBatch * t.dp;
  if (t.globalBatch % per !== 0) {
    throw new PlanInputError(
      `global batch ${t.globalBatch} is not divisible by micro-batch x dp = ${t.microBatch} x ${t.dp} = ${per} ` +
        `(${t.globalBatch} / ${per} = ${(t.globalBatch / per).toFixed(2)}); use a global batch that is a multiple of ${per}, e.g. ${Math.max(1, Math.round(t.globalBatch / per)) * per}`,
    );
  }
  if (t.interleave > 1 && t.pp === 1) throw new PlanInputError(`interleave ${t.interleave} needs pipeline parallelism (pp > 1), got pp 1`);
  if (t.interleave > 1 && (t.globalBatch / per) % t.pp !== 0) {
    throw new PlanInputError(
      `the interleaved schedule needs the micro-batch count to be a multiple of pp: ${t.globalBatch} / (${t.microBatch} x ${t.dp}) = ${t.globalBatch / per} micro-batches, pp = ${t.pp}`,
    );
  }
  if (![0, 1, 2, 3].includes(t.zero)) throw new PlanInputError(`zero stage must be 0, 1, 2 or 3, got ${t.zero}`);
  if (!RECOMPUTES.includes(t.recompute)) throw new PlanInputError(`recompute must be one of ${RECOMPUTES.join(', ')}, got '${t.recompute}'`);
  if (t.sequenceParallel && t.tp === 1) throw new PlanInputError('sequence parallelism splits along tensor-parallel ranks: it needs tp > 1');
  if (t.seqLen > m.seqLen) throw new PlanInputError(`seq-len ${t.seqLen} is longer than the model's context ${m.seqLen}`);
  if (!(t.tokens > 0)) throw new PlanInputError(`tokens must be positive, got ${t.tokens}`);
}
