// Higher-level ops composed of primitives; their gradients come from the primitives' rules.
import type { DType } from '../ir/dtype.js';
import { hostValue } from '../ir/value.js';
import { normalizeAxis } from '../ir/shape.js';
import { shapeError } from '../ir/site.js';
import { Tensor, type TensorLike, constant, lift } from './tensor.js';

export function where(cond: Tensor, a: TensorLike, b: TensorLike): Tensor {
  const like = a instanceof Tensor ? a : b instanceof Tensor ? b : undefined;
  if (!like) shapeError('where', 'needs at least one tensor branch', [cond.shape]);
  return cond.op('where', [lift(a, like), lift(b, like)]);
}

export function concat(xs: readonly Tensor[], axis = 0): Tensor {
  if (xs.length === 0) throw new RangeError('concat: needs at least one tensor');
  if (xs.length === 1) return xs[0]!;
  const ax = normalizeAxis(axis, xs[0]!.rank, 'concat', xs[0]!.shape);
  return xs[0]!.op('concat', xs.slice(1), { axis: ax });
}

/** Splits along axis into pieces of the given sizes (or n equal pieces). */
export function split(x: Tensor, sizes: number | readonly number[], axis = -1): Tensor[] {
  const ax = normalizeAxis(axis, x.rank, 'split', x.shape);
  const dim = x.shape[ax]!;
  const parts = typeof sizes === 'number' ? Array<number>(sizes).fill(dim / sizes) : [...sizes];
  if (parts.some((p) => !Number.isInteger(p)) || parts.reduce((a, b) => a + b, 0) !== dim) {
    shapeError('split', `sizes [${parts.join(', ')}] do not add up to ${dim} on axis ${ax}`, [x.shape]);
  }
  let start = 0;
  return parts.map((p) => {
    const ranges: ([number, number] | null)[] = x.shape.map(() => null);
    ranges[ax] = [start, start + p];
    start += p;
    return x.slice(...ranges);
  });
}

/** Gathers along any axis: out[..., i, ...] = x[..., idx[i], ...]. */
export function gather(x: Tensor, indices: Tensor, axis = 0): Tensor {
  const ax = normalizeAxis(axis, x.rank, 'gather', x.shape);
  if (ax === 0) return x.take(indices);
  const perm = [ax, ...[...x.shape.keys()].filter((i) => i !== ax)];
  const moved = x.permute(perm).take(indices);
  // moved: [...idx.shape, rest...]; put the index dims back where axis was.
  const k = indices.rank;
  const rest = x.rank - 1;
  const back = [...Array(ax).keys()].map((i) => k + i).concat([...Array(k).keys()], [...Array(rest - ax).keys()].map((i) => k + ax + i));
  return moved.permute(back);
}

/** One-hot over the last axis; indices outside [0, depth) give an all-zero row. */
export function oneHot(indices: Tensor, depth: number, dtype: DType = 'float32'): Tensor {
  const range = constant(hostValue(indices.dtype, [depth], [...Array(depth).keys()]), indices.graph);
  return indices.reshape([...indices.shape, 1]).eq(range).cast(dtype);
}

/** Numerically stable softmax (one fused primitive; its VJP is y (g - sum(g y))). */
export function softmax(x: Tensor, axis = -1): Tensor {
  return x.op('softmax', [], { axis: normalizeAxis(axis, x.rank, 'softmax', x.shape) });
}

export function logSoftmax(x: Tensor, axis = -1): Tensor {
  return x.op('log_softmax', [], { axis: normalizeAxis(axis, x.rank, 'log_softmax', x.shape) });
}

/** Layer normalisation over the last axis, then the optional affine weight and bias. */
export function layerNorm(x: Tensor, weight?: Tensor, bias?: Tensor, eps = 1e-5): Tensor {
  let y = x.op('layer_norm', [], { eps });
  if (weight) y = y.mul(weight);
  if (bias) y = y.add(bias);
  return y;
}

/** Mean cross-entropy of logits [..., V] against integer targets [...]; targets equal to
 * ignoreIndex contribute nothing and are not counted. */
