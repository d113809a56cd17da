// Tensor: a handle to one node of a graph. Methods record primitives (shape-checked at the
// call site); nothing is computed until a graph is compiled and run (jit, grad, realize).
import { Graph } from '../ir/graph.js';
import { type DType, checkDType } from '../ir/dtype.js';
import { type HostValue, hostValue } from '../ir/value.js';
import { numel, normalizeAxis, shapeStr } from '../ir/shape.js';
import { shapeError } from '../ir/site.js';
import type { Attrs } from '../ir/ops.js';
import { activeGraph, defaultFloat } from './trace.js';

export type TensorLike = Tensor | number;

export class Tensor {
  constructor(
    readonly graph: Graph,
    readonly id: number,
  ) {}

  get shape(): readonly number[] {
    return this.graph.node(this.id).shape;
  }
  get dtype(): DType {
    return this.graph.node(this.id).dtype;
  }
  get rank(): number {
    return this.shape.length;
  }
  get size(): number {
    return numel(this.shape);
  }
  toString(): string {
    return `Tensor(${this.dtype}${shapeStr(this.shape)})`;
  }

  /** Records a primitive whose first input is this tensor. */
  op(op: string, others: TensorLike[] = [], attrs: Attrs = {}): Tensor {
    const ins = [this.id, ...others.map((o) => lift(o, this).id)];
    return new Tensor(this.graph, this.graph.add(op, ins, attrs));
  }

  // elementwise
  neg(): Tensor { return this.op('neg'); }
  exp(): Tensor { return this.op('exp'); }
  log(): Tensor { return this.op('log'); }
  sqrt(): Tensor { return this.op('sqrt'); }
  rsqrt(): Tensor { return this.op('rsqrt'); }
  tanh(): Tensor { return this.op('tanh'); }
  sigmoid(): Tensor { return this.op('sigmoid'); }
  erf(): Tensor { return this.op('erf'); }
  relu(): Tensor { return this.op('relu'); }
  abs(): Tensor { return this.op('abs'); }
  reciprocal(): Tensor { return this.op('reciprocal'); }
  square(): Tensor { return this.mul(this); }
  add(o: TensorLike): Tensor { return this.op('add', [o]); }
  sub(o: TensorLike): Tensor { return this.op('sub', [o]); }
  mul(o: TensorLike): Tensor { return this.op('mul', [o]); }
  div(o: TensorLike): Tensor { return this.op('div', [o]); }
  pow(o: TensorLike): Tensor { return this.op('pow', [o]); }
  maximum(o: TensorLike): Tensor { return this.op('maximum', [o]); }
  minimum(o: TensorLike): Tensor { return this.op('minimum', [o]); }
  eq(o: TensorLike): Tensor { return this.op('equal', [o]); }
  lt(o: TensorLike): Tensor { return this.op('less', [o]); }
  gt(o: TensorLike): Tensor { return this.op('greater', [o]); }
  le(o: TensorLike): Tensor { return this.op('less_equal', [o]); }
  ge(o: TensorLike): Tensor { return this.op('greater_equal', [o]); }
  cast(dtype: DType): Tensor {
    checkDType(dtype);
    return dtype === this.dtype ? this : this.op('cast', [], { to: dtype });
  }

  // reductions (axis undefined = all axes)
  sum(axis?: number | number[], keepdims = false): Tensor {
    return this.op('sum', [], { axes: axesOf(axis, this, 'sum'), keepdims });
  }
  max(axis?: number | number[], keepdims = false): Tensor {
    return this.op('max', [], { axes: axesOf(axis, this, 'max'), keepdims });
  }
  mean(axis?: number | number[], keepdims = false): Tensor {
    const axes = axesOf(axis, this, 'mean');
    const count = axes.reduce((n, a) => n * this.shape[a]!, 1);
    return this.sum(axes, keepdims).mul(1 / count);
  }
  /** log(sum(exp(x))) computed stably as m + log(sum(exp(x - m))). */
  logsumexp(axis: number | number[] = -1, keepdims = false): Tensor {
    const axes = axesOf(axis, this, 'logsumexp');
    const m = this.max(axes, true).stopGradient();
    const r = this.sub(m).exp().sum(axes, true).log().add(m);
    return keepdims ? r : r.reshape(this.shape.filter((_, i) => !axes.includes(i)));
  }

