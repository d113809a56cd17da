// The ZeRO steps of the trainer over the dp axis (pp = tp = 1). What every ZeRO stage shares: the sharded AdamW update (each rank updates its chunk of every
// piece with its own slice of m and v), the global gradient norm (each rank's sum of squares,
// all-reduced together with the loss), evaluation, and sharded checkpoints. The stages differ
// in where parameters and gradients live and how gradients get reduced (flat-trainer.ts,
// segmented-trainer.ts).
import { hostValue, type HostValue } from '../../ir/value.js';
import { NamedExecutable } from '../named-program.js';
import type { ExecOptions } from '../../runtime/session.js';
import { FlatLayout } from '../../nn/flat.js';
import type { LanguageModel } from '../../models/model.js';
import { adamwScalars } from '../../optim/adamw.js';
import type { ProcessGroup } from '../../dist/index.js';
import { evalProgram, updateProgram, type StepShape } from '../step-graphs.js';
import { dropoutKey, dropoutKeyAt } from '../dropout-key.js';
import type { DeepSpeedConfig } from '../ds-config.js';
import type { MicroBatch, StepResult } from '../trainer.js';
import type { StepStrategy } from './strategy.js';
import type { MemoryReport } from '../zero/memory.js';
import { ShardPlan, type Piece } from '../zero/shard-plan.js';
import { loadZeroCheckpoint, zeroUniversalSave } from '../zero/checkpoint.js';
import { RunIdentity, saveUniversal, type UniversalSave } from '../universal/state.js';

export interface ZeroOptions extends ExecOptions {
  seed: number;
  /** Starting parameters (a pretrained model being fine-tuned); default: initialised from seed. */
  initialParams?: Float32Array;
  /** batch: the micro-batch of ONE rank; seq: the context length. */
  shape: StepShape;
}

/** What a ZeRO step reads of the DeepSpeed-style settings (the trainer's options give them). */
export type ZeroStepConfig = Pick<DeepSpeedConfig, 'zero' | 'optimizer' | 'gradClip' | 'gradAccum'>;

export const f32view = (data: Float32Array, shape: number[] = [data.length]): HostValue => ({ dtype: 'float32', shape, data });

export abstract class ZeroStep implements StepStrategy {
  abstract readonly kind: 'zero-flat' | 'zero-segmented';
  readonly layout: FlatLayout;
  readonly stage: number;
  readonly world: number;
  readonly rank: number;
  /** The run's id in its universal checkpoints. */
  readonly identity = new RunIdentity();
  /** Adam moments and decay mask, in shard order (stage 0: the whole buffer). */
  protected m!: Float32Array;
  protected v!: Float32Array;
  protected mask!: Float32Array;
  protected plan!: ShardPlan;
  private readonly updates = new Map<number, NamedExecutable>();
  private evaluator?: NamedExecutable;
  private readonly scalars = hostValue('float32', [3]);
  private readonly normSq = hostValue('float32', [1]);
  private readonly normOut = hostValue('float32', [], [0]);

  constructor(readonly model: LanguageModel, readonly cfg: ZeroStepConfig, readonly pg: ProcessGroup, readonly opts: ZeroOptions) {
    this.layout = new FlatLayout(model);
    this.stage = cfg.zero.stage;
    this.world = pg.worldSize;
    this.rank = pg.rank;
  }

  /** Sets up the plan and the optimizer shards; subclasses call it once their plan is known. */
  protected initOptimizer(plan: ShardPlan): void {
    this.plan = plan;
    this.m = new Float32Array(plan.shardSize);
    this.v = new Float32Array(plan.shardSize);
    this.mask = new Float32Array(plan.shardSize);
    plan.gatherShard(this.layout.decayMask(), this.mask);
  }

  protected exec(): ExecOptions {
    return { device: this.opts.device, threads: this.opts.threads };
  }

  /** This rank's chunk of piece p of the parameters / of the reduced (mean) gradient. */
  protected abstract paramChunk(p: Piece): Float32Array;
  protected abstract gradChunk(p: Piece): Float32Array;
  /** Forward + backward of this rank's micro-batches, gradients reduced over the ranks into
   * gradChunk (already divided by micro-batches x ranks); returns this rank's mean loss. */
  protected abstract computeGrads(micro: MicroBatch[], iter: number): Promise<number>;
  /** After the update: make the new parameters visible where the next forward needs them. */
  protected abstract publishParams(): Promise<void>;
  /** The full flat parameters (a copy, gathered if sharded). */
  abstract fullParams(): Promise<Float32Array>;
  /** Overwrites the parameters from a full flat buffer (same on every rank). */
  protected abstract setParams(full: Float32Array): void;
  abstract memoryReport(): MemoryReport;
  protected abstract prepareGraphs(): Promise<void>;

  async prepare(): Promise<void> {
    await this.prepareGraphs();
    for (const p of this.plan.pieces) {
      if (p.chunkSize > 0 && !this.updates.has(p.chunkSize)) {
        this.updates.set(p.chunkSize, await NamedExecutable.of(updateProgram(p.chunkSize, this.cfg.optimizer, this.cfg.gradClip, true), this.exec()));
      }
    }
  }