export function crossEntropy(logits: Tensor, targets: Tensor, ignoreIndex = -1): Tensor {
  const v = logits.shape[logits.rank - 1]!;
  if (targets.shape.length !== logits.rank - 1 || targets.shape.some((d, i) => d !== logits.shape[i])) {
    shapeError('cross_entropy', `targets must have the logits' shape without the last axis`, [logits.shape, targets.shape]);
  }
  const logp = logSoftmax(logits, -1);
  const picked = logp.mul(oneHot(targets, v, logits.dtype === 'bfloat16' ? 'float32' : logits.dtype).cast(logits.dtype)).sum(-1);
  const valid = targets.eq(lift(ignoreIndex, targets)).cast(logits.dtype).neg().add(1);
  const count = valid.sum().maximum(1);
  return picked.mul(valid).sum().neg().div(count);
}

/** Boolean [t, t] (or [tq, tk]) mask, true where attention is allowed (key <= query). */
export function causalMask(tq: number, tk = tq, graph = undefined as Tensor['graph'] | undefined): Tensor {
  const data: number[] = [];
  for (let i = 0; i < tq; i++) for (let j = 0; j < tk; j++) data.push(j <= i + (tk - tq) ? 1 : 0);
  return constant(hostValue('bool', [tq, tk], data), graph);
}

/** Float [tq, tk] additive mask: 0 where attention is allowed, -1e9 where it is not. Adding
 * it (instead of a where) costs one broadcast Add forward and nothing backward. */
export function causalBias(tq: number, tk = tq, graph = undefined as Tensor['graph'] | undefined, dtype: 'float32' | 'float64' = 'float32'): Tensor {
  // A typed array: a JS array of tq*tk numbers aborts the process at long contexts (16384^2).
  const data = dtype === 'float64' ? new Float64Array(tq * tk) : new Float32Array(tq * tk);
  for (let i = 0; i < tq; i++) data.fill(-1e9, i * tk + Math.max(0, i + (tk - tq) + 1), (i + 1) * tk);
  return constant(hostValue(dtype, [tq, tk], data), graph);
}

/** GELU, exact (erf) or with GPT-2's tanh approximation. */
export function gelu(x: Tensor, approximate: 'tanh' | 'none' = 'tanh'): Tensor {
  return x.op('gelu', [], { approximate });
}

/**
 * Inverted dropout whose mask is a counter-based hash of (key, element, salt): the same key
 * gives the same mask, so a step can be recomputed (activation checkpointing, resume).
 * key is an int64 scalar tensor (derived from seed and step by the caller); salt separates
 * the call sites that share a key.
 */
export function dropout(x: Tensor, p: number, key: Tensor, salt: number, block?: MaskBlock): Tensor {
  return p === 0 ? x : dropoutUnscaled(x, p, key, salt, block).mul(1 / (1 - p));
}

/**
 * Where x sits in the tensor one process would hold (its heads under tensor parallelism, its
 * sequence part under sequence parallelism): x is the block at `offset` of a `global` tensor
 * and draws that block of the global tensor's mask, so every layout drops the same elements.
 */
export interface MaskBlock {
  global: number[];
  offset: number[];
}

/**
 * x where the keep mask is set, else 0, without the 1/(1-p) rescaling, for callers that can
 * apply the scale to a smaller tensor downstream (attention scales att @ v, not the T x T att).
 * A Where on the bool mask, not a Mul by the mask cast to float: the backward (also a Where)
 * then keeps the 1-byte mask alive until it runs, not a 4-byte float copy of it (3 bytes per
 * element of every dropped tensor; measured as fast as the Cast and Mul it replaces).
 */
export function dropoutUnscaled(x: Tensor, p: number, key: Tensor, salt: number, block?: MaskBlock): Tensor {
  if (p === 0) return x;
  // A block equal to the whole tensor is the plain mask (and traces the plain graph).
  const whole = !block || block.global.every((g, i) => g === x.shape[i] && block.offset[i] === 0);
  const at: Record<string, number[]> = whole ? {} : { global: [...block!.global], offset: [...block!.offset] };
  return where(key.op('dropout_mask', [], { shape: [...x.shape], p, salt, ...at }), x, lift(0, x));
}
