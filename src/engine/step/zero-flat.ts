// ZeRO stages 0 and 1: the whole model is one compiled micro-step graph (fastest on a CPU),
// parameters and the gradient accumulator are full flat buffers on every rank.
// Stage 0 (plain data parallel): all-reduce the gradient, every rank updates everything.
// Stage 1: reduce-scatter the gradient piece by piece (each rank receives the sum of its own
// chunk, in place in the accumulator), update that chunk with this rank's m and v shards, then
// all-gather the parameters.
import { hostValue, type HostValue } from '../../ir/value.js';
import { NamedExecutable, type Named } from '../named-program.js';
import type { LanguageModel } from '../../models/model.js';
import type { ProcessGroup } from '../../dist/index.js';
import { microstepProgram } from '../step-graphs.js';
import type { MicroBatch } from '../trainer.js';
import { ZeroStep, f32view, type ZeroOptions, type ZeroStepConfig } from './zero-base.js';
import { bytesOf, type MemoryReport } from '../zero/memory.js';
import { ShardPlan, wholeBuffer, type Piece } from '../zero/shard-plan.js';

export class FlatZeroStep extends ZeroStep {
  readonly kind = 'zero-flat';
  private readonly params: Float32Array;
  private readonly grads: Float32Array;
  private micro?: NamedExecutable;
  private hasKey = false;
  private readonly lossBuf = hostValue('float32', [], [0]);

  constructor(model: LanguageModel, cfg: ZeroStepConfig, pg: ProcessGroup, opts: ZeroOptions) {
    super(model, cfg, pg, opts);
    if (this.stage > 1) throw new Error(`FlatZeroStep runs stages 0 and 1, not ${this.stage}`);
    // Every rank initialises from the same seed, so the replicas start identical.
    this.params = opts.initialParams ? Float32Array.from(opts.initialParams) : this.layout.initialise(opts.seed);
    this.grads = new Float32Array(this.layout.size);
    const sharded = this.stage === 1;
    this.initOptimizer(new ShardPlan(this.layout, wholeBuffer(this.layout), sharded ? cfg.zero.reduceBucketSize : Infinity, sharded ? this.world : 1, sharded ? this.rank : 0));
  }

  protected async prepareGraphs(): Promise<void> {
    if (this.micro) return;
    const mp = microstepProgram(this.model, this.layout, this.opts.shape);
    this.hasKey = mp.hasKey;
    this.micro = await NamedExecutable.of(mp, this.exec());
  }

  protected paramChunk(p: Piece): Float32Array {
    return this.params.subarray(p.chunkStart, p.chunkStart + p.chunkSize);
  }

  protected gradChunk(p: Piece): Float32Array {
    return this.grads.subarray(p.chunkStart, p.chunkStart + p.chunkSize);
  }

  protected async computeGrads(micro: MicroBatch[], iter: number): Promise<number> {
    const { batch, seq } = this.opts.shape;
    const params = f32view(this.params);
    const grads = f32view(this.grads);
    // Pre-scaled so that the sum over ranks is the mean over the global batch.
    const scale = hostValue('float32', [1], [1 / (micro.length * this.world)]);
    this.grads.fill(0);
    let loss = 0;
    for (let k = 0; k < micro.length; k++) {
      const x: HostValue = { dtype: 'int32', shape: [batch, seq], data: micro[k]!.x };
      const y: HostValue = { dtype: 'int32', shape: [batch, seq], data: micro[k]!.y };
      const key: Named = this.hasKey ? { key: this.keyValue(iter, k) } : {};
      // Accumulates in place (acc' = acc + scale * grad is elementwise in acc).
      await this.micro!.run({ params, grad_acc: grads, idx: x, targets: y, scale, ...key }, { grad_acc: grads, loss: this.lossBuf });
      loss += (this.lossBuf.data as Float32Array)[0]! / micro.length;
    }
    if (this.world > 1) {
      if (this.stage === 0) await this.pg.allReduce(this.grads);
      // The output is the rank's own chunk of the input: reduceScatter copies its input first.
      else for (const p of this.plan.pieces) await this.pg.reduceScatter(this.grads.subarray(p.offset, p.offset + p.size), this.gradChunk(p));
    }
    return loss;
  }

  protected async publishParams(): Promise<void> {
    if (this.stage === 0 || this.world === 1) return;
    await Promise.all(this.plan.pieces.map((p) => this.pg.allGather(this.paramChunk(p), this.params.subarray(p.offset, p.offset + p.size))));
  }

  async fullParams(): Promise<Float32Array> {
    return this.params.slice();
  }

  protected setParams(full: Float32Array): void {
    this.params.set(full);
  }

  memoryReport(): MemoryReport {
    return {
      stage: this.stage,
      ranks: this.world,
      paramBytes: bytesOf(this.params),
      gradBytes: bytesOf(this.grads),
      optimBytes: bytesOf(this.m, this.v),
      decayMaskBytes: bytesOf(this.mask),
      transient: { gatheredParamBytes: 0, segmentGradBytes: 0, reduceChunkBytes: 0, activationBytes: 0 },
    };
  }
}
