// The computations of the virtual stages one pipeline rank holds. A virtual stage is a
// contiguous range of transformer blocks, with the embedding on stage 0 and the final norm,
// head and loss on the last; each block is a segment (segments.ts) whose forward keeps, per
// micro-batch in flight, what the recompute granularity saves for its backward: the block input
// only (full: the backward recomputes the block), everything but the attention core
// (selective), or every tensor the backward reads (none). Parameters and gradients are the
// rank's own units, packed in one buffer (`owned`), in layout order.
import { floatValue, hostValue, type HostValue } from '../../ir/value.js';
import { allocFloat, type FloatArray, type TrainDType } from '../../ir/dtype.js';
import { withFloat } from '../../tensor/trace.js';
import type { ExecOptions } from '../../runtime/session.js';
import type { FlatLayout } from '../../nn/flat.js';
import type { LanguageModel } from '../../models/model.js';
import { activationShape, modelSegments, segmentOutputs, type Segment, type Unit } from '../segments.js';
import type { Granularity } from '../../ir/remat.js';
import type { StepShape } from '../step-graphs.js';
import { NamedExecutable, type AxisGroups, type Named } from '../named-program.js';
import { hasCommunication } from '../../ir/partition.js';

/** A unit of the flat layout held by this rank, and where it sits in the owned buffer. */
export interface OwnedUnit extends Unit {
  at: number;
}

interface Compiled {
  seg: Segment;
  /** Set by compile(). */
  forward?: NamedExecutable;
  backward?: NamedExecutable;
}

interface Stash {
  idx?: HostValue;
  /** Per block of the stage, in order: its input x and the tensors its forward saved. */
  blocks: Named[];
  /** Output of the stage's last block (the head's input on the last stage). */
  out: HostValue;
  /** Per block of the stage: everything its forward returned, back to the block's pool once
   * the backward has used it. */
  outs: [number, Named][];
}


/** The feeds a program takes, out of a record that may hold more (a block's backward may not
 * read x or key, depending on what its forward saved). */
function feedsOf(exe: NamedExecutable, all: Named): Named {
  return Object.fromEntries(exe.inputNames.map((n) => [n, all[n]!]));
}

const bytesOf = (v: HostValue) => v.data.byteLength;

export class StageRunner {
  readonly owned: OwnedUnit[];
  readonly ownedSize: number;
  /** This rank's parameters and accumulated gradients, packed (see owned). */
  readonly params: FloatArray;
  readonly grads: FloatArray;
  private readonly compiled = new Map<string, Compiled>();
  private readonly stash = new Map<string, Stash>();
  /** Per block: output records of finished micro-batches, written again by the next forward. */
  private readonly pools = new Map<number, Named[]>();
  /** Milliseconds spent in forward and backward programs since the last reset. */
  busyMs = 0;
  /** Bytes of activations held for backwards now, and the most held at once since construction. */
  stashBytes = 0;
  peakStashBytes = 0;
  readonly hasKey: boolean;
  /** The residual stream between stages (this rank's sequence part under sequence parallelism). */
  readonly act: number[];

  constructor(
    readonly model: LanguageModel,
    readonly layout: FlatLayout,
    readonly shape: StepShape,
    /** Virtual stages of this rank and the blocks [first, end) of each. */
    readonly stages: { stage: number; blocks: [number, number] }[],
    readonly lastStage: number,
    full: FloatArray,
    readonly granularity: Granularity = 'full',
    /** Dtype of parameters, activations and gradients (the programs are traced in it). */
    readonly dtype: TrainDType = 'float32',
  ) {
    const segs = withFloat(dtype, () => modelSegments(model, layout, shape, granularity));
    this.hasKey = segs.hasKey;
    const segOf = (name: string) => segs.segments.find((s) => s.name === name)!;
    const need: Segment[] = [];
    for (const { stage, blocks } of stages) {
      if (stage === 0) need.push(segOf('embed'));
      for (let b = blocks[0]; b < blocks[1]; b++) need.push(segOf(`block ${b}`));
      if (stage === lastStage) need.push(segOf('head'));
    }
    const units = [...new Map(need.flatMap((s) => s.units).map((u) => [u.name, u])).values()].sort((a, b) => a.offset - b.offset);
    let at = 0;
    this.owned = units.map((u) => {
      const o = { ...u, at };
      at += u.size;
      return o;
    });
    this.ownedSize = at;
    this.params = allocFloat(dtype, at);
    this.grads = allocFloat(dtype, at);
    for (const u of this.owned) this.params.set(full.subarray(u.offset, u.offset + u.size), u.at);
    this.act = activationShape(model, shape);
    for (const s of need) this.compiled.set(s.name, { seg: s });
  }