  protected keyValue(iter: number, micro: number): HostValue {
    // The key of the micro-step with this rank's first row of the global batch (rank r holds
    // rows [r*B, (r+1)*B), see ShardedBatchSampler): every rank draws the masks one process
    // running the whole batch draws, so dropout does not depend on the data-parallel degree.
    return hostValue('int64', [], [dropoutKeyAt(dropoutKey(this.opts.seed, iter, micro), this.rank * this.opts.shape.batch)]);
  }

  protected checkMicro(micro: MicroBatch[]): void {
    if (micro.length !== this.cfg.gradAccum) throw new Error(`step needs gradient_accumulation_steps = ${this.cfg.gradAccum} micro-batches on each rank, got ${micro.length}`);
    const n = this.opts.shape.batch * this.opts.shape.seq;
    for (const b of micro) if (b.x.length !== n || b.y.length !== n) throw new Error(`a micro-batch must hold ${this.opts.shape.batch} x ${this.opts.shape.seq} = ${n} tokens per rank, got ${b.x.length}`);
  }

  async step(micro: MicroBatch[], lr: number, iter: number): Promise<StepResult> {
    this.evalParams = undefined;
    this.checkMicro(micro);
    await this.prepare();
    const t0 = performance.now();
    const localLoss = await this.computeGrads(micro, iter);
    const computeMs = performance.now() - t0;
    // One small all-reduce carries both the squared-norm shards and the loss.
    let sumSq = 0;
    for (const p of this.plan.pieces) {
      const g = this.gradChunk(p);
      for (let i = 0; i < g.length; i++) sumSq += g[i]! * g[i]!; // O(P/N) once per step, next to O(P x tokens) of GEMMs
    }
    const red = Float32Array.of(this.stage === 0 ? 0 : sumSq, localLoss);
    await this.pg.allReduce(red);
    // Stage 0: every rank holds the whole reduced gradient, so its own sum is already global.
    const normSq = this.stage === 0 ? sumSq : red[0]!;
    (this.normSq.data as Float32Array)[0] = normSq;
    (this.scalars.data as Float32Array).set(adamwScalars(this.cfg.optimizer, lr, iter + 1));
    for (const p of this.plan.pieces) {
      if (p.chunkSize === 0) continue;
      const at = (b: Float32Array) => f32view(b.subarray(p.shardOffset, p.shardOffset + p.chunkSize));
      const [params, m, v] = [f32view(this.paramChunk(p)), at(this.m), at(this.v)];
      // In place: every element of p, m, v is read only by the elementwise ops that produce the
      // same element of p', m', v', so the output may alias the input (no second copy of the state).
      await this.updates.get(p.chunkSize)!.run({ params, grad: f32view(this.gradChunk(p)), m, v, decay_mask: at(this.mask), scalars: this.scalars, norm_sq: this.normSq }, { params, m, v, grad_norm: this.normOut });
    }
    await this.publishParams();
    return { loss: red[1]! / this.world, gradNorm: Math.sqrt(normSq), computeMs };
  }

  /** Full parameters for evaluation, gathered once per step version (stage 3 gathers, the
   * others copy), not once per evaluation batch. */
  private evalParams?: Float32Array;

  /** Mean loss over every rank's rows of the batch (collective: all ranks call it together). */
  async evalLoss(batch: MicroBatch): Promise<number> {
    const shape = this.opts.shape;
    this.evaluator ??= await NamedExecutable.of(evalProgram(this.model, this.layout, shape), this.exec());
    this.evalParams ??= await this.fullParams();
    const { loss } = await this.evaluator.run({ params: f32view(this.evalParams), idx: hostValue('int32', [shape.batch, shape.seq], batch.x), targets: hostValue('int32', [shape.batch, shape.seq], batch.y) });
    const total = Float32Array.of((loss!.data as Float32Array)[0]!);
    await this.pg.allReduce(total);
    return total[0]! / this.world;
  }

  async save(dir: string, meta: Record<string, unknown>, files: Record<string, string>): Promise<void> {
    await saveUniversal(this.pg, await zeroUniversalSave(this, dir, meta, files));
  }

  async universalSave(dir: string, meta: Record<string, unknown>, files: Record<string, string>): Promise<{ group: ProcessGroup; save: UniversalSave }> {
    return { group: this.pg, save: await zeroUniversalSave(this, dir, meta, files) };
  }

  async load(dir: string): Promise<{ meta: Record<string, unknown>; files: Record<string, string> }> {
    this.evalParams = undefined;
    return loadZeroCheckpoint(this, dir);
  }

  /** @internal for checkpoint.ts: the shard buffers and a way to restore them. */
  state(): { plan: ShardPlan; m: Float32Array; v: Float32Array; paramChunk: (p: Piece) => Float32Array; setParams: (full: Float32Array) => void } {
    return { plan: this.plan, m: this.m, v: this.v, paramChunk: (p) => this.paramChunk(p), setParams: (full) => this.setParams(full) };
  }
}
