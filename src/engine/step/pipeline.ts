// The trainer's step on a mesh with pipeline stages, tensor parallelism or recomputation: each rank holds the units of its virtual stages
// (stage.ts), runs the schedule (pipeline/executor.ts), then sums gradients between the tied
// embedding's first and last stage and over the data-parallel ranks (all-reduce, or with
// ZeRO-1 a reduce-scatter, an update of this rank's chunk and an all-gather), takes one global
// gradient norm and applies AdamW. With tensor parallelism each rank holds its shard of the
// model (tp-shard.ts maps it to the full layout) and its programs run their collectives on the
// 'tp' group. Checkpoints are universal: each rank writes its own shard (with tp > 1 its tp
// shard of each split tensor, a padded vocabulary's zero rows included, as checkpoint/tp-split.ts
// lays it out) and rank 0 a manifest of how every tensor is split, so a run resumes on any layout.
import { floatValue, hostValue, type HostValue } from '../../ir/value.js';
import { allocFloat, toFloat, type FloatArray, type TrainDType } from '../../ir/dtype.js';
import { withFloat } from '../../tensor/trace.js';
import { checkpointDType, checkStateDType } from '../train-dtype.js';
import { NamedExecutable } from '../named-program.js';
import type { ExecOptions } from '../../runtime/session.js';
import { FlatLayout } from '../../nn/flat.js';
import type { LanguageModel } from '../../models/model.js';
import { adamwScalars, type AdamWConfig } from '../../optim/adamw.js';
import { chunkRange, type ProcessGroup } from '../../dist/index.js';
import { isUniversalCheckpoint } from '../../checkpoint/index.js';
import { loadUniversal, piecesOf, readFullState, RunIdentity, saveUniversal, tensorInfos, together, type UniversalSave } from '../universal/state.js';
import { evalProgram, updateProgram, type StepShape } from '../step-graphs.js';
import { dropoutKey, dropoutKeyAt } from '../dropout-key.js';
import type { MicroBatch, StepResult } from '../trainer.js';
import type { HeldBytes, StepStrategy } from './strategy.js';
import { StageRunner } from '../pipeline/stage.js';
import { runSchedule, type StepRecord } from '../pipeline/executor.js';
import { buildSchedule, type PipelineSchedule } from '../pipeline/schedule.js';
import { stageStarts, MeshError, type ParallelLayout } from '../mesh/layout.js';
import type { Mesh } from '../mesh/mesh.js';
import { TensorParallelShard } from '../mesh/tp-shard.js';

export interface PipelineOptions extends ExecOptions {
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
  /** Dtype of parameters, activations, gradients, optimizer state and messages (default float32). */
  dtype?: TrainDType;
}

const f32 = (data: FloatArray): HostValue => floatValue(data);

export class PipelineStep implements StepStrategy {
  readonly kind = 'pipeline';
  /** The full model's layout (checkpoints, evaluation). */
  readonly layout: FlatLayout;
  /** This tensor-parallel rank's shard of the model, its layout, and where its elements live
   * in the full layout (the model and its layout, no map, when tp is 1). */
  readonly local: LanguageModel;
  readonly localLayout: FlatLayout;
  readonly shard: TensorParallelShard | undefined;
  /** Owned-buffer positions of replicated parameters: their gradients are partial sums over
   * the sequence parts under sequence parallelism, summed over tp before the update. */
  private readonly replicatedAt: Int32Array;
  readonly runner: StageRunner;
  readonly schedule: PipelineSchedule;
  /** Range of the owned buffer this rank updates: all of it, or its ZeRO-1 chunk. */
  private readonly chunk: [number, number];
  private readonly m: FloatArray;
  private readonly v: FloatArray;
  private readonly mask: FloatArray;
  readonly dtype: TrainDType;
  /** Owned elements counted in the global norm here (tied copies and dp replicas once). */
  private readonly normMask: Uint8Array;
  private readonly tied: string[];
  private update?: NamedExecutable;
  private evaluator?: NamedExecutable;
  private evalParams?: FloatArray;
  private readonly scalars: HostValue;
  private readonly normSq: HostValue;
  /** The run's id in its universal checkpoints. */
  readonly identity = new RunIdentity();
  /** Timing of the last step's schedule (the pipeline bench reads it). */
  lastRecord?: StepRecord;

