// ZeRO stages 2 and 3: the model runs segment by segment (segments.ts), so gradients never
// exist for the whole model at once: each segment's backward writes its gradients into one of
// two segment buffers, and they are reduce-scattered into this rank's gradient shard while the
// next segment's backward computes.
// Stage 2 keeps the full parameters on every rank (all-gathered after each update).
// Stage 3 keeps only this rank's parameter shard: a segment's parameters are all-gathered into
// one of two gather slots just before its forward and again before its backward, and the next
// segment's gather is started before the current one computes (prefetch).
//
// Collective order must be identical on every rank. All-gathers and the loss/norm all-reduce
// are issued from this one sequential flow on the world group; reduce-scatters run one at a
// time, in order, on their own subgroup (they share the group's scratch, and a subgroup has its
// own sequence numbers, so their timing cannot reorder the world group's calls).
import { hostValue, type HostValue } from '../../ir/value.js';
import { NamedExecutable, type Named } from '../named-program.js';
import type { LanguageModel } from '../../models/model.js';
import type { ProcessGroup } from '../../dist/index.js';
import { modelSegments, segmentOutputs, type Segment, type Unit } from '../segments.js';
import type { MicroBatch } from '../trainer.js';
import { ZeroStep, f32view, type ZeroOptions, type ZeroStepConfig } from './zero-base.js';
import { bytesOf, type MemoryReport } from '../zero/memory.js';
import { ShardPlan, type Piece } from '../zero/shard-plan.js';

interface Compiled {
  seg: Segment;
  forward?: NamedExecutable;
  backward: NamedExecutable;
}

type Item = { seg: Compiled; pass: 'forward' | 'backward'; block: number };

export class SegmentedZeroStep extends ZeroStep {
  readonly kind = 'zero-segmented';
  /** Stage 2: the full flat parameters. Stage 3: undefined. */
  private readonly params?: Float32Array;
  /** Stage 3: this rank's parameter shard (shard order). */
  private readonly paramShard?: Float32Array;
  private readonly gradShard: Float32Array;
  private readonly gatherSlots: Float32Array[] = [];
  private readonly segGrads: Float32Array[];
  private readonly reduceChunk: Float32Array;
  private readonly acts: HostValue[];
  private readonly dActs: HostValue[];
  private readonly lossBuf = hostValue('float32', [], [0]);
  private readonly units: Unit[];
  private readonly rsGroup: ProcessGroup;
  private compiled?: Compiled[];
  private hasKey = false;
  /** The reduce-scatter queue, and per segment buffer the point after which it is free again. */
  private rsChain: Promise<void> = Promise.resolve();
  private readonly segGradFree: Promise<void>[] = [Promise.resolve(), Promise.resolve()];

  constructor(model: LanguageModel, cfg: ZeroStepConfig, pg: ProcessGroup, opts: ZeroOptions) {
    super(model, cfg, pg, opts);
    if (this.stage < 2) throw new Error(`SegmentedZeroStep runs stages 2 and 3, not ${this.stage}`);
    const segs = modelSegments(model, this.layout, opts.shape);
    this.units = segs.units;
    const bucket = this.stage === 3 ? Math.min(cfg.zero.reduceBucketSize, cfg.zero.allgatherBucketSize) : cfg.zero.reduceBucketSize;
    this.initOptimizer(new ShardPlan(this.layout, this.units, bucket, this.world, this.rank));
    const init = opts.initialParams ? Float32Array.from(opts.initialParams) : this.layout.initialise(opts.seed);
    if (this.stage === 2) this.params = init;
    else {
      this.paramShard = new Float32Array(this.plan.shardSize);
      this.plan.gatherShard(init, this.paramShard);
    }
    this.gradShard = new Float32Array(this.plan.shardSize);
    const segSize = Math.max(...segs.segments.map((s) => s.units.reduce((a, u) => a + u.size, 0)));
    if (this.stage === 3) this.gatherSlots = [new Float32Array(segSize), new Float32Array(segSize)];
    this.segGrads = [new Float32Array(segSize), new Float32Array(segSize)];
    this.reduceChunk = new Float32Array(Math.max(...this.plan.pieces.map((p) => p.chunkSize)));
    const { batch, seq } = opts.shape;
    const act = () => hostValue('float32', [batch, seq, model.dims.nEmbd]);
    this.acts = Array.from({ length: model.dims.nLayer + 1 }, act);
    this.dActs = [act(), act()];
    this.rsGroup = pg.newGroup(Array.from({ length: this.world }, (_, i) => i))!;
    this.segmentsSource = segs.segments;
    this.hasKey = segs.hasKey;
  }

