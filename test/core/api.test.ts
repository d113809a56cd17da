// The user-facing core: jit/grad/valueAndGrad, graph passes, dropout determinism, errors.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Graph } from '../../src/ir/graph.js';
import { hostValue, toNumbers } from '../../src/ir/value.js';
import { optimize, deadCodeElimination, commonSubexpressionElimination, constantFolding, foldConstantPermutes } from '../../src/ir/passes.js';
import { foldEvaluate, runReference, refFromHost } from '../../src/runtime/reference/interpreter.js';
import { compile, toModel } from '../../src/runtime/execute.js';
import { getSession } from '../../src/runtime/session.js';
import { Tensor, tensor } from '../../src/tensor/tensor.js';
import { withGraph } from '../../src/tensor/trace.js';
import { dropout, split } from '../../src/tensor/functional.js';
import { gradients } from '../../src/autodiff/grad.js';
import { jit } from '../../src/tensor/jit.js';
import { grad, valueAndGrad } from '../../src/autodiff/api.js';
import type { HostValue } from '../../src/ir/value.js';

const f32 = (shape: number[], data: number[]) => hostValue('float32', shape, data);

test('grad of a function of a tensor: d/dx sum(x^2 * 3) = 6x', async () => {
  const g = (await grad((x) => (x as Tensor).mul(x as Tensor).mul(3).sum())(f32([3], [1, -2, 0.5]))) as HostValue;
  assert.deepEqual(Array.from(g.data as Float32Array), [6, -12, 3]);
});

test('valueAndGrad over a named parameter record', async () => {
  const loss = (p: unknown, x: unknown) => {
    const { w, b } = p as { w: Tensor; b: Tensor };
    return (x as Tensor).matmul(w).add(b).sum();
  };
  const [v, g] = (await valueAndGrad(loss)({ w: f32([2, 1], [2, 3]), b: f32([1], [1]) }, f32([2, 2], [1, 2, 3, 4]))) as [HostValue, { w: HostValue; b: HostValue }];
  assert.equal((v.data as Float32Array)[0], 1 * 2 + 2 * 3 + 1 + 3 * 2 + 4 * 3 + 1);
  assert.deepEqual(Array.from(g.w.data as Float32Array), [4, 6]);
  assert.deepEqual(Array.from(g.b.data as Float32Array), [2]);
});

test('jit caches one compiled graph per input signature', async () => {
  let traces = 0;
  const f = jit((x) => {
    traces++;
    return (x as Tensor).exp();
  });
  await f(f32([2], [0, 1]));
  await f(f32([2], [1, 2]));
  assert.equal(traces, 1);
  await f(f32([3], [0, 1, 2]));
  assert.equal(traces, 2);
});

test('passes: DCE drops unused work, CSE merges repeats, folding evaluates constants', () => {
  const g = new Graph();
  const { x, out } = withGraph(g, () => {
    const x = new Tensor(g, g.input('x', [4], 'float32'));
    x.log(); // dead
    const c = tensor([1, 2, 3, 4]).mul(2).add(1); // foldable
    const out = x.exp().add(x.exp()).add(c);
    return { x, out };
  });
  const p = { graph: g, inputs: [x.id], outputs: [out.id] };
  const ops = (q: typeof p) => q.graph.nodes.map((n) => n.op);
  assert.ok(!ops(deadCodeElimination(p)).includes('log'));
  assert.equal(ops(commonSubexpressionElimination(p)).filter((o) => o === 'exp').length, 1);
  const folded = constantFolding(p, foldEvaluate);
  assert.equal(ops(folded).filter((o) => o === 'mul').length, 0);
  const q = optimize(p, foldEvaluate);
  assert.deepEqual(ops(q).sort(), ['add', 'add', 'const', 'exp', 'input']);
  const feed = [refFromHost(f32([4], [0, 1, 2, 3]))];
  assert.deepEqual(Array.from(runReference(q, feed)[0]!.data), Array.from(runReference(p, feed)[0]!.data));
});

test('passes: permutes of float32 constants fold, of any size, into one array shared by the programs of a cache', () => {
  const w = f32([300, 400], Array.from({ length: 300 * 400 }, (_, i) => i % 977));
  const program = () => {
    const g = new Graph();
    return withGraph(g, () => {
      const x = new Tensor(g, g.input('x', [2, 400], 'float32'));
      const out = x.matmul(new Tensor(g, g.constant(w)).transpose(0, 1)); // [2, 300], x W^T as a tied head
      return { graph: g, inputs: [x.id], outputs: [out.id] };
    });
  };
  const cache = new Map();
  const [p1, p2] = [foldConstantPermutes(program(), foldEvaluate, cache), foldConstantPermutes(program(), foldEvaluate, cache)];
  const wt = (q: typeof p1) => q.graph.nodes.find((n) => n.op === 'const' && n.shape[0] === 400)!.value!;
  assert.ok(!p1.graph.nodes.some((n) => n.op === 'permute'));
  assert.equal(wt(p1).data, wt(p2).data);
  assert.deepEqual(wt(p1).shape, [400, 300]);
  const feed = [refFromHost(f32([2, 400], Array.from({ length: 800 }, (_, i) => (i % 13) - 6)))];
  assert.deepEqual(Array.from(runReference(p1, feed)[0]!.data), Array.from(runReference(program(), feed)[0]!.data));
});

