// float64 through the IR, the ONNX lowering and ONNX Runtime: values travel as Float64Array,
// the tanh GELU and its gradient are computed in float64 kernels (agreeing with the formula in
// JavaScript doubles to ~1e-16), Erf (no float64 kernel in ONNX Runtime's CPU provider) goes
// through float32 between two casts, and a float64 graph uses no contrib (com.microsoft) op.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { hostValue } from '../../src/ir/value.js';
import { ITEMSIZE, ONNX_DTYPE, isFloat } from '../../src/ir/dtype.js';
import type { Tensor } from '../../src/tensor/tensor.js';
import { gelu, softmax } from '../../src/tensor/functional.js';
import { jit } from '../../src/tensor/jit.js';
import { valueAndGrad } from '../../src/autodiff/api.js';
import { toModel } from '../../src/runtime/execute.js';
import { buildProgram } from '../../src/tensor/program.js';
import { withFloat } from '../../src/tensor/trace.js';

const X = [-3.1, -1.2, -0.3, 0, 0.25, 0.7, 1.9, 4.2];
const x64 = () => hostValue('float64', [X.length], X);

function geluTanh(x: number): number {
  return 0.5 * x * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (x + 0.044715 * x ** 3)));
}

test('float64 is a float dtype of 8 bytes, ONNX type 11', () => {
  assert.deepEqual([isFloat('float64'), ITEMSIZE.float64, ONNX_DTYPE.float64], [true, 8, 11]);
});

test('tanh GELU and its gradient run in float64', async () => {
  const [value, g] = await valueAndGrad((x: Tensor) => gelu(x, 'tanh').sum())(x64());
  assert.ok(g.data instanceof Float64Array, 'the gradient comes back as a Float64Array');
  assert.ok(Math.abs((value.data as Float64Array)[0]! - X.reduce((a, x) => a + geluTanh(x), 0)) < 1e-14);
  const h = 1e-6;
  X.forEach((x, i) => {
    const fd = (geluTanh(x + h) - geluTanh(x - h)) / (2 * h);
    // Central differences in doubles are good to ~1e-10 here; float32 would be off by ~1e-7.
    assert.ok(Math.abs((g.data as Float64Array)[i]! - fd) < 1e-9, `d gelu(${x}): ${(g.data as Float64Array)[i]} vs ${fd}`);
  });
});

test('Erf in float64 runs in float32 between casts; softmax stays float64; no contrib ops', async () => {
  const f = jit((x: Tensor) => ({ e: x.erf(), s: softmax(x.reshape([2, 4]), -1) }));
  const { e, s } = await f(x64());
  assert.equal(e.dtype, 'float64');
  X.forEach((x, i) => {
    const got = (e.data as Float64Array)[i]!;
    assert.equal(got, Math.fround(got), 'erf is a float32 value widened');
    // erf(x) in float32 (A&S 7.1.26 is only good to 1.5e-7; the kernel is better, so 3e-7 bounds both).
    const t = 1 / (1 + 0.3275911 * Math.abs(x));
    const approx = Math.sign(x) * (1 - ((((1.061405429 * t - 1.453152027) * t + 1.421413741) * t - 0.284496736) * t + 0.254829592) * t * Math.exp(-x * x));
    assert.ok(Math.abs(got - approx) < 3e-7, `erf(${x}) = ${got}`);
  });
  const row = X.slice(0, 4).map(Math.exp);
  const sum = row.reduce((a, b) => a + b, 0);
  row.forEach((v, i) => assert.ok(Math.abs((s.data as Float64Array)[i]! - v / sum) < 1e-15));
  const program = withFloat('float64', () => buildProgram((t) => {
    const x = t.input('x', [8]);
    return { inputs: [x], outputs: [gelu(x, 'tanh').add(x.erf()).matmul(x.reshape([8, 1]))] };
  }));
  assert.equal(program.graph.node(program.inputs[0]!).dtype, 'float64', 'withFloat sets the default dtype of traced inputs');
  const { graph } = toModel(program);
  assert.deepEqual(graph.nodes.filter((n) => n.domain).map((n) => n.domain), []);
  assert.deepEqual(graph.nodes.filter((n) => n.op === 'Erf' || n.op === 'Gelu').map((n) => n.op), ['Erf'], 'the tanh GELU is written out in float64 kernels');
});
