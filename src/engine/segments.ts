// A language model as a chain of segments (embedding; one per transformer block; final norm +
// head + loss), each compiled on its own, for ZeRO stages 2 and 3: a segment's parameters can be
// gathered just before it runs and released after, and its gradients reduced while the next
// segment computes. A block's backward recomputes what its forward did not keep: by default
// everything (full activation checkpointing: one activation per block is kept); with
// granularity none or selective its forward also returns the tensors its backward reads.
//
// A segment's parameters come in as one flat input per *unit*: a contiguous range of the flat
// layout (the model's units(): e.g. GPT's wte, wpe, each block, ln_f). A tied head reads the
// token embedding, so that unit belongs to both the embedding and the head segment, and its
// gradient is the sum of both contributions.
import type { Program } from '../ir/graph.js';
import type { Tensor } from '../tensor/tensor.js';
import { buildProgram, type Tracer } from '../tensor/program.js';
import { concat } from '../tensor/functional.js';
import { gradients } from '../autodiff/grad.js';
import { splitForwardBackward, type Granularity, type SavedTensor } from '../ir/remat.js';
import { type FlatLayout, type Slot, flatView, withParams } from '../nn/flat.js';
import type { LanguageModel } from '../models/model.js';
import type { StepShape } from './step-graphs.js';

/** A contiguous range [offset, offset + size) of the flat parameter buffer. */
export interface Unit {
  name: string;
  offset: number;
  size: number;
}

export type SegmentKind = 'embed' | 'block' | 'head';

export interface Segment {
  name: string;
  kind: SegmentKind;
  /** The units whose flat values the programs take first, in this order. */
  units: Unit[];
  /**
   * embed: units, idx[, key] -> x.  block: unit, x[, key] -> y, then `saved`.  head: none
   * (its backward computes the loss).
   */
  forward?: Program;
  /**
   * embed: units, idx, dy[, key] -> one flat grad per unit.
   * block: unit, x, dy[, key], then `saved` -> dx, flat grad (an input the cut made
   * unnecessary, such as key when the masks are saved, is not taken).
   * head:  units, x, targets, seed[] -> loss, dx, one flat grad per unit (scaled by seed).
   */
  backward: Program;
  /** Block: the tensors its forward returns after y for its backward (none with full recompute). */
  saved?: SavedTensor[];
}

export interface SegmentedModel {
  units: Unit[];
  segments: Segment[];
  hasKey: boolean;
}

/** The names of a segment's outputs, in the order its programs return them (see Segment). */
export function segmentOutputs(s: Segment): { forward: string[]; backward: string[] } {
  const units = s.units.map((u) => u.name);
  const forward = s.kind === 'embed' ? ['x'] : ['y', ...(s.saved ?? []).map((t) => t.name)];
  const backward = s.kind === 'embed' ? units : s.kind === 'block' ? ['dx', ...units] : ['loss', 'dx', ...units];
  return { forward, backward };
}

/** The model's units as ranges of its flat layout; checks that they tile the buffer in order. */
export function modelUnits(model: LanguageModel, layout: FlatLayout): Unit[] {
  const named = model.units();
  const prefixes = [...named.embed, ...named.blocks, ...named.head.filter((h) => !named.embed.includes(h))];
  const units: Unit[] = [];
  let offset = 0;
  for (const name of prefixes) {
    const prefix = `${name}.`;
    const slots = layout.slots.filter((s) => s.name.startsWith(prefix));
    if (slots.length === 0) throw new Error(`segments: the model has no parameters under '${prefix}'`);
    const start = slots[0]!.offset;
    const size = slots.reduce((a, s) => a + s.size, 0);
    if (start !== offset || slots.some((s, i) => i > 0 && s.offset !== slots[i - 1]!.offset + slots[i - 1]!.size)) {
      throw new Error(`segments: parameters under '${prefix}' are not one contiguous range following the previous unit; the flat layout order changed`);
    }
    units.push({ name, offset: start, size });
    offset += size;
  }
  if (offset !== layout.size) throw new Error(`segments: units cover ${offset} of ${layout.size} parameters; some parameter belongs to no segment`);
  return units;
}

/** The slots of one unit (a contiguous range of the layout). */
function unitSlots(layout: FlatLayout, u: Unit): Slot[] {
  return layout.slots.filter((s) => s.offset >= u.offset && s.offset < u.offset + u.size);
}

/** Gradients w.r.t. each unit's views, concatenated back into one flat grad per unit. */
function flatGrads(views: Tensor[][], grads: Tensor[]): Tensor[] {
  let k = 0;
  return views.map((vs) => concat(vs.map(() => grads[k++]!.reshape([-1])), 0));
}