  constructor(readonly model: LanguageModel, readonly mesh: Mesh, readonly opts: PipelineOptions) {
    const { pp } = mesh.shape;
    if (opts.zeroStage > 1 && pp === 1) throw new MeshError(`ZeRO stage ${opts.zeroStage} with tensor parallelism is not implemented: the mesh shards only the optimizer state over dp (ZeRO-1); use zero_optimization.stage 0 or 1, or tp 1 for stages 2 and 3`);
    if (opts.zeroStage > 1) throw new MeshError(`ZeRO stage ${opts.zeroStage} with pipeline parallelism is refused (as DeepSpeed does): stages 2 and 3 partition gradients and parameters, which the pipeline accumulates over micro-batches on each stage; use zero_optimization.stage 0 or 1`);
    this.layout = new FlatLayout(model);
    const dt = (this.dtype = opts.dtype ?? 'float32');
    this.scalars = hostValue(dt, [3]);
    this.normSq = hostValue(dt, [1]);
    const tp = mesh.shape.tp;
    if (tp > 1 && !model.tensorParallelShard) throw new MeshError(`the ${model.family} model here cannot be split for tensor parallelism (e.g. LoRA adapters on frozen weights); run with --tensor-model-parallel-size 1`);
    this.local = tp > 1 ? model.tensorParallelShard!({ axis: { name: 'tp', size: tp, rank: mesh.coords.tp }, sequence: opts.layout.sequenceParallel }) : model;
    this.localLayout = tp > 1 ? new FlatLayout(this.local) : this.layout;
    this.shard = tp > 1 ? new TensorParallelShard(model, this.layout, this.localLayout, mesh.coords.tp, tp) : undefined;
    const v = opts.layout.virtual;
    const starts = stageStarts(opts.stageLayers);
    const last = pp * v - 1;
    const mine = Array.from({ length: v }, (_, c) => c * pp + mesh.coords.pp).map((s) => ({ stage: s, blocks: [starts[s]!, starts[s + 1]!] as [number, number] }));
    if (opts.initialParams && opts.initialParams.length !== this.layout.size) throw new Error(`initial parameters have ${opts.initialParams.length} values, the model needs ${this.layout.size}`);
    // Every layout starts from the one-process initialisation, sliced to this rank's shard.
    const full = toFloat(dt, opts.initialParams ?? this.layout.initialise(opts.seed));
    this.runner = new StageRunner(this.local, this.localLayout, opts.shape, mine, last, this.shard?.shard(full) ?? full, opts.layout.recompute, dt);
    this.schedule = buildSchedule(opts.layout.schedule, pp, v, opts.microBatches);
    const named = model.units();
    this.tied = named.head.filter((h) => named.embed.includes(h));
    const n = this.runner.ownedSize;
    this.chunk = opts.zeroStage === 1 ? chunkRange(n, mesh.shape.dp, mesh.coords.dp) : [0, n];
    const size = this.chunk[1] - this.chunk[0];
    this.m = allocFloat(dt, size);
    this.v = allocFloat(dt, size);
    const fullMask = this.localLayout.decayMask();
    const ownedMask = allocFloat(dt, n);
    for (const u of this.runner.owned) ownedMask.set(fullMask.subarray(u.offset, u.offset + u.size), u.at);
    this.mask = ownedMask.slice(this.chunk[0], this.chunk[1]);
    // Norm: each element once in the whole mesh. Tied units count on the first stage only; with
    // ZeRO-1 each dp rank counts its chunk, without it dp rank 0 counts everything; replicated
    // parameters count on tp rank 0, split ones on every tp rank (each holds its own part).
    this.normMask = new Uint8Array(size);
    const countsHere = opts.zeroStage === 1 || mesh.coords.dp === 0;
    const replicated: number[] = [];
    for (const u of this.runner.owned) {
      if (this.shard) for (let k = 0; k < u.size; k++) if (this.shard.replicated[u.offset + k]) replicated.push(u.at + k);
      const skip = !countsHere || (this.tied.includes(u.name) && !mesh.isFirstStage);
      if (skip) continue;
      const a = Math.max(u.at, this.chunk[0]);
      const b = Math.min(u.at + u.size, this.chunk[1]);
      if (b > a) this.normMask.fill(1, a - this.chunk[0], b - this.chunk[0]);
    }
    this.replicatedAt = Int32Array.from(replicated);
    if (mesh.coords.tp > 0) for (const i of this.replicatedAt) if (i >= this.chunk[0] && i < this.chunk[1]) this.normMask[i - this.chunk[0]] = 0;
  }

