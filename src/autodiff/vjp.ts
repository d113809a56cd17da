// One VJP rule per primitive, in one table: given the output gradient g, the node's inputs
// and output (as tensors in the same graph), return the gradient for each input (undefined
// where none flows: integer inputs, masks, stopGradient).
import type { Node } from '../ir/graph.js';
import { Tensor, lift } from '../tensor/tensor.js';
import { where } from '../tensor/functional.js';
import { isFloat } from '../ir/dtype.js';

type Grads = (Tensor | undefined)[];
type Rule = (g: Tensor, ins: Tensor[], out: Tensor, node: Node) => Grads;

/** Sums g over the axes that broadcasting added or stretched, back to `shape`. */
export function unbroadcast(g: Tensor, shape: readonly number[]): Tensor {
  if (g.rank === shape.length && g.shape.every((d, i) => d === shape[i])) return g;
  const lead = g.rank - shape.length;
  const axes: number[] = [];
  for (let i = 0; i < g.rank; i++) {
    if (i < lead || (shape[i - lead] === 1 && g.shape[i] !== 1)) axes.push(i);
  }
  return (axes.length ? g.sum(axes, true) : g).reshape(shape);
}

const pi = Math.PI;

export const VJP: Record<string, Rule> = {
  neg: (g) => [g.neg()],
  exp: (g, _, y) => [g.mul(y)],
  log: (g, [x]) => [g.div(x!)],
  sqrt: (g, _, y) => [g.mul(0.5).div(y)],
  rsqrt: (g, _, y) => [g.mul(y.mul(y).mul(y)).mul(-0.5)],
  tanh: (g, _, y) => [g.mul(y.mul(y).neg().add(1))],
  sigmoid: (g, _, y) => [g.mul(y.mul(y.neg().add(1)))],
  erf: (g, [x]) => [g.mul(x!.mul(x!).neg().exp().mul(2 / Math.sqrt(pi)))],
  relu: (g, [x]) => [where(x!.gt(0), g, 0)],
  abs: (g, [x]) => [g.mul(where(x!.gt(0), 1, where(x!.lt(0), lift(-1, x!), 0)))],
  reciprocal: (g, _, y) => [g.mul(y.mul(y)).neg()],
  softmax: (g, _, y, n) => [y.mul(g.sub(g.mul(y).sum(n.attrs.axis as number, true)))],
  log_softmax: (g, _, y, n) => [g.sub(y.exp().mul(g.sum(n.attrs.axis as number, true)))],
  // y = (x - mean) * r with r = rsqrt(var + eps): dx = r (g - mean(g) - y mean(g y)).
  layer_norm: (g, [x], y, n) => {
    const xc = x!.sub(x!.mean(-1, true));
    const r = xc.mul(xc).mean(-1, true).add(n.attrs.eps as number).rsqrt();
    return [g.sub(g.mean(-1, true)).sub(y.mul(g.mul(y).mean(-1, true))).mul(r)];
  },
  gelu: (g, [x], _, n) => [g.mul(n.attrs.approximate === 'tanh' ? geluTanhGrad(x!) : geluExactGrad(x!))],
  add: (g, [a, b]) => [unbroadcast(g, a!.shape), unbroadcast(g, b!.shape)],
  sub: (g, [a, b]) => [unbroadcast(g, a!.shape), unbroadcast(g.neg(), b!.shape)],
  mul: (g, [a, b]) => [unbroadcast(g.mul(b!), a!.shape), unbroadcast(g.mul(a!), b!.shape)],
  div: (g, [a, b], y) => [unbroadcast(g.div(b!), a!.shape), unbroadcast(g.mul(y).div(b!).neg(), b!.shape)],
  pow: (g, [a, b], y) => [
    unbroadcast(g.mul(b!).mul(a!.pow(b!.sub(1))), a!.shape),
    // d/db a^b = a^b log a, defined as 0 where a == 0 (as PyTorch does).
    unbroadcast(g.mul(where(a!.eq(0), 0, y.mul(a!.log()))), b!.shape),
  ],
  maximum: (g, [a, b]) => minMaxRule(g, a!, b!, a!.gt(b!)),
  minimum: (g, [a, b]) => minMaxRule(g, a!, b!, a!.lt(b!)),
  where: (g, [c, a, b]) => [undefined, unbroadcast(where(c!, g, 0), a!.shape), unbroadcast(where(c!, 0, g), b!.shape)],
  cast: (g, [x], _, n) => (n.attrs.stop || !isFloat(x!.dtype) ? [undefined] : [g.cast(x!.dtype)]),
  sum: (g, [x], _, n) => [g.reshape(keptShape(x!.shape, n)).expand(x!.shape)],
  max: (g, [x], y, n) => {
    // Ties share the gradient equally.
    const ys = y.reshape(keptShape(x!.shape, n));
    const hit = x!.eq(ys).cast(x!.dtype);
    const count = hit.sum(n.attrs.axes as number[], true);
    return [hit.div(count).mul(g.reshape(keptShape(x!.shape, n)))];
  },
  matmul: (g, [a, b]) => {
    const da = unbroadcast(g.matmul(b!.transpose(-2, -1)), a!.shape);
    if (b!.rank === 2 && a!.rank > 2) {
      // x [..., k] @ W [k, n]: dW is one GEMM over all rows, not a batch of GEMMs then a sum.
      const k = a!.shape[a!.rank - 1]!;
      const n = b!.shape[1]!;
      return [da, a!.reshape([-1, k]).transpose(0, 1).matmul(g.reshape([-1, n]))];
    }
    return [da, unbroadcast(a!.transpose(-2, -1).matmul(g), b!.shape)];
  },
  reshape: (g, [x]) => [g.reshape(x!.shape)],
  permute: (g, _, __, n) => {
    const perm = n.attrs.perm as number[];
    const inv = perm.map((_, i) => perm.indexOf(i));
    return [g.permute(inv)];
  },
  expand: (g, [x]) => [unbroadcast(g, x!.shape)],
  slice: (g, [x], _, n) => [g.op('unslice', [], { shape: [...x!.shape], starts: n.attrs.starts!, steps: n.attrs.steps! })],
  unslice: (g, _, __, n) => [sliceLike(g, n.attrs.starts as number[], n.attrs.steps as number[], n)],
  concat: (g, ins, _, n) => {
    const axis = n.attrs.axis as number;
    let start = 0;
    return ins.map((t) => {
      const ranges: ([number, number] | null)[] = g.shape.map(() => null);
      ranges[axis] = [start, start + t.shape[axis]!];
      start += t.shape[axis]!;
      return g.slice(...ranges);
    });
  },
  gather0: (g, [table, idx]) => [idx!.op('scatter_add0', [g], { rows: table!.shape[0]! }), undefined],
  scatter_add0: (g, [idx]) => [undefined, g.take(idx!)],
  collective: (g, _, __, n) => (n.attrs.bwd === 'none' ? [undefined] : [g.op('collective', [], { ...n.attrs, kind: n.attrs.bwd!, bwd: n.attrs.kind! })]),
};

