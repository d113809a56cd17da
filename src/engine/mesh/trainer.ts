// The trainer on a mesh with pipeline stages: each rank holds the units of its virtual stages
// (stage.ts), runs the schedule (pipeline/executor.ts), then sums gradients between the tied
// embedding's first and last stage and over the data-parallel ranks (all-reduce, or with
// ZeRO-1 a reduce-scatter, an update of this rank's chunk and an all-gather), takes one global
// gradient norm and applies AdamW. Checkpoints are consolidated: the plain single-file
// checkpoint of one process, so a run resumes on any layout.
import { hostValue, type HostValue } from '../../ir/value.js';
import { compile, type Executable } from '../../runtime/execute.js';
import type { ExecOptions } from '../../runtime/session.js';
import { FlatLayout } from '../../nn/flat.js';
import type { LanguageModel } from '../../models/model.js';
import { adamwScalars, type AdamWConfig } from '../../optim/adamw.js';
import { chunkRange } from '../../dist/index.js';
import { saveCheckpoint, loadCheckpoint, isShardedCheckpoint } from '../../checkpoint/index.js';
import { evalProgram, updateProgram, type StepShape } from '../step-graphs.js';
import { dropoutKey, dropoutKeyAt } from '../dropout-key.js';
import type { MicroBatch, SharedSnapshot, StepResult, Trainer } from '../trainer.js';
import { OPT_M, OPT_V } from '../local-trainer.js';
import { StageRunner } from '../pipeline/stage.js';
import { runSchedule, type StepRecord } from '../pipeline/executor.js';
import { buildSchedule, type PipelineSchedule } from '../pipeline/schedule.js';
import { stageStarts, MeshError, type ParallelLayout } from './layout.js';
import type { Mesh } from './mesh.js';

export interface MeshTrainerOptions extends ExecOptions {
  /** batch: rows of one micro-batch on one data-parallel rank. */
  shape: StepShape;
  optimizer: AdamWConfig;
  gradClip: number;
  /** Micro-batches per step (gradient accumulation), the pipeline's m. */
  microBatches: number;
  seed: number;
  zeroStage: number;
  layout: ParallelLayout;
  /** Layers of each virtual stage (checkLayout's result). */
  stageLayers: number[];
  /** Starting parameters (a pretrained model being fine-tuned); default: initialised from seed. */
  initialParams?: Float32Array;
}

const f32 = (data: Float32Array): HostValue => ({ dtype: 'float32', shape: [data.length], data });

export class MeshTrainer implements Trainer {
  readonly layout: FlatLayout;
  readonly runner: StageRunner;
  readonly schedule: PipelineSchedule;
  /** Range of the owned buffer this rank updates: all of it, or its ZeRO-1 chunk. */
  private readonly chunk: [number, number];
  private readonly m: Float32Array;
  private readonly v: Float32Array;
  private readonly mask: Float32Array;
  /** Owned elements counted in the global norm here (tied copies and dp replicas once). */
  private readonly normMask: Uint8Array;
  private readonly tied: string[];
  private update?: Executable;
  private evaluator?: Executable;
  private evalParams?: Float32Array;
  private readonly scalars = hostValue('float32', [3]);
  private readonly normSq = hostValue('float32', [1]);
  /** Timing of the last step's schedule (the pipeline bench reads it). */
  lastRecord?: StepRecord;