  /** `groups`: the process group of each mesh axis the programs' collectives name ({ tp }). */
  async compile(opts: ExecOptions, groups: AxisGroups = {}): Promise<void> {
    for (const c of this.compiled.values()) {
      const s = c.seg;
      const outs = segmentOutputs(s);
      if (s.forward) c.forward = await NamedExecutable.compile(s.forward, outs.forward, opts, groups);
      // A backward's outputs are used up before the same program runs again (its parameters'
      // gradients are added into `grads` at once, its input gradient feeds the next block or is
      // copied into a message by the send that follows it), so it writes them into buffers of
      // its own instead of fresh ones each run: a pipeline step handed the collector its
      // parameters' size in garbage per micro-batch, and the last stage paid for it in a full
      // collection (5-10 ms, the main thread stopped) about every step. Forward outputs are
      // kept for the backward, so they stay fresh. Programs cut around collectives keep theirs.
      const reuse = !hasCommunication(s.backward);
      c.backward = await NamedExecutable.compile(s.backward, outs.backward, { ...opts, reuseOutputs: reuse }, groups);
    }
  }

  private compiledOf(name: string): Required<Compiled> {
    const c = this.compiled.get(name);
    if (!c?.backward) throw new Error(`segment '${name}' is not compiled on this rank (call compile() first)`);
    return c as Required<Compiled>;
  }

  private unit(name: string): OwnedUnit {
    return this.owned.find((u) => u.name === name)!;
  }

  /** Feeds of a segment's parameters: views of the owned buffer. */
  private paramFeeds(seg: Segment): Named {
    return Object.fromEntries(seg.units.map((u) => {
      const o = this.unit(u.name);
      return [u.name, floatValue(this.params.subarray(o.at, o.at + o.size), [o.size])];
    }));
  }

  private addGrads(seg: Segment, out: Named): void {
    for (const u of seg.units) {
      const o = this.unit(u.name);
      const g = out[u.name]!.data as FloatArray;
      const dst = this.grads.subarray(o.at, o.at + o.size);
      for (let i = 0; i < g.length; i++) dst[i] = dst[i]! + g[i]!;
    }
  }

  private blocksOf(stage: number): [number, number] {
    const s = this.stages.find((x) => x.stage === stage);
    if (!s) throw new Error(`virtual stage ${stage} does not live on this rank`);
    return s.blocks;
  }

  private async timed<T>(f: () => Promise<T>): Promise<T> {
    const t0 = performance.now();
    try {
      return await f();
    } finally {
      this.busyMs += performance.now() - t0;
    }
  }

