// The graphs of a training step, traced once per model and batch shape:
// - fused: forward, backward, clipping and AdamW in one graph (one process, no accumulation);
// - microstep: forward and backward adding into a gradient accumulator;
// - update: clipping and AdamW on a flat gradient (after accumulation or all-reduce).
// Parameters are one flat float32 input; each parameter tensor is a view (slice) of it, and
// gradients are taken with respect to those views and concatenated back into one flat grad.
// Every program names its inputs (the names they are traced with) and its outputs (the keys
// of the record it returns), and is run by name (named-program.ts): no order lives in a comment.
import { withScope } from '../ir/graph.js';
import type { NamedProgram } from './named-program.js';
import type { Tensor } from '../tensor/tensor.js';
import { buildProgram, type Tracer } from '../tensor/program.js';
import { concat } from '../tensor/functional.js';
import { gradients } from '../autodiff/grad.js';
import { type FlatLayout, flatView, withParams } from '../nn/flat.js';
import type { LanguageModel } from '../models/model.js';
import { type AdamWConfig, ADAMW_SCALARS, adamwUpdate } from '../optim/adamw.js';
import { clipByGlobalNorm, globalNorm } from '../optim/clip.js';
import { recomputeAttentionInGraph } from '../ir/remat-in-graph.js';

export interface StepShape {
  batch: number;
  seq: number;
}

/** Loss and flat gradient of one micro-batch. */
function lossAndFlatGrad(model: LanguageModel, layout: FlatLayout, t: Tracer, shape: StepShape, withKey: boolean) {
  const params = t.input('params', [layout.size]);
  const idx = t.input('idx', [shape.batch, shape.seq], 'int32');
  const targets = t.input('targets', [shape.batch, shape.seq], 'int32');
  const key = withKey ? t.input('key', [], 'int64') : undefined;
  return withParams(layout.slots, (s) => flatView(params, s), (views) => {
    const loss = model.loss(idx, targets, key);
    const grads = gradients(loss, views);
    const flat = concat(grads.map((g) => g.reshape([-1])), 0);
    return { params, idx, targets, key, loss, flat };
  });
}

/** A step program; hasKey: it takes a dropout `key` input. */
export interface StepProgram extends NamedProgram {
  hasKey: boolean;
}

/** Traces a program that returns its outputs by name; the names' order is the record's. */
function named(build: (t: Tracer) => { inputs: Tensor[]; outputs: Record<string, Tensor> }): NamedProgram {
  let outputs: string[] = [];
  const program = buildProgram((t) => {
    const r = build(t);
    outputs = Object.keys(r.outputs);
    return { inputs: r.inputs, outputs: Object.values(r.outputs) };
  });
  return { program, outputs };
}

/** With 'selective', the attention core is recomputed in the backward of the same graph
 * (ir/remat-in-graph.ts): the B x nh x T x T tensors stop living from forward to backward. */
export type InGraphRecompute = 'none' | 'selective';

function withRecompute(p: NamedProgram, recompute: InGraphRecompute, seq: number): NamedProgram {
  return recompute === 'selective' ? { ...p, program: recomputeAttentionInGraph(p.program, p.outputs.indexOf('loss'), seq).program } : p;
}

/** params, m, v, decay_mask, idx, targets, scalars[, key] -> params, m, v, loss, grad_norm. */
export function fusedStepProgram(model: LanguageModel, layout: FlatLayout, shape: StepShape, opt: AdamWConfig, clip: number, recompute: InGraphRecompute = 'none'): StepProgram {
  const hasKey = model.dims.dropout > 0;
  const program = named((t) => {
    const r = lossAndFlatGrad(model, layout, t, shape, hasKey);
    const m = t.input('m', [layout.size]);
    const v = t.input('v', [layout.size]);
    const mask = t.input('decay_mask', [layout.size]);
    const scalars = t.input('scalars', [ADAMW_SCALARS]);
    // Named for the profiler's table (clipping and AdamW are their own row).
    const { norm, u } = withScope('optimizer', () => {
      const norm = globalNorm(r.flat);
      return { norm, u: adamwUpdate(r.params, clipByGlobalNorm(r.flat, clip, norm), m, v, mask, scalars, opt) };
    });
    const inputs = [r.params, m, v, mask, r.idx, r.targets, scalars, ...(r.key ? [r.key] : [])];
    return { inputs, outputs: { params: u.p, m: u.m, v: u.v, loss: r.loss, grad_norm: norm } };
  });
  return { ...withRecompute(program, recompute, shape.seq), hasKey };
}

/** params, grad_acc, idx, targets, scale[, key] -> grad_acc (+ scale * grad), loss. */
export function microstepProgram(model: LanguageModel, layout: FlatLayout, shape: StepShape, recompute: InGraphRecompute = 'none'): StepProgram {
  const hasKey = model.dims.dropout > 0;
  const program = named((t) => {
    const r = lossAndFlatGrad(model, layout, t, shape, hasKey);
    const acc = t.input('grad_acc', [layout.size]);
    const scale = t.input('scale', [1]);
    const inputs = [r.params, acc, r.idx, r.targets, scale, ...(r.key ? [r.key] : [])];
    return { inputs, outputs: { grad_acc: acc.add(r.flat.mul(scale)), loss: r.loss } };
  });
  return { ...withRecompute(program, recompute, shape.seq), hasKey };
}

/** params, grad, m, v, decay_mask, scalars[, norm_sq] -> params, m, v, grad_norm.
 * `size` may be a shard of the flat buffer (ZeRO); with externalNorm the global squared norm,
 * computed elsewhere (the sum over shards), is an extra input [1]. */
export function updateProgram(size: number, opt: AdamWConfig, clip: number, externalNorm = false): NamedProgram {
  return named((t) => {
    const p = t.input('params', [size]);
    const g = t.input('grad', [size]);
    const m = t.input('m', [size]);
    const v = t.input('v', [size]);
    const mask = t.input('decay_mask', [size]);
    const scalars = t.input('scalars', [ADAMW_SCALARS]);
    const normSq = externalNorm ? t.input('norm_sq', [1]) : undefined;
    const norm = normSq ? normSq.sqrt().reshape([]) : globalNorm(g);
    const u = adamwUpdate(p, clipByGlobalNorm(g, clip, norm), m, v, mask, scalars, opt);
    const inputs = [p, g, m, v, mask, scalars, ...(normSq ? [normSq] : [])];
    return { inputs, outputs: { params: u.p, m: u.m, v: u.v, grad_norm: norm } };
  });
}

/** params, idx, targets -> loss (evaluation, no dropout). */
export function evalProgram(model: LanguageModel, layout: FlatLayout, shape: StepShape): NamedProgram {
  return named((t) => {
    const params = t.input('params', [layout.size]);
    const idx = t.input('idx', [shape.batch, shape.seq], 'int32');
    const targets = t.input('targets', [shape.batch, shape.seq], 'int32');
    return withParams(layout.slots, (s) => flatView(params, s), () => ({ inputs: [params, idx, targets], outputs: { loss: model.loss(idx, targets) } }));
  });
}