  // movement
  reshape(shape: readonly number[]): Tensor {
    const s = inferReshape(shape, this);
    return s.every((d, i) => d === this.shape[i]) && s.length === this.rank ? this : this.op('reshape', [], { shape: s });
  }
  permute(perm: readonly number[]): Tensor {
    const p = perm.map((a) => normalizeAxis(a, this.rank, 'permute', this.shape));
    return p.every((a, i) => a === i) ? this : this.op('permute', [], { perm: p });
  }
  transpose(a = -2, b = -1): Tensor {
    const perm = [...this.shape.keys()];
    const i = normalizeAxis(a, this.rank, 'transpose', this.shape);
    const j = normalizeAxis(b, this.rank, 'transpose', this.shape);
    [perm[i], perm[j]] = [perm[j]!, perm[i]!];
    return this.permute(perm);
  }
  get T(): Tensor {
    return this.permute([...this.shape.keys()].reverse());
  }
  expand(shape: readonly number[]): Tensor {
    return shape.length === this.rank && shape.every((d, i) => d === this.shape[i]) ? this : this.op('expand', [], { shape: [...shape] });
  }
  /** Python-style slicing per axis: [start, end, step] with negatives counted from the end; omitted axes keep everything. */
  slice(...ranges: ([number?, number?, number?] | null)[]): Tensor {
    if (ranges.length > this.rank) shapeError('slice', `${ranges.length} ranges given for a tensor of rank ${this.rank}`, [this.shape]);
    for (const r of ranges) {
      if (r && r.some((v) => v !== undefined && !Number.isInteger(v))) shapeError('slice', `range [${r.join(', ')}] must hold integers`, [this.shape]);
    }
    const starts: number[] = [];
    const ends: number[] = [];
    const steps: number[] = [];
    this.shape.forEach((d, i) => {
      const [s0, e0, st = 1] = ranges[i] ?? [];
      if (st === 0) shapeError('slice', `step 0 on axis ${i}`, [this.shape]);
      const clamp = (v: number, lo: number, hi: number) => Math.min(Math.max(v, lo), hi);
      const norm = (v: number) => (v < 0 ? v + d : v);
      if (st > 0) {
        starts.push(clamp(s0 === undefined ? 0 : norm(s0), 0, d));
        ends.push(clamp(e0 === undefined ? d : norm(e0), 0, d));
      } else {
        starts.push(clamp(s0 === undefined ? d - 1 : norm(s0), -1, d - 1));
        ends.push(clamp(e0 === undefined ? -1 : norm(e0), -1, d - 1));
      }
      steps.push(st);
    });
    // An empty range is recorded as 0:0:1, which every backend reads the same way.
    this.shape.forEach((_, i) => {
      if (Math.ceil((ends[i]! - starts[i]!) / steps[i]!) <= 0) [starts[i], ends[i], steps[i]] = [0, 0, 1];
    });
    const identity = steps.every((s, i) => s === 1 && starts[i] === 0 && ends[i] === this.shape[i]);
    return identity ? this : this.op('slice', [], { starts, ends, steps });
  }
  /** Elements along axis 0 (embedding lookup). */
  take(indices: Tensor): Tensor {
    return this.op('gather0', [indices]);
  }

  matmul(o: Tensor): Tensor {
    return matmul(this, o);
  }

  /** The same value, but gradients do not flow through it. */
  stopGradient(): Tensor {
    return new Tensor(this.graph, this.graph.add('cast', [this.id], { to: this.dtype, stop: true }));
  }