  /** Runs stage `stage` on micro-batch `mb`: from the tokens (stage 0) or the received
   * activation; returns the stage's output activation. */
  forward(mb: number, stage: number, input: { idx?: Int32Array; x?: FloatArray }, key: HostValue | undefined): Promise<FloatArray> {
    return this.timed(async () => {
      const keyFeed: Named = key ? { key } : {};
      const st: Stash = { blocks: [], out: undefined as unknown as HostValue, outs: [] };
      let x: HostValue;
      if (stage === 0) {
        const c = this.compiledOf('embed');
        st.idx = hostValue('int32', [this.shape.batch, this.shape.seq], input.idx!);
        x = (await c.forward.run({ ...this.paramFeeds(c.seg), idx: st.idx, ...keyFeed })).x!;
      } else x = floatValue(input.x!, this.act);
      const [b0, b1] = this.blocksOf(stage);
      for (let b = b0; b < b1; b++) {
        const c = this.compiledOf(`block ${b}`);
        // A forward's outputs live until this micro-batch's backward, so they cannot be one
        // set of buffers; but a finished micro-batch's set is free for the next forward, and
        // ONNX Runtime writes into it. With fresh outputs every micro-batch left the saved
        // tensors' size (without recomputation, the attention probabilities too) for the
        // collector: pp2, recompute none, cpu-small, ran 346 ms/step against 296 reusing them
        // (medians of six alternated runs on the 2-core dev VM).
        const into = this.pools.get(b)?.pop();
        const feeds = feedsOf(c.forward, { ...this.paramFeeds(c.seg), x, ...keyFeed });
        const outs = into ? await c.forward.run(feeds, into) : await c.forward.run(feeds);
        st.outs.push([b, outs]);
        const { y, ...saved } = outs;
        st.blocks.push({ x, ...saved });
        x = y!;
      }
      st.out = x;
      this.stash.set(`${mb}:${stage}`, st);
      this.stashBytes += stashSize(st);
      this.peakStashBytes = Math.max(this.peakStashBytes, this.stashBytes);
      return x.data as FloatArray;
    });
  }

  /** Backward of stage `stage` on `mb`: from the loss (last stage, `seed` scales it) or the
   * received gradient; adds parameter gradients, returns the input gradient (null on stage 0)
   * and, on the last stage, the micro-batch loss. */
  backward(mb: number, stage: number, input: { dy?: FloatArray; targets?: Int32Array; seed: number }, key: HostValue | undefined): Promise<{ dx: FloatArray | null; loss?: number }> {
    return this.timed(async () => {
      const keyFeed: Named = key ? { key } : {};
      const st = this.stash.get(`${mb}:${stage}`);
      if (!st) throw new Error(`backward of micro-batch ${mb} on stage ${stage} before its forward`);
      this.stash.delete(`${mb}:${stage}`);
      this.stashBytes -= stashSize(st);
      let dy: HostValue;
      let loss: number | undefined;
      if (stage === this.lastStage) {
        const c = this.compiledOf('head');
        const targets = hostValue('int32', [this.shape.batch, this.shape.seq], input.targets!);
        const out = await c.backward.run({ ...this.paramFeeds(c.seg), x: st.out, targets, seed: hostValue(this.dtype, [], [input.seed]) });
        this.addGrads(c.seg, out);
        loss = (out.loss!.data as FloatArray)[0]!;
        dy = out.dx!;
      } else dy = floatValue(input.dy!, this.act);
      const [b0, b1] = this.blocksOf(stage);
      for (let b = b1 - 1; b >= b0; b--) {
        const c = this.compiledOf(`block ${b}`);
        const out = await c.backward.run(feedsOf(c.backward, { ...this.paramFeeds(c.seg), ...st.blocks[b - b0]!, dy, ...keyFeed }));
        this.addGrads(c.seg, out);
        dy = out.dx!;
      }
      if (stage === 0) {
        const c = this.compiledOf('embed');
        this.addGrads(c.seg, await c.backward.run({ ...this.paramFeeds(c.seg), idx: st.idx!, dy, ...keyFeed }));
      }
      // The stage's output (the last block's y) went out in a send before this backward's
      // gradient could arrive, so every record is free now.
      for (const [b, outs] of st.outs) {
        if (!this.pools.has(b)) this.pools.set(b, []);
        this.pools.get(b)!.push(outs);
      }
      return { dx: stage === 0 ? null : dy.data as FloatArray, loss };
    });
  }

  /** Activations still held (micro-batch, stage) pairs: empty between steps. */
  get inFlight(): number {
    return this.stash.size;
  }
}

/** Bytes a stash holds: the block inputs and saved tensors, and the stage output when the last
 * block did not already keep it (the head's input on the last stage). */
function stashSize(st: Stash): number {
  return st.blocks.reduce((a, blk) => a + Object.values(blk).reduce((b, v) => b + bytesOf(v), 0), 0) + (st.idx ? bytesOf(st.idx) : 0) + bytesOf(st.out);
}
