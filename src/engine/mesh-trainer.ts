// The one trainer. It is built from (model, mesh, options) on every rank, and the layout alone
// decides how a step runs (stepKind, the only place that rule lives):
// - the mesh of one (Mesh.single(): one process, no process group) runs the fused one-graph
//   step, the fast path (step/fused.ts); selective recomputation happens inside that graph;
// - dp ranks with pp = tp = 1 and no recomputation run ZeRO over the dp axis: stages 0/1 as
//   one micro-step graph plus a sharded update (step/zero-flat.ts), stages 2/3 segment by
//   segment (step/zero-segmented.ts);
// - pipeline stages, tensor parallelism or recomputation run the stage programs under a
//   pipeline schedule with ZeRO-1 over dp (step/pipeline.ts), which refuses ZeRO-2/3.
// ZeRO stages are an option of this trainer, as llm.c makes ZeRO a config field: no caller
// chooses between classes.
import type { TrainDType } from '../ir/dtype.js';
import { refuseFloat64 } from './train-dtype.js';
import type { LanguageModel } from '../models/model.js';
import type { AdamWConfig } from '../optim/adamw.js';
import type { ExecOptions } from '../runtime/session.js';
import type { FlatLayout } from '../nn/flat.js';
import type { LoweredNode } from '../runtime/execute.js';
import { defaultZero, type DeepSpeedConfig, type ZeroOptimization, type ZeroStage } from './ds-config.js';
import { checkLayout, MeshError, type MeshShape, type ParallelLayout, type Recompute } from './mesh/layout.js';
import type { Mesh } from './mesh/mesh.js';
import type { StepShape } from './step-graphs.js';
import type { MicroBatch, StepResult, Trainer } from './trainer.js';
import type { HeldBytes, StepKind, StepStrategy } from './step/strategy.js';
import { FusedStep } from './step/fused.js';
import { FlatZeroStep } from './step/zero-flat.js';
import { SegmentedZeroStep } from './step/zero-segmented.js';
import { PipelineStep } from './step/pipeline.js';

export type { StepKind, HeldBytes };

export interface TrainerOptions extends ExecOptions {
  /** batch: rows of one micro-batch on one data-parallel rank; seq: the context length. */
  shape: StepShape;
  optimizer: AdamWConfig;
  gradClip: number;
  /** Micro-batches per step on each rank (gradient accumulation; the pipeline's m). */
  gradAccum: number;
  seed: number;
  /** ZeRO stage over the dp axis (default 0); 2 and 3 need pp = tp = 1. */
  zeroStage?: ZeroStage;
  /** ZeRO buckets and overlap, as DeepSpeed's zero_optimization section (default: its defaults). */
  zero?: Partial<Omit<ZeroOptimization, 'stage'>>;
  /** Pipeline, tensor and sequence parallelism and recomputation; layout.mesh must be the
   * mesh's shape. Default: one stage per pp rank split evenly, 1F1B, no recomputation. */
  layout?: ParallelLayout;
  /** Layers of each virtual stage (checkLayout's result); default: checkLayout(layout). */
  stageLayers?: number[];
  /** Starting parameters (a pretrained model being fine-tuned); default: initialised from seed. */
  initialParams?: Float32Array;
  /** Training dtype (default float32); float64 runs on the fused and pipeline steps only. */
  dtype?: TrainDType;
}

/** The options a DeepSpeed config sets (optimizer, clipping, accumulation, ZeRO). */
export function deepSpeedOptions(cfg: DeepSpeedConfig): Pick<TrainerOptions, 'optimizer' | 'gradClip' | 'gradAccum' | 'zeroStage' | 'zero'> {
  return { optimizer: cfg.optimizer, gradClip: cfg.gradClip, gradAccum: cfg.gradAccum, zeroStage: cfg.zero.stage, zero: cfg.zero };
}

/** How a step runs on a layout: the one rule (see the top of this file). `alone` is the mesh
 * of one with no process group. */
export function stepKind(shape: MeshShape, alone: boolean, zeroStage: number, recompute: Recompute): StepKind {
  const { pp, tp } = shape;
  if (pp === 1 && tp === 1 && zeroStage >= 2) return 'zero-segmented';
  if (pp === 1 && tp === 1 && alone && recompute !== 'full') return 'fused';
  if (pp === 1 && tp === 1 && recompute === 'none') return alone ? 'fused' : 'zero-flat';
  return 'pipeline';
}

/** What the fused step recomputes when no layout says. Selective: shakespeare-char (B=64,
 * one step, 2 threads, shared machine) kept 5512 -> 4472 MB peak RSS at dropout 0 and
 * 6622 -> 4712 MB at dropout 0.2, for 38.5 -> 38.7 s of CPU per step at dropout 0 (the
 * recomputed scores, softmax, masks, LayerNorms and GELUs are a few elementwise passes and
 * one T x T GEMM per layer). `--recompute-granularity none` keeps everything instead. */
export const FUSED_RECOMPUTE: 'none' | 'selective' = 'selective';

/** The layout of the mesh of one, recomputing selectively inside the fused step or not. */
export function singleLayout(recompute: 'none' | 'selective'): ParallelLayout {
  return { mesh: { dp: 1, pp: 1, tp: 1 }, virtual: 1, sequenceParallel: false, recompute, schedule: '1f1b' };
}

export class MeshTrainer implements Trainer {
  /** How this trainer computes its steps (chosen by stepKind). */
  readonly strategy: StepStrategy;

