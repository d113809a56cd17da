// Every primitive (and the composite ops built on them): ONNX Runtime equals the float64
// reference to 1e-5 relative, and every VJP passes a float64 finite-difference check.
import { test } from 'node:test';
import { Rng } from '../../src/tensor/rng.js';
import type { Tensor } from '../../src/tensor/tensor.js';
import { where, concat, split, gather, oneHot, softmax, logSoftmax, layerNorm, crossEntropy, gelu, causalMask } from '../../src/tensor/functional.js';
import { checkForward, checkGradient, type Fn, type InputSpec } from './check.js';

const rng = new Rng(2024);
/** A random shape of the given rank with dims in 1..4 (so size-1 dimensions occur). */
const shapeOf = (rank: number) => Array.from({ length: rank }, () => 1 + rng.int(4));
/** A shape that broadcasts against s: some dims set to 1, sometimes fewer leading dims. */
const broadcastOf = (s: number[]) => s.slice(rng.int(2)).map((d) => (rng.uniform() < 0.4 ? 1 : d));
const positive = (r: Rng) => 0.5 + 2 * r.uniform();
const awayFromZero = (r: Rng) => (r.uniform() < 0.5 ? -1 : 1) * (0.3 + r.uniform());

interface Case {
  name: string;
  fn: Fn;
  specs: () => InputSpec[];
  /** Skip the finite-difference check (non-differentiable outputs). */
  noGrad?: boolean;
}

const unary = (name: string, f: (x: Tensor) => Tensor, gen?: InputSpec['gen']): Case => ({ name, fn: f, specs: () => [{ shape: shapeOf(3), gen }] });
const binary = (name: string, f: (a: Tensor, b: Tensor) => Tensor, genB?: InputSpec['gen'], genA?: InputSpec['gen']): Case => ({
  name,
  fn: f,
  specs: () => {
    const s = shapeOf(3);
    return [{ shape: s, gen: genA }, { shape: broadcastOf(s), gen: genB }];
  },
});
const compare = (name: string, f: (a: Tensor, b: Tensor) => Tensor): Case => ({
  name,
  fn: (a, b) => f(a, b).cast('float32'),
  specs: () => {
    const s = shapeOf(3);
    const ints = (r: Rng) => r.int(3);
    return [{ shape: s, gen: ints }, { shape: broadcastOf(s), gen: ints }];
  },
  noGrad: true,
});

