// The reference interpreter: every primitive in plain TypeScript over float64, used by the
// tests (ORT vs reference, finite differences) and by constant folding. Integer and bool
// values are carried as float64 too (exact below 2^53).
import type { Node } from '../../ir/graph.js';
import { type DType, roundTo } from '../../ir/dtype.js';
import { numel, stridesOf } from '../../ir/shape.js';
import { broadcastOffsets, forEachIndex, flatIndex } from './indexing.js';
import { DROPOUT_INDEX_MULT, DROPOUT_MULT, dropoutSalt, dropoutThreshold } from '../onnx/lower.js';

export interface RefValue {
  dtype: DType;
  shape: number[];
  data: Float64Array;
}

const SQRT_2_PI = 2 / Math.sqrt(Math.PI);

/** erf to ~1e-15 relative via its Maclaurin series (small |x|) and continued fraction (large |x|). */
export function erf(x: number): number {
  const ax = Math.abs(x);
  if (ax < 2.5) {
    let term = x;
    let sum = x;
    const x2 = x * x;
    for (let n = 1; n < 200; n++) {
      term *= -x2 / n;
      const add = term / (2 * n + 1);
      sum += add;
      if (Math.abs(add) < 1e-17 * Math.abs(sum)) break;
    }
    return SQRT_2_PI * sum;
  }
  // erfc continued fraction (Lentz), accurate for |x| >= 2.5.
  let f = ax;
  let c = ax;
  let d = 0;
  for (let n = 1; n < 300; n++) {
    const an = n / 2;
    d = ax + an * d;
    d = d === 0 ? 1e-300 : 1 / d;
    c = ax + an / c;
    const delta = c * d;
    f *= delta;
    if (Math.abs(delta - 1) < 1e-16) break;
  }
  const erfc = Math.exp(-ax * ax) / (f * Math.sqrt(Math.PI));
  return Math.sign(x) * (1 - erfc);
}

const UNARY: Record<string, (x: number) => number> = {
  neg: (x) => -x,
  exp: Math.exp,
  log: Math.log,
  sqrt: Math.sqrt,
  rsqrt: (x) => 1 / Math.sqrt(x),
  tanh: Math.tanh,
  sigmoid: (x) => 1 / (1 + Math.exp(-x)),
  erf,
  relu: (x) => (x > 0 ? x : 0),
  abs: Math.abs,
  reciprocal: (x) => 1 / x,
};

const BINARY: Record<string, (a: number, b: number) => number> = {
  add: (a, b) => a + b,
  sub: (a, b) => a - b,
  mul: (a, b) => a * b,
  div: (a, b) => a / b,
  pow: (a, b) => Math.pow(a, b),
  maximum: Math.max,
  minimum: Math.min,
  equal: (a, b) => (a === b ? 1 : 0),
  less: (a, b) => (a < b ? 1 : 0),
  greater: (a, b) => (a > b ? 1 : 0),
  less_equal: (a, b) => (a <= b ? 1 : 0),
  greater_equal: (a, b) => (a >= b ? 1 : 0),
};

function value(n: Node, data: Float64Array): RefValue {
  return { dtype: n.dtype, shape: [...n.shape], data };
}