test('passes: the gradient of a split is one concat of the parts, not zero-padded parts added', async () => {
  const g = new Graph();
  const program = withGraph(g, () => {
    const x = new Tensor(g, g.input('x', [2, 3, 6], 'float32'));
    const [a, b, c] = split(x, [1, 3, 2], -1);
    const loss = a!.mul(a!).sum().add(b!.exp().sum()).add(c!.mul(c!).mul(c!).sum());
    return { graph: g, inputs: [x.id], outputs: [gradients(loss, [x])[0]!.id] };
  });
  const q = optimize(program, foldEvaluate);
  const ops = q.graph.nodes.map((n) => n.op);
  assert.equal(ops.filter((o) => o === 'concat').length, 1);
  assert.equal(ops.filter((o) => o === 'unslice').length, 0);
  const xs = Array.from({ length: 36 }, (_, i) => Math.sin(i));
  const feed = f32([2, 3, 6], xs);
  const [ort] = await (await compile(program, { threads: 1 })).run([feed]);
  const want = xs.map((v, i) => (i % 6 === 0 ? 2 * v : i % 6 < 4 ? Math.exp(v) : 3 * v * v));
  toNumbers(ort!).forEach((v, i) => assert.ok(Math.abs(v - want[i]!) < 1e-5, `element ${i}: ${v} vs ${want[i]}`));
  // Parts that do not tile the axis keep their unslices.
  const h = new Graph();
  const partial = withGraph(h, () => {
    const x = new Tensor(h, h.input('x', [6], 'float32'));
    const loss = x.slice([0, 2]).sum().add(x.slice([4, 6]).sum());
    return { graph: h, inputs: [x.id], outputs: [gradients(loss, [x])[0]!.id] };
  });
  const [r] = await (await compile(partial, { threads: 1 })).run([f32([6], [1, 2, 3, 4, 5, 6])]);
  assert.deepEqual(Array.from(toNumbers(r!)), [1, 1, 0, 0, 1, 1]);
});

async function dropoutRun(key: number, p: number): Promise<{ ort: Float64Array; ref: Float64Array }> {
  const g = new Graph();
  const program = withGraph(g, () => {
    const x = new Tensor(g, g.input('x', [64, 64], 'float32'));
    const k = new Tensor(g, g.input('key', [], 'int64'));
    return { graph: g, inputs: [x.id, k.id], outputs: [dropout(x, p, k, 7).id] };
  });
  const feeds = [hostValue('float32', [64, 64], new Array(4096).fill(1)), hostValue('int64', [], [key])];
  const exe = await compile(program, { threads: 1 });
  const [o] = await exe.run(feeds);
  return { ort: toNumbers(o!), ref: runReference(program, feeds.map(refFromHost))[0]!.data };
}

test('dropout: deterministic in its key, identical in ORT and the reference, keeps about 1-p', async () => {
  const a = await dropoutRun(12345, 0.25);
  const b = await dropoutRun(12345, 0.25);
  const c = await dropoutRun(12346, 0.25);
  assert.deepEqual(a.ort, b.ort);
  assert.deepEqual(Array.from(a.ort, (v) => Math.fround(v)), Array.from(a.ref, (v) => Math.fround(v)));
  assert.notDeepEqual(a.ort, c.ort);
  const kept = a.ort.filter((v) => v !== 0).length / a.ort.length;
  assert.ok(Math.abs(kept - 0.75) < 0.03, `kept fraction ${kept}`);
  assert.ok(a.ort.every((v) => v === 0 || Math.abs(v - 1 / 0.75) < 1e-6));
});

test('a shape mismatch names the op, both shapes and the call site', () => {
  const a = tensor([[1, 2, 3]]);
  const b = tensor([[1, 2], [3, 4]]);
  assert.throws(() => a.add(b), (e: Error) => {
    assert.match(e.message, /^add: shapes do not broadcast/);
    assert.match(e.message, /\[1, 3\] and \[2, 2\]/);
    assert.match(e.message, /api\.test\.js:\d+/);
    return true;
  });
  assert.throws(() => a.matmul(b), /matmul: inner dimensions differ \(3 vs 2\).*\[1, 3\] and \[2, 2\].*api\.test\.js/);
});

