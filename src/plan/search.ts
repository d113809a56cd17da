// The layout search: every tensor, pipeline and data degree that divides the model and the
// GPU count, every micro-batch, ZeRO stage, recomputation mode, interleaving and sequence
// parallelism; keep the layouts that fit in memory, rank them by step time, and count why
// the others were rejected.
import { evaluate, type PlanResult } from './evaluate.js';
import { checkLayout, stageLayers } from './layout.js';
import { TIME_LABELS } from './time.js';
import { type ClusterSpec, type ModelSpec, PlanInputError, RECOMPUTES, type Recompute, type TrainingSpec, defaultDtype } from './specs.js';

export interface SearchResult {
  /** Fitting layouts, fastest first. */
  best: PlanResult[];
  evaluated: number;
  /** Rejection reason -> how many layouts it ruled out. */
  rejected: Record<string, number>;
  /** The fastest layout that did not fit in memory, to show what memory cost. */
  fastestRejectedForMemory?: PlanResult;
}

function powersOfTwoUpTo(n: number): number[] {
  const out: number[] = [];
  for (let x = 1; x <= n; x *= 2) out.push(x);
  return out;
}

function divisorsOf(n: number): number[] {
  const out: number[] = [];
  for (let i = 1; i <= n; i++) if (n % i === 0) out.push(i);
  return out;
}

/**
 * The Megatron-Core overlaps a search was asked for, on a layout that allows them: userbuffers
 * need tensor and sequence parallelism inside one NVLink domain, the weight-gather overlap the
 * distributed optimizer (ZeRO-1). Elsewhere they are left off rather than refused.
 */
export function overlapsFor(fixed: Partial<TrainingSpec>, c: ClusterSpec, tp: number, sequenceParallel: boolean, zero: number): Partial<TrainingSpec> {
  const out: Partial<TrainingSpec> = {};
  if (fixed.tpCommOverlap && tp > 1 && sequenceParallel && tp <= c.node.gpusPerNode && c.node.intraNodeLink !== 'pcie') out.tpCommOverlap = true;
  if (fixed.overlapParamGather && zero === 1) out.overlapParamGather = true;
  return out;
}

/**
 * `fixed` pins any field (a flag the user gave); the rest is searched. Tensor parallelism stays
 * inside a node (beyond it, its per-layer all-reduces would cross InfiniBand), as Megatron
 * recommends; the search still tries every power of two up to the node size.
 */
export function searchLayouts(m: ModelSpec, c: ClusterSpec, gpus: number, fixed: Partial<TrainingSpec>, keep = 5): SearchResult {
  const rejected: Record<string, number> = {};
  const reject = (why: string) => (rejected[why] = (rejected[why] ?? 0) + 1);
  const globalBatch = fixed.globalBatch ?? m.globalBatch;
  if (globalBatch === undefined) throw new PlanInputError(`model ${m.name} has no published batch: give --global-batch`);
  const tps = fixed.tp !== undefined ? [fixed.tp] : powersOfTwoUpTo(c.node.gpusPerNode);
  const pps = fixed.pp !== undefined ? [fixed.pp] : divisorsOf(m.layers);
  const recomputes: readonly Recompute[] = fixed.recompute !== undefined ? [fixed.recompute] : RECOMPUTES;
  const zeros = fixed.zero !== undefined ? [fixed.zero] : ([0, 1, 2, 3] as const);
  const micros = fixed.microBatch !== undefined ? [fixed.microBatch] : powersOfTwoUpTo(Math.min(globalBatch, 64));
  const results: PlanResult[] = [];
  let fastestOom: PlanResult | undefined;
  let evaluated = 0;
  for (const tp of tps) {
    if (m.heads % tp !== 0) { reject(`heads ${m.heads} not divisible by tp`); continue; }
    for (const pp of pps) {
      if (gpus % (tp * pp) !== 0) { reject(`tp x pp does not divide ${gpus} GPUs`); continue; }
      const dp = gpus / (tp * pp);
      if (fixed.dp !== undefined && fixed.dp !== dp) continue;
      const sps = fixed.sequenceParallel !== undefined ? [fixed.sequenceParallel] : tp > 1 ? [false, true] : [false];
      const interleaves = fixed.interleave !== undefined ? [fixed.interleave] : pp > 1 ? [1, 2, 4] : [1];
      for (const microBatch of micros) {
        if (globalBatch % (microBatch * dp) !== 0) { reject('global batch not divisible by micro-batch x dp'); continue; }
        for (const interleave of interleaves) {
          for (const zero of zeros) {
            if (zero > 0 && dp === 1) continue; // nothing to shard: the same as stage 0
            for (const recompute of recomputes) {
              for (const sequenceParallel of sps) {
                const t: TrainingSpec = {
                  gpus, globalBatch, microBatch, seqLen: fixed.seqLen ?? m.seqLen, dtype: fixed.dtype ?? defaultDtype(c.node.gpu),
                  tp, pp, dp, interleave, zero, recompute, sequenceParallel, tokens: fixed.tokens ?? 300e9,
                  schedule: interleave > 1 ? 'interleaved' : (fixed.schedule ?? '1f1b'), attention: fixed.attention ?? 'flash',
                };
                Object.assign(t, overlapsFor(fixed, c, tp, sequenceParallel, zero));
                if (fixed.crossEntropy !== undefined) t.crossEntropy = fixed.crossEntropy;
                try {
                  checkLayout(m, c, t);
                } catch (e) {
                  if (!(e instanceof PlanInputError)) throw e;
                  reject(e.message.startsWith('layers') ? 'layers not divisible by pp x interleave' : e.message.split(':')[0]!);
                  continue;
                }
                t.stageLayers = stageLayers(m, t);
                const r = evaluate(m, c, t);
                evaluated++;
                if (!r.fits) {
                  reject('out of memory');
                  if (!fastestOom || r.time.step < fastestOom.time.step) fastestOom = r;
                  continue;
                }
                results.push(r);
              }
            }
          }
        }
      }
    }
  }
  results.sort((a, b) => a.time.step - b.time.step);
  if (results.length > keep) rejected['slower than the best shown'] = results.length - keep;
  const out: SearchResult = { best: results.slice(0, keep), evaluated, rejected };
  if (fastestOom) out.fastestRejectedForMemory = fastestOom;
  return out;
}