export function evaluateRef(n: Node, ins: RefValue[]): RefValue {
  const out = new Float64Array(numel(n.shape));
  const a = n.attrs;
  const un = UNARY[n.op];
  if (un) {
    const x = ins[0]!.data;
    for (let i = 0; i < out.length; i++) out[i] = un(x[i]!);
    return value(n, out);
  }
  const bin = BINARY[n.op];
  if (bin) {
    const [x, y] = ins;
    const ox = broadcastOffsets(x!.shape, n.shape);
    const oy = broadcastOffsets(y!.shape, n.shape);
    for (let i = 0; i < out.length; i++) {
      out[i] = bin(x!.data[ox[i]!]!, y!.data[oy[i]!]!);
    }
    return value(n, out);
  }
  switch (n.op) {
    case 'where': {
      const [c, x, y] = ins;
      const [oc, ox, oy] = [c!, x!, y!].map((t) => broadcastOffsets(t.shape, n.shape));
      for (let i = 0; i < out.length; i++) out[i] = c!.data[oc![i]!] ? x!.data[ox![i]!]! : y!.data[oy![i]!]!;
      return value(n, out);
    }
    case 'cast': {
      const to = a.to as DType;
      const x = ins[0]!.data;
      // float32 is kept at float64 precision: the reference models the maths, not the storage.
      for (let i = 0; i < out.length; i++) out[i] = to === 'float32' ? x[i]! : roundTo(to, x[i]!);
      return value(n, out);
    }
    case 'sum':
    case 'max': {
      const x = ins[0]!;
      const axes = a.axes as number[];
      const keptShape = x.shape.map((d, i) => (axes.includes(i) ? 1 : d));
      const ks = stridesOf(keptShape);
      out.fill(n.op === 'sum' ? 0 : -Infinity);
      forEachIndex(x.shape, (flat, idx) => {
        const o = flatIndex(idx.map((v, i) => (axes.includes(i) ? 0 : v)), ks);
        out[o] = n.op === 'sum' ? out[o]! + x.data[flat]! : Math.max(out[o]!, x.data[flat]!);
      });
      return value(n, out);
    }
    case 'softmax':
    case 'log_softmax':
    case 'layer_norm':
      return value(n, lastAxisKernel(n.op, ins[0]!, n.op === 'layer_norm' ? -1 : (a.axis as number), a.eps as number));
    case 'gelu': {
      const x = ins[0]!.data;
      const k = Math.sqrt(2 / Math.PI);
      for (let i = 0; i < out.length; i++) {
        const v = x[i]!;
        out[i] = a.approximate === 'tanh' ? 0.5 * v * (1 + Math.tanh(k * (v + 0.044715 * v * v * v))) : 0.5 * v * (1 + erf(v / Math.SQRT2));
      }
      return value(n, out);
    }
    case 'matmul':
      return value(n, matmul(ins[0]!, ins[1]!, [...n.shape]));
    case 'reshape':
      return value(n, Float64Array.from(ins[0]!.data));
    case 'permute': {
      const x = ins[0]!;
      const perm = a.perm as number[];
      const xs = stridesOf(x.shape);
      forEachIndex(n.shape, (flat, idx) => {
        let o = 0;
        for (let i = 0; i < perm.length; i++) o += idx[i]! * xs[perm[i]!]!;
        out[flat] = x.data[o]!;
      });
      return value(n, out);
    }
    case 'expand': {
      const x = ins[0]!;
      const ox = broadcastOffsets(x.shape, n.shape);
      for (let i = 0; i < out.length; i++) out[i] = x.data[ox[i]!]!;
      return value(n, out);
    }
    case 'slice': {
      const x = ins[0]!;
      const xs = stridesOf(x.shape);
      const starts = a.starts as number[];
      const steps = a.steps as number[];
      forEachIndex(n.shape, (flat, idx) => {
        out[flat] = x.data[flatIndex(idx.map((v, i) => starts[i]! + v * steps[i]!), xs)]!;
      });
      return value(n, out);
    }
    case 'unslice': {
      const g = ins[0]!;
      const os = stridesOf(n.shape);
      const starts = a.starts as number[];
      const steps = a.steps as number[];
      forEachIndex(g.shape, (flat, idx) => {
        out[flatIndex(idx.map((v, i) => starts[i]! + v * steps[i]!), os)] = g.data[flat]!;
      });
      return value(n, out);
    }
    case 'concat': {
      const axis = a.axis as number;
      const os = stridesOf(n.shape);
      let base = 0;
      for (const t of ins) {
        forEachIndex(t.shape, (flat, idx) => {
          const j = idx.slice();
          j[axis] = j[axis]! + base;
          out[flatIndex(j, os)] = t.data[flat]!;
        });
        base += t.shape[axis]!;
      }
      return value(n, out);
    }
    case 'gather0': {
      const [table, idx] = ins;
      const row = numel(table!.shape.slice(1));
      const rows = table!.shape[0]!;
      for (let i = 0; i < idx!.data.length; i++) {
        let r = idx!.data[i]!;
        if (r < 0) r += rows;
        if (r < 0 || r >= rows) throw new RangeError(`gather: index ${idx!.data[i]} out of range for ${rows} rows`);
        out.set(table!.data.subarray(r * row, (r + 1) * row), i * row);
      }
      return value(n, out);
    }
    case 'scatter_add0': {
      const [idx, upd] = ins;
      const row = numel(n.shape.slice(1));
      for (let i = 0; i < idx!.data.length; i++) {
        const r = idx!.data[i]!;
        for (let k = 0; k < row; k++) out[r * row + k] = out[r * row + k]! + upd!.data[i * row + k]!;
      }
      return value(n, out);
    }
    case 'dropout_mask': {
      // Low 32 bits: the key; the bits above: the tensor's first row in the global batch.
      const key = BigInt(ins[0]!.data[0]!);
      const row0 = Number(BigInt.asIntN(32, key / 2n ** 32n));
      const rowElems = n.shape.length > 0 && n.shape[0]! > 0 ? out.length / n.shape[0]! : 0;
      const base = Math.imul(row0, rowElems);
      let word = (Number(BigInt.asIntN(32, key)) + dropoutSalt(a.salt as number)) | 0;
      word = Math.imul((word ^ Math.trunc(word / 65536)) | 0, DROPOUT_MULT) | 0;
      const threshold = dropoutThreshold(a.p as number);
      const global = a.global as number[] | undefined;
      // A block of a larger tensor (attrs global, offset) draws the global elements' mask.
      const at = global ? globalIndex(n.shape, global, a.offset as number[], row0) : (i: number) => (i + base) | 0;
      for (let i = 0; i < out.length; i++) out[i] = dropoutHash(Math.imul(at(i), DROPOUT_INDEX_MULT) ^ word) >= threshold ? 1 : 0;
      return value(n, out);
    }
    case 'collective':
      // One process: only what a single rank computes alone is defined here. The other kinds
      // need the group's ranks; test/engine/collective-programs.test.ts runs them for real.
      if (a.kind === 'identity' || a.parts === 1) return value(n, Float64Array.from(ins[0]!.data));
      throw new Error(`reference interpreter: collective ${String(a.kind)} over '${String(a.group)}' (${String(a.parts)} ranks) needs the other ranks; run the program with NamedExecutable and a process group for '${String(a.group)}'`);
    default:
      throw new Error(`reference interpreter: no kernel for '${n.op}'`);
  }
}

