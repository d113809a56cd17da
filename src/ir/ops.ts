// The primitive ops of the IR and their shape/dtype inference, run when an op is recorded so
// that a mismatch is reported at the user's call site, not at compile time. Every primitive
// here has a VJP rule (autodiff/vjp.ts), an ONNX lowering (runtime/onnx/lower.ts) and a
// float64 reference kernel (runtime/reference/); the test suite checks all three agree.
import { type DType, isFloat, DTYPES } from './dtype.js';
import { broadcastShapes, numel, shapeStr } from './shape.js';
import { shapeError } from './site.js';

export type AttrValue = number | string | boolean | number[];
export type Attrs = Record<string, AttrValue>;

export interface TypeInfo {
  shape: number[];
  dtype: DType;
}

type Infer = (ins: TypeInfo[], attrs: Attrs) => TypeInfo;

export const UNARY_OPS = ['neg', 'exp', 'log', 'sqrt', 'rsqrt', 'tanh', 'sigmoid', 'erf', 'relu', 'abs', 'reciprocal'] as const;
export const BINARY_OPS = ['add', 'sub', 'mul', 'div', 'pow', 'maximum', 'minimum'] as const;
export const COMPARE_OPS = ['equal', 'less', 'greater', 'less_equal', 'greater_equal'] as const;

const FLOAT_ONLY = new Set<string>(['exp', 'log', 'sqrt', 'rsqrt', 'tanh', 'sigmoid', 'erf', 'reciprocal', 'pow', 'div']);

function shapes(ins: TypeInfo[]): number[][] {
  return ins.map((i) => i.shape);
}

function unary(op: string): Infer {
  return ([x]) => {
    if (FLOAT_ONLY.has(op) && !isFloat(x!.dtype)) {
      shapeError(op, `needs a floating-point input, got ${x!.dtype}; cast it first with .cast('float32')`, [x!.shape]);
    }
    if (x!.dtype === 'bool') shapeError(op, 'does not take bool inputs; cast first', [x!.shape]);
    return { shape: [...x!.shape], dtype: x!.dtype };
  };
}

function broadcastAll(op: string, ins: TypeInfo[]): number[] {
  let out: number[] = [...ins[0]!.shape];
  for (const t of ins.slice(1)) {
    const b = broadcastShapes(out, t.shape);
    if (!b) shapeError(op, 'shapes do not broadcast', shapes(ins));
    out = b;
  }
  return out;
}

function binary(op: string, result?: DType): Infer {
  return (ins) => {
    const [a, b] = ins;
    if (a!.dtype !== b!.dtype) {
      shapeError(op, `dtypes ${a!.dtype} and ${b!.dtype} differ; cast one of them with .cast()`, shapes(ins));
    }
    if (FLOAT_ONLY.has(op) && !isFloat(a!.dtype)) shapeError(op, `needs floating-point inputs, got ${a!.dtype}`, shapes(ins));
    return { shape: broadcastAll(op, ins), dtype: result ?? a!.dtype };
  };
}

function reduce(op: string): Infer {
  return ([x], attrs) => {
    const axes = attrs.axes as number[];
    const keep = attrs.keepdims as boolean;
    for (const a of axes) if (a < 0 || a >= x!.shape.length) shapeError(op, `axis ${a} out of range`, [x!.shape]);
    if (op === 'max') for (const a of axes) if (x!.shape[a] === 0) shapeError(op, `cannot take the max of an empty axis ${a}`, [x!.shape]);
    const shape = x!.shape.flatMap((d, i) => (axes.includes(i) ? (keep ? [1] : []) : [d]));
    return { shape, dtype: x!.dtype };
  };
}

function floatSameShape(op: string, [x]: TypeInfo[]): TypeInfo {
  if (!isFloat(x!.dtype)) shapeError(op, `needs a floating-point input, got ${x!.dtype}`, [x!.shape]);
  if (x!.shape.length === 0) shapeError(op, 'needs at least one axis', [x!.shape]);
  return { shape: [...x!.shape], dtype: x!.dtype };
}

function checkPerm(perm: number[], rank: number): boolean {
  return perm.length === rank && [...perm].sort((a, b) => a - b).every((p, i) => p === i);
}

/**
 * What a collective node does over its group, forward (`kind`) and for its gradient (`bwd`):
 * - identity: nothing (Megatron's f forward; its gradient is all_reduce_sum);
 * - all_reduce_sum / all_reduce_max: every rank gets the elementwise sum / max;
 * - all_gather: the ranks' tensors concatenated along `dim`, in group-rank order;
 * - reduce_scatter: the sum, split along `dim`, rank r keeping part r.
 * The VJP of a node is the node with kind and bwd swapped: the conjugate pairs of Megatron-LM
 * (copy/reduce for tensor parallelism, all-gather/reduce-scatter for sequence parallelism),
 * which assume the loss downstream is replicated over the group.
 */