  constructor(readonly model: LanguageModel, readonly mesh: Mesh, readonly opts: MeshTrainerOptions) {
    const { pp } = mesh.shape;
    if (mesh.shape.tp > 1) throw new MeshError(`tensor-model-parallel size ${mesh.shape.tp}: tensor parallelism is not implemented in this engine yet; run with --tensor-model-parallel-size 1`);
    if (opts.zeroStage > 1) throw new MeshError(`ZeRO stage ${opts.zeroStage} with pipeline parallelism is refused (as DeepSpeed does): stages 2 and 3 partition gradients and parameters, which the pipeline accumulates over micro-batches on each stage; use zero_optimization.stage 0 or 1`);
    this.layout = new FlatLayout(model);
    const v = opts.layout.virtual;
    const starts = stageStarts(opts.stageLayers);
    const last = pp * v - 1;
    const mine = Array.from({ length: v }, (_, c) => c * pp + mesh.coords.pp).map((s) => ({ stage: s, blocks: [starts[s]!, starts[s + 1]!] as [number, number] }));
    if (opts.initialParams && opts.initialParams.length !== this.layout.size) throw new Error(`initial parameters have ${opts.initialParams.length} values, the model needs ${this.layout.size}`);
    this.runner = new StageRunner(model, this.layout, opts.shape, mine, last, opts.initialParams ?? this.layout.initialise(opts.seed), opts.layout.recompute);
    this.schedule = buildSchedule(opts.layout.schedule, pp, v, opts.microBatches);
    const named = model.units();
    this.tied = named.head.filter((h) => named.embed.includes(h));
    const n = this.runner.ownedSize;
    this.chunk = opts.zeroStage === 1 ? chunkRange(n, mesh.shape.dp, mesh.coords.dp) : [0, n];
    const size = this.chunk[1] - this.chunk[0];
    this.m = new Float32Array(size);
    this.v = new Float32Array(size);
    const fullMask = this.layout.decayMask();
    const ownedMask = new Float32Array(n);
    for (const u of this.runner.owned) ownedMask.set(fullMask.subarray(u.offset, u.offset + u.size), u.at);
    this.mask = ownedMask.slice(this.chunk[0], this.chunk[1]);
    // Norm: each element once in the whole mesh. Tied units count on the first stage only; with
    // ZeRO-1 each dp rank counts its chunk, without it dp rank 0 counts everything.
    this.normMask = new Uint8Array(size);
    const countsHere = opts.zeroStage === 1 || mesh.coords.dp === 0;
    for (const u of this.runner.owned) {
      const skip = !countsHere || (this.tied.includes(u.name) && !mesh.isFirstStage);
      if (skip) continue;
      const a = Math.max(u.at, this.chunk[0]);
      const b = Math.min(u.at + u.size, this.chunk[1]);
      if (b > a) this.normMask.fill(1, a - this.chunk[0], b - this.chunk[0]);
    }
  }

  private exec(): ExecOptions {
    return { device: this.opts.device, threads: this.opts.threads };
  }

  private ready?: Promise<void>;
  prepare(): Promise<void> {
    this.ready ??= (async () => {
      await this.runner.compile(this.exec());
      this.update = await compile(updateProgram(this.chunk[1] - this.chunk[0], this.opts.optimizer, this.opts.gradClip, true), this.exec());
    })();
    return this.ready;
  }

  private key(iter: number, mb: number): HostValue | undefined {
    if (!this.runner.hasKey) return undefined;
    // The rows of this dp rank within the micro-step's global batch: the masks one process draws.
    return hostValue('int64', [], [dropoutKeyAt(dropoutKey(this.opts.seed, iter, mb), this.mesh.coords.dp * this.opts.shape.batch)]);
  }

  async step(micro: MicroBatch[], lr: number, iter: number): Promise<StepResult> {
    const m = this.opts.microBatches;
    if (micro.length !== m) throw new Error(`step needs ${m} micro-batches (the pipeline's m), got ${micro.length}`);
    await this.prepare();
    this.evalParams = undefined;
    this.runner.grads.fill(0);
    const dp = this.mesh.shape.dp;
    const links = { act: this.mesh.pp, grad: this.mesh.ppGrad, globalRank: (r: number) => this.mesh.pp.members[r]! };
    let normSq = 0;
    let loss = 0;
    const rec = await runSchedule(this.schedule.ranks[this.mesh.coords.pp]!, this.runner, links, {
      batch: (k) => micro[k]!,
      key: (k) => this.key(iter, k),
      seed: 1 / (m * dp),
      onInstr: async (i, lossSum) => {
        if (i.op === 'reduce') normSq = await this.reduceGrads();
        if (i.op === 'step') ({ loss, normSq } = await this.applyUpdate(lr, iter, normSq, lossSum / m));
      },
    }, this.mesh.coords.pp);
    this.lastRecord = rec;
    return { loss, gradNorm: Math.sqrt(normSq) };
  }