/** Local element i of a block at `offset` of a `global` tensor -> its global index (int32, wrapping). */
function globalIndex(shape: readonly number[], global: number[], offset: number[], row0: number): (i: number) => number {
  const strides = global.map((_, d) => numel(global.slice(d + 1)));
  const base = Math.imul(row0, numel(global) / Math.max(1, global[0]!));
  return (i) => {
    let g = base;
    for (let d = shape.length - 1; d >= 0; d--) {
      const len = shape[d]!;
      g = (g + Math.imul((i % len) + offset[d]!, strides[d]!)) | 0;
      i = Math.floor(i / len);
    }
    return g;
  };
}

/** softmax, log_softmax or (affine-free) layer_norm along one axis, in float64. */
function lastAxisKernel(op: string, x: RefValue, axis: number, eps: number): Float64Array {
  const ax = axis < 0 ? axis + x.shape.length : axis;
  const len = x.shape[ax]!;
  const inner = numel(x.shape.slice(ax + 1));
  const outer = numel(x.shape.slice(0, ax));
  const out = new Float64Array(x.data.length);
  for (let o = 0; o < outer; o++) {
    for (let i = 0; i < inner; i++) {
      const at = (j: number) => o * len * inner + j * inner + i;
      if (op === 'layer_norm') {
        let mean = 0;
        for (let j = 0; j < len; j++) mean += x.data[at(j)]! / len;
        let v = 0;
        for (let j = 0; j < len; j++) v += (x.data[at(j)]! - mean) ** 2 / len;
        const inv = 1 / Math.sqrt(v + eps);
        for (let j = 0; j < len; j++) out[at(j)] = (x.data[at(j)]! - mean) * inv;
        continue;
      }
      let max = -Infinity;
      for (let j = 0; j < len; j++) max = Math.max(max, x.data[at(j)]!);
      let sum = 0;
      for (let j = 0; j < len; j++) sum += Math.exp(x.data[at(j)]! - max);
      for (let j = 0; j < len; j++) out[at(j)] = op === 'softmax' ? Math.exp(x.data[at(j)]! - max) / sum : x.data[at(j)]! - max - Math.log(sum);
    }
  }
  return out;
}

/** The same uint32 hash the ONNX lowering computes, of x = index * M1 ^ word. */
export function dropoutHash(x: number): number {
  const h = x >>> 0;
  return Math.imul(h ^ (h >>> 16), DROPOUT_MULT) >>> 0;
}

function matmul(x: RefValue, y: RefValue, outShape: number[]): Float64Array {
  const r = outShape.length;
  const m = outShape[r - 2]!;
  const nn = outShape[r - 1]!;
  const k = x.shape[x.shape.length - 1]!;
  const batch = outShape.slice(0, -2);
  const bx = broadcastOffsets(x.shape.slice(0, -2), batch);
  const by = broadcastOffsets(y.shape.slice(0, -2), batch);
  const out = new Float64Array(numel(outShape));
  for (let b = 0; b < numel(batch); b++) {
    const xo = bx[b]! * m * k;
    const yo = by[b]! * k * nn;
    const oo = b * m * nn;
    for (let i = 0; i < m; i++) {
      for (let j = 0; j < nn; j++) {
        let s = 0;
        for (let t = 0; t < k; t++) s += x.data[xo + i * k + t]! * y.data[yo + t * nn + j]!;
        out[oo + i * nn + j] = s;
      }
    }
  }
  return out;
}
