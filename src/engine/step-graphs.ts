// The graphs of a training step, traced once per model and batch shape:
// - fused: forward, backward, clipping and AdamW in one graph (one process, no accumulation);
// - microstep: forward and backward adding into a gradient accumulator;
// - update: clipping and AdamW on a flat gradient (after accumulation or all-reduce).
// Parameters are one flat float32 input; each parameter tensor is a view (slice) of it, and
// gradients are taken with respect to those views and concatenated back into one flat grad.
import { Graph, type Program } from '../ir/graph.js';
import { Tensor } from '../tensor/tensor.js';
import { withGraph } from '../tensor/trace.js';
import { concat } from '../tensor/functional.js';
import { gradients } from '../autodiff/grad.js';
import type { FlatLayout } from '../nn/flat.js';
import type { GPT } from '../models/gpt.js';
import { type AdamWConfig, ADAMW_SCALARS, adamwUpdate } from '../optim/adamw.js';
import { clipByGlobalNorm, globalNorm } from '../optim/clip.js';

export interface StepShape {
  batch: number;
  seq: number;
}

interface Traced {
  g: Graph;
  input(name: string, shape: number[], dtype?: 'float32' | 'int32' | 'int64'): Tensor;
}

function traced<T>(fn: (t: Traced) => T): { graph: Graph; result: T } {
  const g = new Graph();
  const result = withGraph(g, () => fn({ g, input: (name, shape, dtype = 'float32') => new Tensor(g, g.input(name, shape, dtype)) }));
  return { graph: g, result };
}

/** Binds every parameter of the model to a view of the flat params tensor; returns the views. */
function bindViews(model: GPT, layout: FlatLayout, params: Tensor): Tensor[] {
  return layout.slots.map((s) => {
    const view = params.slice([s.offset, s.offset + s.size]).reshape(s.shape);
    s.param.bind(view);
    return view;
  });
}

function unbind(layout: FlatLayout): void {
  for (const s of layout.slots) s.param.bind(undefined);
}

/** Loss and flat gradient of one micro-batch. */
function lossAndFlatGrad(model: GPT, layout: FlatLayout, t: Traced, shape: StepShape, withKey: boolean) {
  const params = t.input('params', [layout.size]);
  const idx = t.input('idx', [shape.batch, shape.seq], 'int32');
  const targets = t.input('targets', [shape.batch, shape.seq], 'int32');
  const key = withKey ? t.input('key', [], 'int64') : undefined;
  const views = bindViews(model, layout, params);
  try {
    const loss = model.loss(idx, targets, key);
    const grads = gradients(loss, views);
    const flat = concat(grads.map((g) => g.reshape([-1])), 0);
    return { params, idx, targets, key, loss, flat };
  } finally {
    unbind(layout);
  }
}

export interface FusedStep {
  program: Program;
  /** Input order: params, m, v, decayMask, idx, targets, scalars[, key]. */
  /** Output order: params', m', v', loss, gradNorm. */
  hasKey: boolean;
}

export function fusedStepProgram(model: GPT, layout: FlatLayout, shape: StepShape, opt: AdamWConfig, clip: number): FusedStep {
  const hasKey = model.config.dropout > 0;
  const { graph, result } = traced((t) => {
    const r = lossAndFlatGrad(model, layout, t, shape, hasKey);
    const m = t.input('m', [layout.size]);
    const v = t.input('v', [layout.size]);
    const mask = t.input('decay_mask', [layout.size]);
    const scalars = t.input('scalars', [ADAMW_SCALARS]);
    const norm = globalNorm(r.flat);
    const g = clipByGlobalNorm(r.flat, clip, norm);
    const u = adamwUpdate(r.params, g, m, v, mask, scalars, opt);
    const inputs = [r.params, m, v, mask, r.idx, r.targets, scalars, ...(r.key ? [r.key] : [])];
    return { inputs, outputs: [u.p, u.m, u.v, r.loss, norm] };
  });
  return { program: { graph, inputs: result.inputs.map((x) => x.id), outputs: result.outputs.map((x) => x.id) }, hasKey };
}

/** Inputs: params, gradAcc, idx, targets, scale[, key]. Outputs: gradAcc + scale * grad, loss. */
export function microstepProgram(model: GPT, layout: FlatLayout, shape: StepShape): { program: Program; hasKey: boolean } {
  const hasKey = model.config.dropout > 0;
  const { graph, result } = traced((t) => {
    const r = lossAndFlatGrad(model, layout, t, shape, hasKey);
    const acc = t.input('grad_acc', [layout.size]);
    const scale = t.input('scale', [1]);
    const inputs = [r.params, acc, r.idx, r.targets, scale, ...(r.key ? [r.key] : [])];
    return { inputs, outputs: [acc.add(r.flat.mul(scale)), r.loss] };
  });
  return { program: { graph, inputs: result.inputs.map((x) => x.id), outputs: result.outputs.map((x) => x.id) }, hasKey };
}

/** Inputs: params, grad, m, v, decayMask, scalars. Outputs: params', m', v', gradNorm.
 * `size` may be a shard of the flat buffer (ZeRO); normSq, when given, is the global squared
 * norm computed elsewhere (the shards' sum), fed as an input [1]. */
export function updateProgram(size: number, opt: AdamWConfig, clip: number, externalNorm = false): Program {
  const { graph, result } = traced((t) => {
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
    return { inputs, outputs: [u.p, u.m, u.v, norm] };
  });
  return { graph, inputs: result.inputs.map((x) => x.id), outputs: result.outputs.map((x) => x.id) };
}

/** Inputs: params, idx, targets. Output: loss (evaluation, no dropout). */
export function evalProgram(model: GPT, layout: FlatLayout, shape: StepShape): Program {
  const { graph, result } = traced((t) => {
    const params = t.input('params', [layout.size]);
    const idx = t.input('idx', [shape.batch, shape.seq], 'int32');
    const targets = t.input('targets', [shape.batch, shape.seq], 'int32');
    bindViews(model, layout, params);
    try {
      return { inputs: [params, idx, targets], outputs: [model.loss(idx, targets)] };
    } finally {
      unbind(layout);
    }
  });
  return { graph, inputs: result.inputs.map((x) => x.id), outputs: result.outputs.map((x) => x.id) };
}