  /** Compiles and runs the graph of this tensor alone (eager use, tests). */
  async realize(opts?: import('../runtime/execute.js').CompileOptions): Promise<HostValue> {
    const { compile } = await import('../runtime/execute.js');
    const exe = await compile({ graph: this.graph, inputs: [], outputs: [this.id] }, opts);
    return (await exe.run([]))[0]!;
  }
}

function axesOf(axis: number | number[] | undefined, x: Tensor, op: string): number[] {
  if (axis === undefined) return [...Array(x.rank).keys()];
  const list = (Array.isArray(axis) ? axis : [axis]).map((a) => normalizeAxis(a, x.rank, op, x.shape));
  return [...new Set(list)].sort((a, b) => a - b);
}

function inferReshape(shape: readonly number[], x: Tensor): number[] {
  const s = [...shape];
  const free = s.indexOf(-1);
  if (free >= 0) {
    const known = s.reduce((n, d, i) => (i === free ? n : n * d), 1);
    if (known === 0 || x.size % known !== 0) shapeError('reshape', `cannot infer -1 in ${shapeStr(shape)} from ${x.size} elements`, [x.shape]);
    s[free] = x.size / known;
  }
  return s;
}

/** Brings a number or a tensor into t's graph (numbers become scalars of t's dtype). */
export function lift(v: TensorLike, like: Tensor): Tensor {
  if (typeof v === 'number') return constant(hostValue(like.dtype, [], [v]), like.graph);
  if (v.graph === like.graph) return v;
  const n = v.graph.node(v.id);
  if (n.op === 'const') return constant(n.value!, like.graph);
  throw new Error(`${v} and ${like} were recorded in different traces; pass tensors in as arguments of the traced function instead of capturing them`);
}

export function constant(v: HostValue, graph?: Graph): Tensor {
  const g = graph ?? activeGraph() ?? new Graph();
  return new Tensor(g, g.constant(v));
}

/** A constant from nested arrays or a flat array with a shape. */
export function tensor(data: number | readonly unknown[] | ArrayLike<number>, opts: { shape?: readonly number[]; dtype?: DType } = {}): Tensor {
  const dtype = checkDType(opts.dtype ?? defaultFloat());
  const flat: number[] = [];
  const shape: number[] = [];
  const walk = (x: unknown, depth: number) => {
    if (Array.isArray(x)) {
      if (shape.length <= depth) shape.push(x.length);
      for (const y of x) walk(y, depth + 1);
    } else flat.push(Number(x));
  };
  if (typeof data === 'number') flat.push(data);
  else if (Array.isArray(data)) walk(data, 0);
  else flat.push(...Array.from(data as ArrayLike<number>));
  const finalShape = opts.shape ? [...opts.shape] : typeof data === 'number' ? [] : Array.isArray(data) ? shape : [flat.length];
  return constant(hostValue(dtype, finalShape, flat));
}

export function full(shape: readonly number[], value: number, dtype: DType = defaultFloat(), graph?: Graph): Tensor {
  return constant(hostValue(dtype, [], [value]), graph).expand(shape);
}

/** Matrix product with NumPy semantics for 1-D operands (promoted, then squeezed). */
export function matmul(a: Tensor, b: Tensor): Tensor {
  const bb = lift(b, a);
  if (a.rank === 0 || bb.rank === 0) shapeError('matmul', 'scalars cannot be multiplied with matmul; use mul', [a.shape, bb.shape]);
  const a2 = a.rank === 1 ? a.reshape([1, a.shape[0]!]) : a;
  const b2 = bb.rank === 1 ? bb.reshape([bb.shape[0]!, 1]) : bb;
  let r = a2.op('matmul', [b2]);
  if (a.rank === 1) r = r.reshape([...r.shape.slice(0, -2), r.shape[r.rank - 1]!]);
  if (bb.rank === 1) r = r.reshape(r.shape.slice(0, -1));
  return r;
}