  private readonly segmentsSource: Segment[];

  protected async prepareGraphs(): Promise<void> {
    if (this.compiled) return;
    const out: Compiled[] = [];
    for (const seg of this.segmentsSource) {
      const names = segmentOutputs(seg);
      out.push({ seg, forward: seg.forward ? await NamedExecutable.compile(seg.forward, names.forward, this.exec()) : undefined, backward: await NamedExecutable.compile(seg.backward, names.backward, this.exec()) });
    }
    this.compiled = out;
  }

  protected paramChunk(p: Piece): Float32Array {
    if (this.params) return this.params.subarray(p.chunkStart, p.chunkStart + p.chunkSize);
    return this.paramShard!.subarray(p.shardOffset, p.shardOffset + p.chunkSize);
  }

  protected gradChunk(p: Piece): Float32Array {
    return this.gradShard.subarray(p.shardOffset, p.shardOffset + p.chunkSize);
  }

  /** The segment's unit parameters as flat views by unit name: in place (stage 2) or gathered into a slot (stage 3). */
  private async gather(seg: Segment, slot: number): Promise<Named> {
    if (this.params) return Object.fromEntries(seg.units.map((u) => [u.name, f32view(this.params!.subarray(u.offset, u.offset + u.size))]));
    const buf = this.gatherSlots[slot]!;
    const views: Named = {};
    const ops: Promise<void>[] = [];
    let at = 0;
    for (const u of seg.units) {
      const unitBuf = buf.subarray(at, at + u.size);
      for (const p of this.plan.piecesOf(u.offset, u.size)) {
        ops.push(this.pg.allGather(this.paramChunk(p), unitBuf.subarray(p.offset - u.offset, p.offset - u.offset + p.size)));
      }
      views[u.name] = f32view(unitBuf);
      at += u.size;
    }
    await Promise.all(ops);
    return views;
  }

  /** Queues the reduce-scatter of a segment's unit gradients (in segGrads[slot]) into the shard. */
  private reduceSegment(seg: Segment, slot: number): Promise<void> {
    const buf = this.segGrads[slot]!;
    let at = 0;
    for (const u of seg.units) {
      for (const p of this.plan.piecesOf(u.offset, u.size)) {
        const input = buf.subarray(at + p.offset - u.offset, at + p.offset - u.offset + p.size);
        const recv = this.reduceChunk.subarray(0, p.chunkSize);
        const shard = this.gradChunk(p);
        this.rsChain = this.rsChain
          .then(() => this.rsGroup.reduceScatter(input, recv))
          .then(() => {
            for (let i = 0; i < shard.length; i++) shard[i] = shard[i]! + recv[i]!; // O(chunk), accumulates micro-steps and wte's two uses
          });
      }
      at += u.size;
    }
    const done = this.rsChain;
    done.catch(() => {}); // awaited later; never an unhandled rejection in between
    return done;
  }

  private schedule(): Item[] {
    const c = this.compiled!;
    const L = c.length - 2;
    const items: Item[] = [];
    for (let i = 0; i <= L; i++) items.push({ seg: c[i]!, pass: 'forward', block: i - 1 });
    items.push({ seg: c[L + 1]!, pass: 'backward', block: L });
    for (let i = L; i >= 0; i--) items.push({ seg: c[i]!, pass: 'backward', block: i - 1 });
    return items;
  }