/** d/dx of x sigmoid(2z), z = k (x + c x^3): the tanh GELU written with a sigmoid (0.5 (1 + tanh z) = sigmoid(2z)). */
function geluTanhGrad(x: Tensor): Tensor {
  const k2 = 2 * Math.sqrt(2 / Math.PI);
  const c = 0.044715;
  const x2 = x.mul(x);
  const s = x.mul(x2.mul(k2 * c).add(k2)).sigmoid();
  const dz = x2.mul(3 * k2 * c).add(k2);
  return s.add(x.mul(s).mul(s.neg().add(1)).mul(dz));
}

/** d/dx of x Phi(x) = Phi(x) + x phi(x). */
function geluExactGrad(x: Tensor): Tensor {
  const cdf = x.mul(Math.SQRT1_2).erf().add(1).mul(0.5);
  const pdf = x.mul(x).mul(-0.5).exp().mul(1 / Math.sqrt(2 * Math.PI));
  return cdf.add(x.mul(pdf));
}

function minMaxRule(g: Tensor, a: Tensor, b: Tensor, aWins: Tensor): Grads {
  // Ties split the gradient evenly between the two sides.
  const wA = where(aWins, 1, where(a.eq(b), lift(0.5, g), 0));
  const wB = wA.neg().add(1);
  return [unbroadcast(g.mul(wA), a.shape), unbroadcast(g.mul(wB), b.shape)];
}

function keptShape(shape: readonly number[], n: Node): number[] {
  const axes = n.attrs.axes as number[];
  return shape.map((d, i) => (axes.includes(i) ? 1 : d));
}

/** The slice that reads back what unslice wrote (the adjoint of unslice). */
function sliceLike(g: Tensor, starts: number[], steps: number[], n: Node): Tensor {
  const src = n.inputs[0]!;
  const inShape = g.graph.node(src).shape;
  const full = n.attrs.shape as number[];
  const ends = starts.map((s, i) => {
    const e = s + steps[i]! * inShape[i]!;
    return steps[i]! > 0 ? Math.min(e, full[i]!) : Math.max(e, -1);
  });
  return g.op('slice', [], { starts, ends, steps });
}
