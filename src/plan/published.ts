// The planner against published training runs: each row names its cluster, model and layout
// as published, and the figure the source reports (TFLOP/s per GPU, seconds per step or
// tokens per second per GPU). One set of constants serves every row; nothing in the time
// model is derived from these rows, so leaving a source out changes no constant, and the
// leave-one-source-out error of a source is its error in the full table (reported as such).
import { evaluate, type PlanResult } from './evaluate.js';
import { resolveLayout } from './layout.js';
import { paramCount } from './params-flops.js';
import { loadCluster } from './presets.js';
import { type ClusterSpec, type ModelSpec, PlanInputError, type TrainingSpec, checkModel } from './specs.js';

export type PublishedMetric = 'tflops_hardware' | 'tflops_model' | 'step_s' | 'tokens_per_s_per_gpu';

export interface PublishedRun {
  id: string;
  /** One key per paper or table of measurements (the unit left out in leave-one-source-out). */
  source: string;
  framework: string;
  cite: string;
  /** A cluster preset name. */
  cluster: string;
  model: Record<string, unknown> & { layers: number; hidden: number; heads: number; vocab: number; seqLen: number };
  layout: Partial<TrainingSpec>;
  metric: PublishedMetric;
  published: number;
  /** Parameters in billions as the source names the model. */
  paramsB: number;
  /** Settings the source does not state, and what was taken for them. */
  assumed?: string;
}

export interface RunCheck {
  run: PublishedRun;
  result: PlanResult;
  predicted: number;
  /** predicted / published - 1. */
  error: number;
  params: number;
}

export function predictMetric(r: PlanResult, metric: PublishedMetric): number {
  switch (metric) {
    case 'tflops_hardware': return r.tflopsHardware;
    case 'tflops_model': return r.tflopsModel;
    case 'step_s': return r.time.step;
    case 'tokens_per_s_per_gpu': return r.tokensPerS / r.training.gpus;
  }
}

export function runModel(run: PublishedRun): ModelSpec {
  return checkModel({ name: run.id, ...run.model }, `published run ${run.id}: model`);
}

export function checkRun(run: PublishedRun): RunCheck {
  const m = runModel(run);
  const c = loadCluster(run.cluster);
  const layout = { ...run.layout, seqLen: run.model.seqLen };
  const result = evaluate(m, c, resolveLayout(m, c, layout));
  const predicted = predictMetric(result, run.metric);
  return { run, result, predicted, error: predicted / run.published - 1, params: paramCount(m) };
}

export interface ErrorSummary {
  rows: number;
  meanAbs: number;
  maxAbs: number;
  worst: string;
}

export function summarize(checks: RunCheck[]): ErrorSummary {
  const abs = checks.map((c) => Math.abs(c.error));
  const i = abs.indexOf(Math.max(...abs));
  return { rows: checks.length, meanAbs: abs.reduce((a, b) => a + b, 0) / Math.max(1, abs.length), maxAbs: abs[i] ?? 0, worst: checks[i]?.run.id ?? '' };
}

/**
 * Constants the time model derives from published runs. There are none: every efficiency is a
 * kernel or link micro-benchmark (gpus.ts, comm.ts). The function exists so that
 * leave-one-source-out re-derives "anything derived from data" by the same code path a fitted
 * model would use, and it says so in its result.
 */
export function deriveConstants(_training: PublishedRun[]): Record<string, number> {
  return {};
}

export interface HeldOut {
  source: string;
  derivedConstants: number;
  summary: ErrorSummary;
}

/** For each source: derive constants without it, then predict its rows. */
export function leaveOneSourceOut(runs: PublishedRun[]): HeldOut[] {
  const sources = [...new Set(runs.map((r) => r.source))];
  return sources.map((source) => {
    const derived = deriveConstants(runs.filter((r) => r.source !== source));
    return { source, derivedConstants: Object.keys(derived).length, summary: summarize(runs.filter((r) => r.source === source).map(checkRun)) };
  });
}

/** A pipelined row's published-minus-predicted step time, counted in pipeline slots. */
export interface SlotResidual {
  run: PublishedRun;
  /** Seconds per step: as published (or implied by a published throughput), and predicted. */
  publishedStep: number;
  predictedStep: number;
  /** The model's seconds per extra micro-batch: the slowest stage's forward + backward slot. */
  slot: number;
  /** (published - predicted) / slot. */
  slots: number;
  stages: number;
}

/**
 * How much step time a pipelined row's prediction leaves unexplained, in units of the
 * model's own pipeline slot, beside the number of stages: a gap that tracks p - 1 slots
 * points at the fill and drain, one that tracks the micro-batch count at the steady state.
 * A diagnostic of the model against one row; nothing is derived from it. Every published
 * metric but step time is a throughput, inversely proportional to step time.
 */
export function slotResidual(run: PublishedRun): SlotResidual {
  const base = checkRun(run);
  const t = base.result.training;
  const predictedStep = base.result.time.step;
  const publishedStep = run.metric === 'step_s' ? run.published : predictedStep * (base.predicted / run.published);
  // One more micro-batch on every pipeline: the step grows by the steady-state slot.
  const more = checkRun({ ...run, layout: { ...run.layout, globalBatch: t.globalBatch + t.microBatch * t.dp } });
  const slot = more.result.time.step - predictedStep;
  return { run, publishedStep, predictedStep, slot, slots: (publishedStep - predictedStep) / slot, stages: t.pp };
}