/** Traces `body` with the units bound to views of their flat inputs; inputs/outputs as body returns them. */
function segmentProgram(layout: FlatLayout, units: Unit[], body: (t: Tracer, flats: Tensor[], views: Tensor[][]) => { inputs: Tensor[]; outputs: Tensor[] }): Program {
  return buildProgram((t) => {
    const flats = units.map((u) => t.input(u.name, [u.size]));
    const slots = units.map((u) => unitSlots(layout, u));
    const unitOf = new Map(slots.flatMap((ss, k) => ss.map((s) => [s, k] as const)));
    return withParams(slots.flat(), (s) => flatView(flats[unitOf.get(s)!]!, s, units[unitOf.get(s)!]!.offset), (all) => {
      let k = 0;
      const views = slots.map((ss) => ss.map(() => all[k++]!));
      const r = body(t, flats, views);
      return { inputs: [...flats, ...r.inputs], outputs: r.outputs };
    });
  });
}

/** The residual stream between segments, [B, T, C]: with sequence parallelism (a tensor-
 * parallel shard whose sequence is split) this rank's [B, T/tp, C]. */
export function activationShape(model: LanguageModel, shape: StepShape): number[] {
  const tp = model.tp;
  const parts = tp?.sequence ? tp.axis.size : 1;
  if (shape.seq % parts !== 0) throw new Error(`sequence parallelism: sequence length ${shape.seq} does not divide by tensor-model-parallel size ${parts} (${shape.seq} % ${parts} = ${shape.seq % parts})`);
  return [shape.batch, shape.seq / parts, model.dims.nEmbd];
}

/** Traces the forward and backward programs of every segment for one micro-batch shape; a
 * block's forward keeps what `granularity` saves for its backward (remat.ts). */
export function modelSegments(model: LanguageModel, layout: FlatLayout, shape: StepShape, granularity: Granularity = 'full'): SegmentedModel {
  const units = modelUnits(model, layout);
  const named = model.units();
  const unit = (name: string) => units.find((u) => u.name === name)!;
  const hasKey = model.dims.dropout > 0;
  const { batch: B, seq: T } = shape;
  const act = activationShape(model, shape);
  const keyOf = (t: Tracer) => (hasKey ? t.input('key', [], 'int64') : undefined);
  const keyIn = (k: Tensor | undefined) => (k ? [k] : []);
  const segments: Segment[] = [];

  const embedUnits = named.embed.map(unit);
  segments.push({
    name: 'embed',
    kind: 'embed',
    units: embedUnits,
    forward: segmentProgram(layout, embedUnits, (t) => {
      const idx = t.input('idx', [B, T], 'int32');
      const key = keyOf(t);
      return { inputs: [idx, ...keyIn(key)], outputs: [model.embed(idx, key)] };
    }),
    backward: segmentProgram(layout, embedUnits, (t, _flats, views) => {
      const idx = t.input('idx', [B, T], 'int32');
      const dy = t.input('dy', act);
      const key = keyOf(t);
      const y = model.embed(idx, key);
      return { inputs: [idx, dy, ...keyIn(key)], outputs: flatGrads(views, gradients(y, views.flat(), dy)) };
    }),
  });

  model.blocks.forEach((block, i) => {
    const u = [unit(named.blocks[i]!)];
    // One trace of forward and backward, cut where `granularity` says what the forward keeps.
    const both = segmentProgram(layout, u, (t, _flats, views) => {
      const x = t.input('x', act);
      const dy = t.input('dy', act);
      const key = keyOf(t);
      const y = block.forward(x, key);
      const g = gradients(y, [x, ...views.flat()], dy);
      return { inputs: [x, dy, ...keyIn(key)], outputs: [y, g[0]!, ...flatGrads(views, g.slice(1))] };
    });
    const split = splitForwardBackward(both, 1, ['dy'], granularity, T);
    segments.push({ name: `block ${i}`, kind: 'block', units: u, forward: split.forward, backward: split.backward, saved: split.saved });
  });

  const headUnits = named.head.map(unit);
  segments.push({
    name: 'head',
    kind: 'head',
    units: headUnits,
    backward: segmentProgram(layout, headUnits, (t, _flats, views) => {
      const x = t.input('x', act);
      const targets = t.input('targets', [B, T], 'int32');
      const seed = t.input('seed', []);
      const loss = model.headLoss(x, targets);
      const g = gradients(loss, [x, ...views.flat()], seed);
      return { inputs: [x, targets, seed], outputs: [loss, g[0]!, ...flatGrads(views, g.slice(1))] };
    }),
  });
  return { units, segments, hasKey };
}