  private exec(): ExecOptions {
    return { device: this.opts.device, threads: this.opts.threads };
  }

  private ready?: Promise<void>;
  prepare(): Promise<void> {
    this.ready ??= (async () => {
      await this.runner.compile(this.exec(), { tp: this.mesh.tp });
      this.update = await NamedExecutable.of(withFloat(this.dtype, () => updateProgram(this.chunk[1] - this.chunk[0], this.opts.optimizer, this.opts.gradClip, true)), this.exec());
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
    if (this.opts.layout.sequenceParallel && this.mesh.shape.tp > 1) {
      // Norms and biases of the sequence-parallel regions saw only this rank's positions.
      const at = this.replicatedAt;
      const packed = allocFloat(this.dtype, at.length);
      for (let k = 0; k < at.length; k++) packed[k] = g[at[k]!]!;
      await this.mesh.tp.allReduce(packed);
      for (let k = 0; k < at.length; k++) g[at[k]!] = packed[k]!;
    }
    if (this.mesh.embedTie) {
      for (const name of this.tied) {
        const u = this.runner.owned.find((o) => o.name === name)!;
        await this.mesh.embedTie.allReduce(g.subarray(u.at, u.at + u.size));
      }
    }
    let mine: FloatArray;
    if (this.mesh.shape.dp === 1) mine = g;
    else if (this.opts.zeroStage === 1) {
      mine = allocFloat(this.dtype, this.chunk[1] - this.chunk[0]);
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

  private reduced?: FloatArray;

  private async applyUpdate(lr: number, iter: number, localNormSq: number, localLoss: number): Promise<{ loss: number; normSq: number }> {
    // One all-reduce over the world carries the norm shares and the last stages' mean losses
    // (tp rank 0's: every tensor-parallel rank computes the same loss).
    const red = toFloat(this.dtype, [localNormSq, this.mesh.isLastStage && this.mesh.coords.tp === 0 ? localLoss : 0]);
    await this.mesh.world.allReduce(red);
    (this.normSq.data as FloatArray)[0] = red[0]!;
    (this.scalars.data as FloatArray).set(adamwScalars(this.opts.optimizer, lr, iter + 1));
    const p = this.runner.params.subarray(this.chunk[0], this.chunk[1]);
    const grad = this.reduced!;
    await this.update!.run(
      { params: f32(p), grad: f32(grad), m: f32(this.m), v: f32(this.v), decay_mask: f32(this.mask), scalars: this.scalars, norm_sq: this.normSq },
      { params: f32(p), m: f32(this.m), v: f32(this.v), grad_norm: hostValue(this.dtype, [], [0]) },
    );
    if (this.opts.zeroStage === 1 && this.mesh.shape.dp > 1) {
      const full = this.runner.params;
      await this.mesh.dp.allGather(full.slice(this.chunk[0], this.chunk[1]), full);
    }
    // Each data-parallel replica's last stage adds its loss: the mean over replicas.
    return { loss: red[1]! / this.mesh.shape.dp, normSq: red[0]! };
  }

  /**
   * The full flat buffer of an owned-indexed array (params; m and v from `from` on), on every
   * rank: each element is written by exactly one rank (the dp rank whose chunk holds it, tied
   * units by the first stage, split parameters by their tp rank, replicated ones by tp 0) at
   * its full-layout position, and one world all-reduce sums them.
   */
  private async consolidate(src: FloatArray, from: number): Promise<FloatArray> {
    const full = allocFloat(this.dtype, this.layout.size);
    const [a, b] = chunkRange(this.runner.ownedSize, this.mesh.shape.dp, this.mesh.coords.dp);
    const tp0 = this.mesh.coords.tp === 0;
    for (const u of this.runner.owned) {
      if (this.tied.includes(u.name) && !this.mesh.isFirstStage) continue;
      const lo = Math.max(a, u.at);
      const hi = Math.min(b, u.at + u.size);
      if (!this.shard) {
        if (hi > lo) full.set(src.subarray(lo - from, hi - from), u.offset + (lo - u.at));
        continue;
      }
      const { toFull, replicated } = this.shard;
      for (let i = lo; i < hi; i++) {
        const l = u.offset + (i - u.at);
        const k = toFull[l]!;
        if (k >= 0 && (tp0 || !replicated[l])) full[k] = src[i - from]!;
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
    this.evaluator ??= await NamedExecutable.of(withFloat(this.dtype, () => evalProgram(this.model, this.layout, shape)), this.exec());
    this.evalParams ??= await this.consolidate(this.runner.params, 0);
    const { loss } = await this.evaluator.run({ params: f32(this.evalParams), idx: hostValue('int32', [shape.batch, shape.seq], batch.x), targets: hostValue('int32', [shape.batch, shape.seq], batch.y) });
    const total = toFloat(this.dtype, [(loss!.data as FloatArray)[0]!]);
    await this.mesh.world.allReduce(total);
    return total[0]! / this.mesh.world.worldSize;
  }

  /** This rank's units as slots of its owned buffer: where each tensor (its tp shard) sits. */
  private ownedSlots(): { name: string; offset: number; size: number }[] {
    return this.runner.owned.flatMap((u) => this.localLayout.slots.filter((s) => s.offset >= u.offset && s.offset < u.offset + u.size).map((s) => ({ name: s.name, offset: s.offset - u.offset + u.at, size: s.size })));
  }

  /** A universal checkpoint: each rank writes its dp share of its stage's units (its ZeRO-1
   *  chunk, or an equal share when every dp rank holds everything); a tied unit is written by
   *  the first stage. Rank 0 commits the manifest; nothing is gathered. */
  async save(dir: string, meta: Record<string, unknown>, files: Record<string, string>): Promise<void> {
    const { group, save } = await this.universalSave(dir, meta, files);
    await saveUniversal(group, save);
  }

  /** What this rank writes of that save, as views of its live buffers (collective: the ids are
   *  agreed on); an asynchronous save snapshots it at the step boundary. */
  async universalSave(dir: string, meta: Record<string, unknown>, files: Record<string, string>): Promise<{ group: ProcessGroup; save: UniversalSave }> {
    const { dp, pp, tp } = this.mesh.shape;
    const [lo, hi] = chunkRange(this.runner.ownedSize, dp, this.mesh.coords.dp);
    const from = this.chunk[0];
    const at = (b: FloatArray) => b.subarray(lo - from, hi - from);
    const range = { lo, hi, param: this.runner.params.subarray(lo, hi), m: at(this.m), v: at(this.v) };
    const tiedHere = (name: string) => this.tied.some((u) => name.startsWith(`${u}.`)) && !this.mesh.isFirstStage;
    const replicatedHere = (name: string) => this.mesh.coords.tp > 0 && this.model.tensorParallelSplit(name).kind === 'replicated';
    const pieces = piecesOf(this.ownedSlots(), [range], () => this.mesh.coords.tp).filter((p) => !tiedHere(p.name) && !replicatedHere(p.name));
    const save: UniversalSave = {
      dir,
      layout: { dp, tp, pp, zero: this.opts.zeroStage, world: this.mesh.world.worldSize },
      coords: { rank: this.mesh.world.rank, ...this.mesh.coords },
      ids: await this.identity.next(this.mesh.world),
      pieces,
      tensors: tensorInfos(this.model, this.layout, new Set(pieces.map((p) => p.name)), () => this.mesh.coords.pp),
      order: this.layout.slots.map((s) => s.name),
      meta: { ...meta, ...checkpointDType(this.dtype), mesh: this.mesh.shape },
      files,
    };
    return { group: this.mesh.world, save };
  }

  /** Resumes from a universal checkpoint of any layout (reading only the shard files that hold
   *  this stage's tensors) or a plain one; every rank reads and checks before any changes. */
  async load(dir: string): Promise<{ meta: Record<string, unknown>; files: Record<string, string> }> {
    const slots = this.ownedSlots();
    const st = await together(this.mesh.world, 'read the checkpoint', () => {
      const n = this.runner.ownedSize;
      const [p, m, v] = [allocFloat(this.dtype, n), allocFloat(this.dtype, n), allocFloat(this.dtype, n)];
      if (this.shard && !isUniversalCheckpoint(dir)) {
        // A plain checkpoint under tensor parallelism: the full state, sliced to this rank.
        const full = readFullState(dir, this.layout, this.model);
        const [lp, lm, lv] = [full.params, full.m, full.v].map((x) => this.shard!.shard(x));
        for (const u of this.runner.owned) {
          p.set(lp!.subarray(u.offset, u.offset + u.size), u.at);
          m.set(lm!.subarray(u.offset, u.offset + u.size), u.at);
          v.set(lv!.subarray(u.offset, u.offset + u.size), u.at);
        }
        return { p, m, v, meta: full.meta, files: full.files, run: undefined };
      }
      if (isUniversalCheckpoint(dir)) {
        const u = loadUniversal(dir, this.model, this.layout, { tp: this.mesh.shape.tp, tpRank: this.mesh.coords.tp, names: slots.map((s) => s.name) });
        for (const s of slots) {
          const t = u.tensors.get(s.name)!;
          p.set(t.param, s.offset);
          m.set(t.expAvg, s.offset);
          v.set(t.expAvgSq, s.offset);
        }
        return { p, m, v, meta: u.meta, files: u.files, run: u.run as string | undefined };
      }
      const full = readFullState(dir, this.layout, this.model);
      for (const u of this.runner.owned) {
        p.set(full.params.subarray(u.offset, u.offset + u.size), u.at);
        m.set(full.m.subarray(u.offset, u.offset + u.size), u.at);
        v.set(full.v.subarray(u.offset, u.offset + u.size), u.at);
      }
      return { p, m, v, meta: full.meta, files: full.files, run: undefined };
    });
    checkStateDType(dir, st.meta, this.dtype);
    this.runner.params.set(st.p);
    this.m.set(st.m.subarray(this.chunk[0], this.chunk[1]));
    this.v.set(st.v.subarray(this.chunk[0], this.chunk[1]));
    if (st.run) this.identity.run = st.run;
    this.evalParams = undefined;
    return { meta: st.meta, files: st.files };
  }

  /** Bytes this rank holds: parameters and gradients of its units, optimizer state of its chunk. */
  memoryReport(): HeldBytes {
    return { paramBytes: this.runner.params.byteLength, gradBytes: this.runner.grads.byteLength, optimBytes: this.m.byteLength + this.v.byteLength };
  }
}