export const COLLECTIVE_KINDS = ['identity', 'all_reduce_sum', 'all_reduce_max', 'all_gather', 'reduce_scatter'] as const;
export type CollectiveKind = (typeof COLLECTIVE_KINDS)[number];

export const OPS: Record<string, Infer> = {
  input: (_ins, attrs) => ({ shape: attrs.shape as number[], dtype: attrs.dtype as DType }),
  const: (_ins, attrs) => ({ shape: attrs.shape as number[], dtype: attrs.dtype as DType }),
  ...Object.fromEntries(UNARY_OPS.map((op) => [op, unary(op)])),
  ...Object.fromEntries(BINARY_OPS.map((op) => [op, binary(op)])),
  ...Object.fromEntries(COMPARE_OPS.map((op) => [op, binary(op, 'bool')])),
  where: (ins) => {
    const [c, a, b] = ins;
    if (c!.dtype !== 'bool') shapeError('where', `condition must be bool, got ${c!.dtype}`, shapes(ins));
    if (a!.dtype !== b!.dtype) shapeError('where', `branch dtypes ${a!.dtype} and ${b!.dtype} differ`, shapes(ins));
    return { shape: broadcastAll('where', ins), dtype: a!.dtype };
  },
  cast: ([x], attrs) => {
    const to = attrs.to as DType;
    if (!DTYPES.includes(to)) shapeError('cast', `unknown dtype '${String(to)}'; valid: ${DTYPES.join(', ')}`, [x!.shape]);
    return { shape: [...x!.shape], dtype: to };
  },
  // Fused ops with their own VJP rules: one ONNX kernel forward instead of a chain of
  // elementwise ones (softmax and log_softmax over `axis`, layer_norm over the last axis
  // without affine, gelu exact or tanh).
  softmax: (ins) => floatSameShape('softmax', ins),
  log_softmax: (ins) => floatSameShape('log_softmax', ins),
  layer_norm: (ins) => floatSameShape('layer_norm', ins),
  gelu: (ins) => floatSameShape('gelu', ins),
  sum: reduce('sum'),
  max: reduce('max'),
  matmul: (ins) => {
    const [a, b] = ins;
    if (a!.dtype !== b!.dtype) shapeError('matmul', `dtypes ${a!.dtype} and ${b!.dtype} differ`, shapes(ins));
    if (a!.shape.length < 2 || b!.shape.length < 2) shapeError('matmul', 'the primitive needs rank >= 2 on both sides', shapes(ins));
    const m = a!.shape[a!.shape.length - 2]!;
    const k = a!.shape[a!.shape.length - 1]!;
    const k2 = b!.shape[b!.shape.length - 2]!;
    const n = b!.shape[b!.shape.length - 1]!;
    if (k !== k2) shapeError('matmul', `inner dimensions differ (${k} vs ${k2})`, shapes(ins));
    const batch = broadcastShapes(a!.shape.slice(0, -2), b!.shape.slice(0, -2));
    if (!batch) shapeError('matmul', 'batch dimensions do not broadcast', shapes(ins));
    return { shape: [...batch, m, n], dtype: a!.dtype };
  },
  reshape: ([x], attrs) => {
    const shape = attrs.shape as number[];
    if (numel(shape) !== numel(x!.shape)) {
      shapeError('reshape', `cannot reshape ${numel(x!.shape)} elements into ${shapeStr(shape)} (${numel(shape)} elements)`, [x!.shape]);
    }
    return { shape: [...shape], dtype: x!.dtype };
  },
  permute: ([x], attrs) => {
    const perm = attrs.perm as number[];
    if (!checkPerm(perm, x!.shape.length)) shapeError('permute', `[${perm.join(', ')}] is not a permutation of the ${x!.shape.length} axes`, [x!.shape]);
    return { shape: perm.map((p) => x!.shape[p]!), dtype: x!.dtype };
  },
  expand: ([x], attrs) => {
    const shape = attrs.shape as number[];
    const b = broadcastShapes(x!.shape, shape);
    if (!b || b.length !== shape.length || b.some((d, i) => d !== shape[i])) {
      shapeError('expand', `cannot expand to ${shapeStr(shape)}`, [x!.shape]);
    }
    return { shape: [...shape], dtype: x!.dtype };
  },
  slice: ([x], attrs) => {
    const starts = attrs.starts as number[];
    const ends = attrs.ends as number[];
    const steps = attrs.steps as number[];
    const shape = x!.shape.map((d, i) => {
      const s = starts[i]!;
      const e = ends[i]!;
      const st = steps[i]!;
      if (st === 0) shapeError('slice', `step 0 on axis ${i}`, [x!.shape]);
      if (st > 0 && (s < 0 || e > d)) shapeError('slice', `range ${s}:${e} out of bounds on axis ${i} of size ${d}`, [x!.shape]);
      if (st < 0 && (s >= d || e < -1)) shapeError('slice', `range ${s}:${e}:${st} out of bounds on axis ${i} of size ${d}`, [x!.shape]);
      return Math.max(0, Math.ceil((e - s) / st));
    });
    return { shape, dtype: x!.dtype };
  },
  unslice: ([g], attrs) => ({ shape: [...(attrs.shape as number[])], dtype: g!.dtype }),
  concat: (ins, attrs) => {
    const axis = attrs.axis as number;
    const first = ins[0]!;
    let total = 0;
    for (const t of ins) {
      if (t.dtype !== first.dtype) shapeError('concat', `dtypes ${first.dtype} and ${t.dtype} differ`, shapes(ins));
      if (t.shape.length !== first.shape.length || t.shape.some((d, i) => i !== axis && d !== first.shape[i])) {
        shapeError('concat', `all inputs must match except on axis ${axis}`, shapes(ins));
      }
      total += t.shape[axis]!;
    }
    const shape = [...first.shape];
    shape[axis] = total;
    return { shape, dtype: first.dtype };
  },
  gather0: (ins) => {
    const [table, idx] = ins;
    if (idx!.dtype !== 'int32' && idx!.dtype !== 'int64') shapeError('gather', `indices must be int32 or int64, got ${idx!.dtype}`, shapes(ins));
    if (table!.shape.length < 1) shapeError('gather', 'cannot index a scalar', shapes(ins));
    return { shape: [...idx!.shape, ...table!.shape.slice(1)], dtype: table!.dtype };
  },
  scatter_add0: (ins, attrs) => {
    const [idx, upd] = ins;
    const rows = attrs.rows as number;
    return { shape: [rows, ...upd!.shape.slice(idx!.shape.length)], dtype: upd!.dtype };
  },
  // A collective over a named process-group axis of the mesh ('tp'), recorded in the graph so
  // that autodiff sees it; the engine cuts a program at these nodes and runs the communication
  // between its ONNX parts (see COLLECTIVE_KINDS).
  collective: ([x], attrs) => {
    const kind = attrs.kind as string;
    const bwd = attrs.bwd as string;
    const parts = attrs.parts as number;
    if (!COLLECTIVE_KINDS.includes(kind as CollectiveKind)) shapeError('collective', `unknown kind '${kind}'; valid: ${COLLECTIVE_KINDS.join(', ')}`, [x!.shape]);
    if (bwd !== 'none' && !COLLECTIVE_KINDS.includes(bwd as CollectiveKind)) shapeError('collective', `unknown backward kind '${bwd}'`, [x!.shape]);
    if (!Number.isInteger(parts) || parts < 1) shapeError('collective', `parts must be a positive integer, got ${parts}`, [x!.shape]);
    if (typeof attrs.group !== 'string' || attrs.group === '') shapeError('collective', 'needs the name of a process-group axis (attrs.group)', [x!.shape]);
    if (!isFloat(x!.dtype)) shapeError('collective', `needs a floating-point input, got ${x!.dtype}`, [x!.shape]);
    const shape = [...x!.shape];
    if (kind === 'all_gather' || kind === 'reduce_scatter') {
      const dim = attrs.dim as number;
      if (!Number.isInteger(dim) || dim < 0 || dim >= shape.length) shapeError('collective', `${kind}: dim ${dim} out of range`, [x!.shape]);
      if (kind === 'all_gather') shape[dim] = shape[dim]! * parts;
      else {
        if (shape[dim]! % parts !== 0) shapeError('collective', `reduce_scatter: dim ${dim} of size ${shape[dim]} does not divide into ${parts} parts (${shape[dim]} % ${parts} = ${shape[dim]! % parts})`, [x!.shape]);
        shape[dim] = shape[dim]! / parts;
      }
    }
    return { shape, dtype: x!.dtype };
  },
  dropout_mask: ([key], attrs) => {
    if (key!.dtype !== 'int64' || key!.shape.length !== 0) shapeError('dropout', 'the key must be an int64 scalar', [key!.shape]);
    const p = attrs.p as number;
    if (!(p >= 0 && p < 1)) shapeError('dropout', `probability must be in [0, 1), got ${p}`, [key!.shape]);
    const shape = attrs.shape as number[];
    // Optional: this tensor is the block at `offset` of a larger `global` tensor (local heads
    // under tensor parallelism, a sequence part under sequence parallelism), and draws that
    // block of the global tensor's mask.
    if (attrs.global !== undefined || attrs.offset !== undefined) {
      const g = attrs.global as number[] | undefined;
      const o = attrs.offset as number[] | undefined;
      if (!Array.isArray(g) || !Array.isArray(o) || g.length !== shape.length || o.length !== shape.length) shapeError('dropout', `global shape [${String(g)}] and offset [${String(o)}] must both be given, one entry per axis of the shape [${shape.join(', ')}]`, [key!.shape]);
      shape.forEach((d, i) => {
        if (!Number.isInteger(o[i]) || o[i]! < 0 || o[i]! + d > g[i]!) shapeError('dropout', `axis ${i}: the block [${o[i]}, ${o[i]! + d}) does not lie inside the global size ${g[i]}`, [key!.shape]);
      });
    }
    return { shape: [...shape], dtype: 'bool' };
  },
};

