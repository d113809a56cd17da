// The graphs of a training step, traced once per model and batch shape:
// - fused: forward, backward, clipping and AdamW in one graph (one process, no accumulation);
// - microstep: forward and backward adding into a gradient accumulator;
// - update: clipping and AdamW on a flat gradient (after accumulation or all-reduce).
// Parameters are one flat float32 input; each parameter tensor is a view (slice) of it, and
// gradients are taken with respect to those views and concatenated back into one flat grad.
import type { Program } from '../ir/graph.js';
import { buildProgram, type Tracer } from '../tensor/program.js';
import { concat } from '../tensor/functional.js';
import { gradients } from '../autodiff/grad.js';
import { type FlatLayout, flatView, withParams } from '../nn/flat.js';
import type { LanguageModel } from '../models/model.js';
import { type AdamWConfig, ADAMW_SCALARS, adamwUpdate } from '../optim/adamw.js';
import { clipByGlobalNorm, globalNorm } from '../optim/clip.js';

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

/** Inputs: params, m, v, decayMask, idx, targets, scalars[, key].
 *  Outputs: params', m', v', loss, gradNorm. */
export interface FusedStep {
  program: Program;
  hasKey: boolean;
}

export function fusedStepProgram(model: LanguageModel, layout: FlatLayout, shape: StepShape, opt: AdamWConfig, clip: number): FusedStep {
  const hasKey = model.dims.dropout > 0;
  const program = buildProgram((t) => {
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
  return { program, hasKey };
}

/** Inputs: params, gradAcc, idx, targets, scale[, key]. Outputs: gradAcc + scale * grad, loss. */
export function microstepProgram(model: LanguageModel, layout: FlatLayout, shape: StepShape): { program: Program; hasKey: boolean } {
  const hasKey = model.dims.dropout > 0;
  const program = buildProgram((t) => {
    const r = lossAndFlatGrad(model, layout, t, shape, hasKey);
    const acc = t.input('grad_acc', [layout.size]);
    const scale = t.input('scale', [1]);
    const inputs = [r.params, acc, r.idx, r.targets, scale, ...(r.key ? [r.key] : [])];
    return { inputs, outputs: [acc.add(r.flat.mul(scale)), r.loss] };
  });
  return { program, hasKey };
}

/** Inputs: params, grad, m, v, decayMask, scalars[, normSq]. Outputs: params', m', v', gradNorm.
 * `size` may be a shard of the flat buffer (ZeRO); with externalNorm the global squared norm,
 * computed elsewhere (the sum over shards), is an extra input [1]. */
export function updateProgram(size: number, opt: AdamWConfig, clip: number, externalNorm = false): Program {
  const program = buildProgram((t) => {
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
  return program;
}

/** Inputs: params, idx, targets. Output: loss (evaluation, no dropout). */
export function evalProgram(model: LanguageModel, layout: FlatLayout, shape: StepShape): Program {
  const program = buildProgram((t) => {
    const params = t.input('params', [layout.size]);
    const idx = t.input('idx', [shape.batch, shape.seq], 'int32');
    const targets = t.input('targets', [shape.batch, shape.seq], 'int32');
    return withParams(layout.slots, (s) => flatView(params, s), () => ({ inputs: [params, idx, targets], outputs: [model.loss(idx, targets)] }));
  });
  return program;
}