  /** Tied embedding between first and last stage, then over dp; returns this rank's share of
   * the squared norm. */
  private async reduceGrads(): Promise<number> {
    const g = this.runner.grads;
    if (this.mesh.embedTie) {
      for (const name of this.tied) {
        const u = this.runner.owned.find((o) => o.name === name)!;
        await this.mesh.embedTie.allReduce(g.subarray(u.at, u.at + u.size));
      }
    }
    let mine: Float32Array;
    if (this.mesh.shape.dp === 1) mine = g;
    else if (this.opts.zeroStage === 1) {
      mine = new Float32Array(this.chunk[1] - this.chunk[0]);
      await this.mesh.dp.reduceScatter(g, mine);
    } else {
      await this.mesh.dp.allReduce(g);
      mine = g;
    }
    this.reduced = mine;
    let s = 0;
    for (let i = 0; i < mine.length; i++) if (this.normMask[i]) s += mine[i]! * mine[i]!;
    return s;
  }

  private reduced?: Float32Array;

  private async applyUpdate(lr: number, iter: number, localNormSq: number, localLoss: number): Promise<{ loss: number; normSq: number }> {
    // One all-reduce over the world carries the norm shares and the last stages' mean losses.
    const red = Float32Array.of(localNormSq, this.mesh.isLastStage ? localLoss : 0);
    await this.mesh.world.allReduce(red);
    (this.normSq.data as Float32Array)[0] = red[0]!;
    (this.scalars.data as Float32Array).set(adamwScalars(this.opts.optimizer, lr, iter + 1));
    const p = this.runner.params.subarray(this.chunk[0], this.chunk[1]);
    const grad = this.reduced!;
    await this.update!.run([f32(p), f32(grad), f32(this.m), f32(this.v), f32(this.mask), this.scalars, this.normSq], [f32(p), f32(this.m), f32(this.v), hostValue('float32', [], [0])]);
    if (this.opts.zeroStage === 1 && this.mesh.shape.dp > 1) {
      const full = this.runner.params;
      await this.mesh.dp.allGather(full.slice(this.chunk[0], this.chunk[1]), full);
    }
    // Each data-parallel replica's last stage adds its loss: the mean over replicas.
    return { loss: red[1]! / this.mesh.shape.dp, normSq: red[0]! };
  }

  /**
   * The full flat buffer of an owned-indexed array (params; m and v from `from` on), on every
   * rank: each element is written by exactly one rank (tp 0, the dp rank whose chunk holds it,
   * tied units by the first stage) and one world all-reduce sums them.
   */
  private async consolidate(src: Float32Array, from: number): Promise<Float32Array> {
    const full = new Float32Array(this.layout.size);
    const [a, b] = chunkRange(this.runner.ownedSize, this.mesh.shape.dp, this.mesh.coords.dp);
    if (this.mesh.coords.tp === 0) {
      for (const u of this.runner.owned) {
        if (this.tied.includes(u.name) && !this.mesh.isFirstStage) continue;
        const lo = Math.max(a, u.at);
        const hi = Math.min(b, u.at + u.size);
        if (hi > lo) full.set(src.subarray(lo - from, hi - from), u.offset + (lo - u.at));
      }
    }
    await this.mesh.world.allReduce(full);
    return full;
  }

  /** Full parameters on every rank (collective). */
  async fullParams(): Promise<Float32Array> {
    return Float32Array.from(await this.consolidate(this.runner.params, 0));
  }

  /** Mean loss over the data-parallel replicas' rows, no dropout (collective: every rank
   * evaluates the whole model on its replica's rows; evaluation is rare). */
  async evalLoss(batch: MicroBatch): Promise<number> {
    const shape = this.opts.shape;
    this.evaluator ??= await compile(evalProgram(this.model, this.layout, shape), this.exec());
    this.evalParams ??= await this.consolidate(this.runner.params, 0);
    const [loss] = await this.evaluator.run([f32(this.evalParams), hostValue('int32', [shape.batch, shape.seq], batch.x), hostValue('int32', [shape.batch, shape.seq], batch.y)]);
    const total = Float32Array.of((loss!.data as Float32Array)[0]!);
    await this.mesh.world.allReduce(total);
    return total[0]! / this.mesh.world.worldSize;
  }