  constructor(readonly model: LanguageModel, readonly mesh: Mesh, readonly opts: TrainerOptions) {
    const zeroStage = opts.zeroStage ?? 0;
    const layout = opts.layout;
    if (layout && (['dp', 'pp', 'tp'] as const).some((a) => layout.mesh[a] !== mesh.shape[a])) {
      const s = (m: MeshShape) => `dp ${m.dp} x pp ${m.pp} x tp ${m.tp}`;
      throw new MeshError(`the parallel layout is ${s(layout.mesh)} but the mesh is ${s(mesh.shape)}; build the mesh from the layout's shape`);
    }
    const kind = stepKind(mesh.shape, !mesh.hasProcessGroup, zeroStage, layout?.recompute ?? 'none');
    if (kind !== 'fused' && !mesh.hasProcessGroup) {
      throw new MeshError(`${kind === 'pipeline' ? `recompute ${layout?.recompute}` : `ZeRO stage ${zeroStage}`} runs its step over a process group, and the mesh of one (Mesh.single()) has none; build the mesh with Mesh.create(await initProcessGroup(...), { dp: 1, pp: 1, tp: 1 }), as atscale train does with --deepspeed-config`);
    }
    if (kind === 'zero-flat' || kind === 'zero-segmented') refuseFloat64(opts.dtype, `ZeRO stage ${zeroStage} over data parallelism alone (dp ${mesh.shape.dp}, pp 1, tp 1); float64 runs ZeRO-1 on the pipeline step, e.g. with --recompute-granularity selective or pp/tp > 1`);
    if (opts.dtype === 'float64' && opts.device === 'webgpu') refuseFloat64(opts.dtype, '--device webgpu (WebGPU has no float64)');
    const exec: ExecOptions = { device: opts.device, threads: opts.threads, profile: opts.profile };
    const common = { ...exec, shape: opts.shape, seed: opts.seed, initialParams: opts.initialParams, dtype: opts.dtype };
    if (kind === 'fused') {
      this.strategy = new FusedStep(model, { ...common, optimizer: opts.optimizer, gradClip: opts.gradClip, gradAccum: opts.gradAccum, recompute: layout ? (layout.recompute === 'selective' ? 'selective' : 'none') : FUSED_RECOMPUTE });
    } else if (kind === 'pipeline') {
      const l = layout ?? { mesh: mesh.shape, virtual: 1, sequenceParallel: false, recompute: 'none', schedule: '1f1b' };
      const d = model.dims;
      const stageLayers = opts.stageLayers ?? checkLayout(l, { world: mesh.world.worldSize, nLayer: d.nLayer, nHead: d.nHead, microBatches: opts.gradAccum });
      this.strategy = new PipelineStep(model, mesh, { ...common, optimizer: opts.optimizer, gradClip: opts.gradClip, microBatches: opts.gradAccum, zeroStage, layout: l, stageLayers });
    } else {
      // ZeRO over the dp axis: with pp = tp = 1 the dp axis is the whole world.
      const cfg = { zero: { ...defaultZero(zeroStage), ...opts.zero, stage: zeroStage }, optimizer: opts.optimizer, gradClip: opts.gradClip, gradAccum: opts.gradAccum };
      this.strategy = kind === 'zero-flat' ? new FlatZeroStep(model, cfg, mesh.world, common) : new SegmentedZeroStep(model, cfg, mesh.world, common);
    }
  }

  get kind(): StepKind {
    return this.strategy.kind;
  }

  get layout(): FlatLayout {
    return this.strategy.layout;
  }

  prepare(): Promise<void> {
    return this.strategy.prepare();
  }

  step(micro: MicroBatch[], lr: number, iter: number): Promise<StepResult> {
    return this.strategy.step(micro, lr, iter);
  }

  evalLoss(batch: MicroBatch): Promise<number> {
    return this.strategy.evalLoss(batch);
  }

  fullParams(): Promise<Float32Array> {
    return this.strategy.fullParams();
  }

  save(dir: string, meta: Record<string, unknown>, files: Record<string, string>): Promise<void> {
    return this.strategy.save(dir, meta, files);
  }

  load(dir: string): Promise<{ meta: Record<string, unknown>; files: Record<string, string> }> {
    return this.strategy.load(dir);
  }

  /** Bytes this rank holds (ZeRO strategies add their stage, decay mask and transient buffers). */
  memoryReport(): HeldBytes {
    return this.strategy.memoryReport();
  }

  /** A copy of the whole state for a background writer: the fused step's (one process). */
  get snapshot(): Trainer['snapshot'] {
    const s = this.strategy;
    return s.snapshot && ((...args: Parameters<NonNullable<Trainer['snapshot']>>) => s.snapshot!(...args));
  }

  /** This rank's share of a universal save, for a background writer: the ZeRO and pipeline
   * steps' (ranks write their shards and publish together). */
  get universalSave(): Trainer['universalSave'] {
    const s = this.strategy;
    return s.universalSave && ((...args: Parameters<NonNullable<Trainer['universalSave']>>) => s.universalSave!(...args));
  }

  /** With the profile option on the fused step: ends ONNX Runtime's profiling of the step. */
  endProfiling(): { file: string; nodes: readonly LoweredNode[] } {
    if (!(this.strategy instanceof FusedStep)) throw new Error(`profiling covers the fused one-process step; this trainer runs the ${this.kind} step`);
    return this.strategy.endProfiling();
  }
}

/** Builds the trainer for this rank and compiles its step programs (collective: every rank of
 * the mesh calls it with the same model, options and seed). */
export async function createTrainer(model: LanguageModel, mesh: Mesh, opts: TrainerOptions): Promise<MeshTrainer> {
  const t = new MeshTrainer(model, mesh, opts);
  await t.prepare();
  return t;
}