const CASES: Case[] = [
  unary('neg', (x) => x.neg()),
  unary('exp', (x) => x.exp()),
  unary('log', (x) => x.log(), positive),
  unary('sqrt', (x) => x.sqrt(), positive),
  unary('rsqrt', (x) => x.rsqrt(), positive),
  unary('tanh', (x) => x.tanh()),
  unary('sigmoid', (x) => x.sigmoid()),
  unary('erf', (x) => x.erf()),
  unary('relu', (x) => x.relu(), awayFromZero),
  unary('abs', (x) => x.abs(), awayFromZero),
  unary('reciprocal', (x) => x.reciprocal(), awayFromZero),
  unary('gelu_tanh', (x) => gelu(x, 'tanh')),
  unary('gelu_exact', (x) => gelu(x, 'none')),
  binary('add', (a, b) => a.add(b)),
  binary('sub', (a, b) => a.sub(b)),
  binary('mul', (a, b) => a.mul(b)),
  binary('div', (a, b) => a.div(b), awayFromZero),
  binary('pow', (a, b) => a.pow(b), undefined, positive),
  binary('maximum', (a, b) => a.maximum(b)),
  binary('minimum', (a, b) => a.minimum(b)),
  compare('equal', (a, b) => a.eq(b)),
  compare('less', (a, b) => a.lt(b)),
  compare('greater', (a, b) => a.gt(b)),
  compare('less_equal', (a, b) => a.le(b)),
  compare('greater_equal', (a, b) => a.ge(b)),
  {
    name: 'where',
    fn: (c, a, b) => where(c!.gt(0), a!, b!),
    specs: () => {
      const s = shapeOf(3);
      return [{ shape: broadcastOf(s), grad: false }, { shape: s }, { shape: broadcastOf(s) }];
    },
  },
  { name: 'cast_f16_roundtrip', fn: (x) => x.cast('float16').cast('float32'), specs: () => [{ shape: shapeOf(2) }], noGrad: true },
  { name: 'cast_bf16_roundtrip', fn: (x) => x.cast('bfloat16').cast('float32'), specs: () => [{ shape: shapeOf(2) }], noGrad: true },
  { name: 'cast_int', fn: (x) => x.mul(3).cast('int32').cast('int64').cast('float32'), specs: () => [{ shape: shapeOf(2) }], noGrad: true },
  { name: 'sum_axes_keepdims', fn: (x) => x.sum([0, 2], true), specs: () => [{ shape: shapeOf(3) }] },
  { name: 'sum_all', fn: (x) => x.sum(), specs: () => [{ shape: shapeOf(3) }] },
  { name: 'mean', fn: (x) => x.mean(1), specs: () => [{ shape: shapeOf(3) }] },
  { name: 'max', fn: (x) => x.max(-1, true), specs: () => [{ shape: shapeOf(3) }] },
  { name: 'logsumexp', fn: (x) => x.logsumexp(-1), specs: () => [{ shape: shapeOf(3) }] },
  {
    name: 'matmul_batch_broadcast',
    fn: (a, b) => a!.matmul(b!),
    specs: () => {
      const [m, k, n] = shapeOf(3);
      return [{ shape: [2, 1, m!, k!] }, { shape: [3, k!, n!] }];
    },
  },
  { name: 'matmul_vector', fn: (a, b) => a!.matmul(b!), specs: () => [{ shape: [3, 4] }, { shape: [4] }] },
  { name: 'reshape', fn: (x) => x.reshape([-1, 2]), specs: () => [{ shape: [3, 2, 2] }] },
  { name: 'permute', fn: (x) => x.permute([2, 0, 1]), specs: () => [{ shape: shapeOf(3) }] },
  { name: 'expand', fn: (x) => x.expand([2, 3, 4]), specs: () => [{ shape: [3, 1] }] },
  { name: 'slice_steps', fn: (x) => x.slice([1, 5, 2], null, [-1, undefined, -1]), specs: () => [{ shape: [6, 2, 3] }] },
  { name: 'slice_plain', fn: (x) => x.slice(null, [1, 3]), specs: () => [{ shape: [2, 4] }] },
  { name: 'concat', fn: (a, b) => concat([a!, b!, a!], 1), specs: () => [{ shape: [2, 3, 2] }, { shape: [2, 1, 2] }] },
  { name: 'split', fn: (x) => { const [a, b] = split(x, [1, 3], -1); return a!.mul(b!.sum(-1, true)); }, specs: () => [{ shape: [2, 4] }] },
  {
    name: 'gather_embedding',
    fn: (t, i) => t!.take(i!),
    specs: () => [{ shape: [5, 3] }, { shape: [2, 4], dtype: 'int32', gen: (r) => r.int(5), grad: false }],
  },
  {
    name: 'gather_axis1',
    fn: (t, i) => gather(t!, i!, 1),
    specs: () => [{ shape: [2, 5, 3] }, { shape: [4], dtype: 'int64', gen: (r) => r.int(5), grad: false }],
  },
  { name: 'one_hot', fn: (i) => oneHot(i!, 4), specs: () => [{ shape: [3, 2], dtype: 'int32', gen: (r) => r.int(5) - 1 }], noGrad: true },
  { name: 'softmax', fn: (x) => softmax(x, -1), specs: () => [{ shape: shapeOf(3) }] },
  { name: 'log_softmax', fn: (x) => logSoftmax(x, 1), specs: () => [{ shape: shapeOf(3) }] },
  { name: 'layer_norm', fn: (x, w, b) => layerNorm(x!, w!, b!), specs: () => [{ shape: [2, 3, 5] }, { shape: [5] }, { shape: [5] }] },
  {
    name: 'cross_entropy_ignore',
    fn: (l, t) => crossEntropy(l!, t!, -1),
    specs: () => [{ shape: [2, 3, 5] }, { shape: [2, 3], dtype: 'int32', gen: (r, i) => (i === 1 ? -1 : r.int(5)), grad: false }],
  },
  // Collectives: one process can only check what needs no other rank. Megatron's f forward
  // (identity kind over 2 ranks) lowers to Identity; its VJP is an all-reduce, which needs the
  // group, so its gradient is not checked here. Over a group of one rank every kind is the
  // identity, and the VJP rule (kind and bwd swapped) can be checked by finite differences.
  // The communicating kinds, forward and backward, run on 2 real ranks in
  // test/engine/collective-programs.test.ts.
  { name: 'collective_identity', fn: (x) => x.op('collective', [], { group: 'tp', parts: 2, kind: 'identity', bwd: 'all_reduce_sum', dim: 0 }), specs: () => [{ shape: shapeOf(3) }], noGrad: true },
  ...(['all_reduce_sum', 'all_reduce_max', 'all_gather', 'reduce_scatter'] as const).map((kind) => ({
    name: `collective_${kind}_one_rank`,
    fn: (x: Tensor) => x.op('collective', [], { group: 'tp', parts: 1, kind, bwd: kind === 'all_reduce_max' ? 'none' : 'identity', dim: 1 }).mul(x),
    specs: () => [{ shape: shapeOf(3) }],
    // all_reduce_max has no gradient by design (the shift of a softmax, whose derivative
    // cancels): finite differences would see the identity. The vocabulary-parallel
    // log-sum-exp of the 2-rank test checks the gradient around it.
    noGrad: kind === 'all_reduce_max',
  })),
  {
    name: 'causal_attention_scores',
    fn: (s) => softmax(where(causalMask(4, 4, s!.graph), s!, -1e9), -1),
    specs: () => [{ shape: [2, 4, 4] }],
  },
];

for (const c of CASES) {
  test(`primitive ${c.name}: ONNX Runtime equals the float64 reference`, async () => {
    for (const seed of [1, 2]) await checkForward(c.fn, c.specs(), seed);
  });
  if (!c.noGrad) {
    test(`primitive ${c.name}: VJP matches float64 finite differences`, () => {
      checkGradient(c.fn, c.specs(), 5);
    });
  }
}