  /** Writes the plain single-process checkpoint (rank 0), consolidated from every stage and shard. */
  async save(dir: string, meta: Record<string, unknown>, files: Record<string, string>): Promise<void> {
    const from = this.opts.zeroStage === 1 ? this.chunk[0] : 0;
    const params = await this.consolidate(this.runner.params, 0);
    const m = await this.consolidate(this.m, from);
    const v = await this.consolidate(this.v, from);
    if (this.mesh.world.rank === 0) {
      const tensors: Record<string, { dtype: 'F32'; shape: number[]; data: Float32Array }> = {};
      for (const [name, e] of Object.entries(this.layout.stateDict(params))) tensors[name] = { dtype: 'F32', shape: e.shape, data: e.data };
      tensors[OPT_M] = { dtype: 'F32', shape: [this.layout.size], data: m };
      tensors[OPT_V] = { dtype: 'F32', shape: [this.layout.size], data: v };
      saveCheckpoint(dir, { tensors, meta: { ...meta, mesh: this.mesh.shape }, files });
    }
    // Nobody reads the directory (or exits) before rank 0 has committed it.
    await this.mesh.world.barrier();
  }

  /** save() for the background writer: the state is consolidated now (collectives, part of the
   * stall), rank 0's copy is written in the background, and the ranks agree when it is on disk. */
  async snapshotShared(dir: string, meta: Record<string, unknown>, files: Record<string, string>): Promise<SharedSnapshot> {
    const from = this.opts.zeroStage === 1 ? this.chunk[0] : 0;
    const params = await this.consolidate(this.runner.params, 0);
    const m = await this.consolidate(this.m, from);
    const v = await this.consolidate(this.v, from);
    const publish = async (localDone: boolean) => {
      const notDone = Float32Array.of(localDone ? 0 : 1);
      await this.mesh.world.allReduce(notDone);
      return notDone[0] === 0;
    };
    if (this.mesh.world.rank !== 0) return { publish };
    const tensors: Record<string, { dtype: 'F32'; shape: number[]; data: Float32Array }> = {};
    // consolidate() returns fresh buffers: they are already a snapshot the writer may take.
    for (const [name, e] of Object.entries(this.layout.stateDict(params))) tensors[name] = { dtype: 'F32', shape: e.shape, data: e.data };
    tensors[OPT_M] = { dtype: 'F32', shape: [this.layout.size], data: m };
    tensors[OPT_V] = { dtype: 'F32', shape: [this.layout.size], data: v };
    return { job: { writer: 'checkpoint', dir, contents: { tensors, meta: { ...meta, mesh: this.mesh.shape }, files } }, publish };
  }

  async load(dir: string): Promise<{ meta: Record<string, unknown>; files: Record<string, string> }> {
    if (isShardedCheckpoint(dir)) throw new Error(`checkpoint ${dir} is a sharded ZeRO checkpoint; a pipeline run resumes from a consolidated one (consolidateCheckpoint)`);
    const ck = loadCheckpoint(dir);
    const full = new Float32Array(this.layout.size);
    const dict: Record<string, { shape: readonly number[]; data: ArrayLike<number> }> = {};
    for (const [name, t] of Object.entries(ck.tensors)) if (name !== OPT_M && name !== OPT_V) dict[name] = { shape: t.shape, data: t.data as Float32Array };
    this.layout.loadStateDict(full, dict);
    const mFull = ck.tensors[OPT_M]?.data as Float32Array | undefined;
    const vFull = ck.tensors[OPT_V]?.data as Float32Array | undefined;
    if (!mFull || !vFull || mFull.length !== this.layout.size || vFull.length !== this.layout.size) throw new Error(`checkpoint ${dir} has no optimizer state of ${this.layout.size} values (${OPT_M}, ${OPT_V}); it cannot resume training`);
    const owned = (src: Float32Array) => {
      const o = new Float32Array(this.runner.ownedSize);
      for (const u of this.runner.owned) o.set(src.subarray(u.offset, u.offset + u.size), u.at);
      return o;
    };
    this.runner.params.set(owned(full));
    this.m.set(owned(mFull).subarray(this.chunk[0], this.chunk[1]));
    this.v.set(owned(vFull).subarray(this.chunk[0], this.chunk[1]));
    this.evalParams = undefined;
    return { meta: ck.meta, files: ck.files };
  }

  /** Bytes this rank holds: parameters and gradients of its units, optimizer state of its chunk. */
  memoryReport(): { paramBytes: number; gradBytes: number; optimBytes: number } {
    return { paramBytes: this.runner.params.byteLength, gradBytes: this.runner.grads.byteLength, optimBytes: this.m.byteLength + this.v.byteLength };
  }
}