test('unknown dtype and device errors list the valid ones; WebGPU without a GPU fails cleanly', async () => {
  assert.throws(() => tensor([1]).cast('float128' as never), /unknown dtype 'float128'; valid dtypes are float32, float64, float16, bfloat16, int32, int64, bool/);
  const model = toModel({ graph: new Graph(), inputs: [], outputs: [] }, { optimize: false }).model;
  await assert.rejects(getSession(model, { device: 'tpu' as never }), /unknown device 'tpu'; valid devices are cpu, webgpu/);
  await assert.rejects(getSession(model, { threads: -2 }), /threads must be a positive integer/);
  // The probe runs in a child process; on a GPU machine it succeeds, here it must reject with a message.
  const webgpu = await getSession(model, { device: 'webgpu' }).then(() => 'ok', (e: Error) => e.message);
  if (webgpu !== 'ok') assert.match(webgpu, /device 'webgpu' is not available on this machine .*use device 'cpu'/);
});

test('feeding the wrong shape to a compiled graph is a clear error', async () => {
  const f = jit((x) => (x as Tensor).exp());
  const { exe } = await f.lower(f32([2], [0, 1]));
  await assert.rejects(exe.run([f32([3], [0, 1, 2])]), /input 0 \(arg0\) expects float32\[2\], got float32\[3\]/);
});

test('float16 constants from numbers hold those values (arithmetic with literals in float16)', async () => {
  const x = tensor([1, 2, 3], { dtype: 'float16' });
  const v = await x.mul(2).add(0.5).cast('float32').realize();
  assert.deepEqual(Array.from(v.data as Float32Array), [2.5, 4.5, 6.5]);
});

test('dropout masks of different keys are not shifted copies of each other', async () => {
  const a = (await dropoutRun(1000, 0.5)).ort;
  const b = (await dropoutRun(1001, 0.5)).ort;
  for (const shift of [-2, -1, 1, 2]) {
    let same = 0;
    for (let i = 2; i < a.length - 2; i++) if ((a[i] === 0) === (b[i + shift] === 0)) same++;
    const frac = same / (a.length - 4);
    assert.ok(Math.abs(frac - 0.5) < 0.05, `masks agree on ${frac} of elements at shift ${shift}`);
  }
});

test('dropout masks: neighbours at any lag agree as often as independent draws; the step keeps the bool mask (a Where, no float copy)', async () => {
  const g = new Graph();
  const program = withGraph(g, () => {
    const x = new Tensor(g, g.input('x', [256, 256], 'float32'));
    const k = new Tensor(g, g.input('key', [], 'int64'));
    return { graph: g, inputs: [x.id, k.id], outputs: [dropout(x, 0.5, k, 3).id] };
  });
  const exe = await compile(program, { threads: 1 });
  for (const key of [0, 1, -7, 2 ** 31 - 1]) {
    const [o] = await exe.run([hostValue('float32', [256, 256], new Float32Array(65536).fill(1)), hostValue('int64', [], [key])]);
    const m = toNumbers(o!).map((v) => (v === 0 ? 0 : 1));
    for (const lag of [1, 2, 3, 4, 8, 16, 64, 255, 256, 257, 4096]) {
      let same = 0;
      for (let i = 0; i + lag < m.length; i++) if (m[i] === m[i + lag]) same++;
      const frac = same / (m.length - lag);
      // Independent draws at p = 0.5 agree half the time (standard deviation about 0.002 here).
      assert.ok(Math.abs(frac - 0.5) < 0.02, `key ${key}: neighbours at lag ${lag} agree on ${frac} of elements`);
    }
  }
  // The mask is applied by a Where on the bool mask: no Cast of it to float32 (ONNX type 1),
  // whose 4-byte result a backward would keep alive instead of the 1-byte mask.
  const nodes = toModel(program).graph.nodes;
  assert.ok(nodes.some((n) => n.op === 'Where'), 'dropout applies its mask with a Where');
  assert.deepEqual(nodes.filter((n) => n.op === 'Cast' && n.attrs?.to?.v === 1), []);
});

test('bad axes and slices are errors naming the op, the shape and the call site', () => {
  const x = tensor([[1, 2, 3]]);
  assert.throws(() => x.sum(2), /sum: axis 2 is out of range for a tensor of rank 2 \(input shapes \[1, 3\]\) at .*api\.test\.js/);
  assert.throws(() => x.slice(null, null, null), /slice: 3 ranges given for a tensor of rank 2/);
  assert.throws(() => x.slice(null, [0.5, 2]), /slice: range \[0\.5, 2\] must hold integers/);
  assert.deepEqual(x.slice(null, [-10, undefined, -1]).shape, [1, 0]);
});