/** Layers per stage with repeats folded: 0/2/2/2/1/1/0 reads "0/2x3/1x2/0". */
function runs(xs: number[]): string {
  const out: string[] = [];
  for (let i = 0; i < xs.length;) {
    let j = i;
    while (j < xs.length && xs[j] === xs[i]) j++;
    out.push(j - i > 1 ? `${xs[i]}x${j - i}` : String(xs[i]));
    i = j;
  }
  return out.join('/');
}

export function describeLayout(t: TrainingSpec): string {
  const parts = [(t.cp ?? 1) > 1 ? `TP ${t.tp} x CP ${t.cp} x PP ${t.pp} x DP ${t.dp}` : `TP ${t.tp} x PP ${t.pp} x DP ${t.dp}`, `micro-batch ${t.microBatch}`];
  if ((t.ep ?? 1) > 1) parts.push(`EP ${t.ep}`);
  if (t.stageLayers && new Set(t.stageLayers).size > 1) parts.push(`stages of ${runs(t.stageLayers)} layers`);
  if (t.schedule === 'zero-bubble' || t.schedule === 'gpipe') parts.push(t.schedule);
  if (t.interleave > 1) parts.push(`interleave ${t.interleave}`);
  parts.push(`ZeRO ${t.zero}`, `recompute ${t.recompute}`);
  if (t.sequenceParallel) parts.push('sequence parallel');
  if (t.tpCommOverlap && t.tp > 1) parts.push('TP comm overlap');
  if (t.overlapParamGather) parts.push('param gather overlap');
  return parts.join(', ');
}

/** The terms a layout choice trades, in the order the explanation gives them. */
const TERMS: [string, (r: PlanResult) => number][] = [
  ['compute (GEMMs, attention, memory-bound kernels)', (r) => r.time.gemm + r.time.elementwise],
  ['pipeline bubble (and sends)', (r) => r.time.bubble + r.time.pipelineSend],
  ['tensor/context/expert-parallel comm', (r) => r.time.tensorParallel],
  ['data-parallel / ZeRO comm (exposed) + optimizer', (r) => r.time.dataParallel + r.time.optimizer],
  ['recompute', (r) => r.time.recompute],
];

/** Why `a` is faster (or slower) than `b`, term by term: every time term, then memory headroom. */
export function explain(a: PlanResult, b: PlanResult): string[] {
  const lines = [
    `${describeLayout(a.training)}: ${a.time.step.toFixed(2)} s/step, ${a.tflopsHardware.toFixed(0)} TFLOP/s per GPU, ${a.memory.total.toFixed(1)} GB`,
    `${describeLayout(b.training)}: ${b.time.step.toFixed(2)} s/step, ${b.tflopsHardware.toFixed(0)} TFLOP/s per GPU, ${b.memory.total.toFixed(1)} GB`,
  ];
  const pct = ((a.time.step / b.time.step - 1) * 100).toFixed(1);
  lines.push(`the first is ${a.time.step <= b.time.step ? 'faster' : 'slower'} by ${pct.replace('-', '')}%; term by term (second -> first, difference):`);
  for (const [label, f] of TERMS) {
    const d = f(a) - f(b);
    lines.push(`  ${label.padEnd(50)} ${f(b).toFixed(2)} -> ${f(a).toFixed(2)} s  (${d < 0 ? '-' : '+'}${Math.abs(d).toFixed(2)} s)`);
  }
  const head = (r: PlanResult) => r.memoryLimitGB - r.memory.total;
  lines.push(`  ${'memory headroom per GPU'.padEnd(50)} ${head(b).toFixed(1)} -> ${head(a).toFixed(1)} GB`);
  return lines;
}

/** The most GPUs, up to `limit`, that some tp x pp x dp can use with this model and batch. */
export function largestUsableGpus(m: ModelSpec, gpusPerNode: number, limit: number, globalBatch: number): number {
  let best = 0;
  for (const tp of powersOfTwoUpTo(gpusPerNode)) {
    if (m.heads % tp !== 0) continue;
    for (const pp of divisorsOf(m.layers)) {
      for (const dp of divisorsOf(globalBatch)) {
        const n = tp * pp * dp;
        if (n <= limit && n > best) best = n;
      }
    }
  }
  return best;
}