  protected async computeGrads(micro: MicroBatch[], iter: number): Promise<number> {
    const { batch, seq } = this.opts.shape;
    const seed = hostValue('float32', [], [1 / (micro.length * this.world)]);
    const items = this.schedule();
    const L = this.model.dims.nLayer;
    this.gradShard.fill(0);
    let loss = 0;
    let backwards = 0;
    for (let k = 0; k < micro.length; k++) {
      const idx: HostValue = { dtype: 'int32', shape: [batch, seq], data: micro[k]!.x };
      const targets: HostValue = { dtype: 'int32', shape: [batch, seq], data: micro[k]!.y };
      const key: Named = this.hasKey ? { key: this.keyValue(iter, k) } : {};
      let dy = 0;
      let next = this.gather(items[0]!.seg.seg, 0);
      for (let j = 0; j < items.length; j++) {
        const { seg, pass, block } = items[j]!;
        const params = await next;
        // Prefetch: the next segment's parameters travel while this one computes.
        if (j + 1 < items.length) next = this.gather(items[j + 1]!.seg.seg, (j + 1) % 2);
        if (pass === 'forward') {
          if (seg.seg.kind === 'embed') await seg.forward!.run({ ...params, idx, ...key }, { x: this.acts[block + 1]! });
          else await seg.forward!.run({ ...params, x: this.acts[block]!, ...key }, { y: this.acts[block + 1]! });
          continue;
        }
        const slot = backwards++ % 2;
        await this.segGradFree[slot]; // its previous reduce-scatter has read it
        const grads = this.gradViews(seg.seg, slot);
        if (seg.seg.kind === 'head') {
          await seg.backward.run({ ...params, x: this.acts[L]!, targets, seed }, { loss: this.lossBuf, dx: this.dActs[dy]!, ...grads });
          loss += (this.lossBuf.data as Float32Array)[0]! / micro.length;
        } else if (seg.seg.kind === 'block') {
          await seg.backward.run({ ...params, x: this.acts[block]!, dy: this.dActs[dy]!, ...key }, { dx: this.dActs[1 - dy]!, ...grads });
          dy = 1 - dy;
        } else {
          await seg.backward.run({ ...params, idx, dy: this.dActs[dy]!, ...key }, grads);
        }
        this.segGradFree[slot] = this.reduceSegment(seg.seg, slot);
        if (!this.cfg.zero.overlapComm) await this.segGradFree[slot];
      }
    }
    await this.rsChain;
    return loss;
  }

  private gradViews(seg: Segment, slot: number): Named {
    let at = 0;
    return Object.fromEntries(seg.units.map((u) => {
      const v = f32view(this.segGrads[slot]!.subarray(at, at + u.size));
      at += u.size;
      return [u.name, v];
    }));
  }

  protected async publishParams(): Promise<void> {
    if (!this.params || this.world === 1) return;
    await Promise.all(this.plan.pieces.map((p) => this.pg.allGather(this.paramChunk(p), this.params!.subarray(p.offset, p.offset + p.size))));
  }

  async fullParams(): Promise<Float32Array> {
    if (this.params) return this.params.slice();
    const full = new Float32Array(this.layout.size);
    await Promise.all(this.plan.pieces.map((p) => this.pg.allGather(this.paramChunk(p), full.subarray(p.offset, p.offset + p.size))));
    return full;
  }

  protected setParams(full: Float32Array): void {
    if (this.params) this.params.set(full);
    else this.plan.gatherShard(full, this.paramShard!);
  }

  memoryReport(): MemoryReport {
    return {
      stage: this.stage,
      ranks: this.world,
      paramBytes: bytesOf(this.params ?? this.paramShard),
      gradBytes: bytesOf(this.gradShard),
      optimBytes: bytesOf(this.m, this.v),
      decayMaskBytes: bytesOf(this.mask),
      transient: {
        gatheredParamBytes: bytesOf(...this.gatherSlots),
        segmentGradBytes: bytesOf(...this.segGrads),
        reduceChunkBytes: bytesOf(this.reduceChunk),
        activationBytes: bytesOf(...[...this.acts, ...this.dActs].map((h) => h.data as Float32Array)),
      },
    };
  }
}
