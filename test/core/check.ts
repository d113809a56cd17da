// Test helpers: run one traced function through ONNX Runtime and through the float64
// reference interpreter, and check its gradients by central finite differences in float64.
import assert from 'node:assert/strict';
import { Graph, type Program } from '../../src/ir/graph.js';
import type { DType } from '../../src/ir/dtype.js';
import { hostValue, type HostValue, toNumbers } from '../../src/ir/value.js';
import { numel } from '../../src/ir/shape.js';
import { compile } from '../../src/runtime/execute.js';
import { runReference, refFromHost, type RefValue } from '../../src/runtime/reference/interpreter.js';
import { Tensor, constant } from '../../src/tensor/tensor.js';
import { withGraph } from '../../src/tensor/trace.js';
import { gradients } from '../../src/autodiff/grad.js';
import { Rng } from '../../src/tensor/rng.js';

export interface InputSpec {
  shape: number[];
  dtype?: DType;
  /** Value generator (default: standard normal). */
  gen?: (rng: Rng, i: number) => number;
  /** Whether to check the gradient with respect to this input (default: float inputs). */
  grad?: boolean;
}

export type Fn = (...xs: Tensor[]) => Tensor;

export function randomInputs(specs: InputSpec[], seed: number): HostValue[] {
  const rng = new Rng(seed);
  return specs.map((s) => {
    const n = numel(s.shape);
    const data = Array.from({ length: n }, (_, i) => (s.gen ? s.gen(rng, i) : rng.normal()));
    return hostValue(s.dtype ?? 'float32', s.shape, data);
  });
}

function build(fn: Fn, inputs: HostValue[]): { program: Program; graph: Graph; ins: Tensor[]; out: Tensor } {
  const graph = new Graph();
  return withGraph(graph, () => {
    const ins = inputs.map((v, i) => new Tensor(graph, graph.input(`x${i}`, v.shape, v.dtype)));
    const out = fn(...ins);
    return { program: { graph, inputs: ins.map((t) => t.id), outputs: [out.id] }, graph, ins, out };
  });
}

/** Largest |a-b| relative to the largest |b| (the error measure). */
export function relError(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length, 'length mismatch');
  let err = 0;
  let mag = 0;
  for (let i = 0; i < a.length; i++) {
    const x = a[i]!;
    const y = b[i]!;
    if (Number.isNaN(x) || Number.isNaN(y)) {
      if (!(Number.isNaN(x) && Number.isNaN(y))) return Infinity;
      continue;
    }
    if (x === y) continue;
    err = Math.max(err, Math.abs(x - y));
    mag = Math.max(mag, Math.abs(y));
  }
  for (let i = 0; i < b.length; i++) if (Number.isFinite(b[i]!)) mag = Math.max(mag, Math.abs(b[i]!));
  return mag === 0 ? err : err / mag;
}

/** ORT (no graph passes, so every kernel runs) vs the reference interpreter. */
export async function checkForward(fn: Fn, specs: InputSpec[], seed = 1, tol = 1e-5): Promise<number> {
  const inputs = randomInputs(specs, seed);
  const { program } = build(fn, inputs);
  const exe = await compile(program, { optimize: false, threads: 1 });
  const [got] = await exe.run(inputs);
  const [want] = runReference(program, inputs.map(refFromHost));
  assert.deepEqual(got!.shape, want!.shape, 'shape differs between ORT and the reference');
  const err = relError(toNumbers(got!), want!.data);
  assert.ok(err <= tol, `ORT vs reference: relative error ${err} > ${tol}`);
  return err;
}

/** Central finite differences of L = sum(f(x) * w) in float64 against the VJP rules. */
export function checkGradient(fn: Fn, specs: InputSpec[], seed = 2, tol = 1e-6, maxProbes = 24): number {
  const inputs = randomInputs(specs, seed);
  const graph = new Graph();
  const { program, wrt } = withGraph(graph, () => {
    const ins = inputs.map((v, i) => new Tensor(graph, graph.input(`x${i}`, v.shape, v.dtype)));
    const out = fn(...ins);
    const w = constant(randomInputs([{ shape: [...out.shape] }], seed + 100)[0]!, graph);
    const loss = out.cast('float32').mul(w).sum();
    const wrt = ins.filter((t, i) => specs[i]!.grad ?? (t.dtype === 'float32'));
    const gs = gradients(loss, wrt);
    return { program: { graph, inputs: ins.map((t) => t.id), outputs: [loss.id, ...gs.map((g) => g.id)] } as Program, wrt };
  });
  const feeds: RefValue[] = inputs.map(refFromHost);
  const outs = runReference(program, feeds);
  const lossAt = (fs: RefValue[]) => runReference({ ...program, outputs: [program.outputs[0]!] }, fs)[0]!.data[0]!;
  let worst = 0;
  const rng = new Rng(seed + 7);
  wrt.forEach((t, k) => {
    const idx = program.inputs.indexOf(t.id);
    const analytic = outs[k + 1]!.data;
    const n = feeds[idx]!.data.length;
    const probes = n <= maxProbes ? [...Array(n).keys()] : Array.from({ length: maxProbes }, () => rng.int(n));
    let scale = 0;
    for (const v of analytic) scale = Math.max(scale, Math.abs(v));
    for (const p of probes) {
      const x = feeds[idx]!.data;
      const orig = x[p]!;
      const h = 1e-6 * Math.max(1, Math.abs(orig));
      x[p] = orig + h;
      const up = lossAt(feeds);
      x[p] = orig - h;
      const down = lossAt(feeds);
      x[p] = orig;
      const numeric = (up - down) / (2 * h);
      const err = Math.abs(numeric - analytic[p]!) / Math.max(1, scale);
      worst = Math.max(worst, err);
      assert.ok(err <= tol, `input ${idx} element ${p}: analytic ${analytic[p]} vs numeric ${numeric} (error ${err})`);
    }
  });
  return worst;
}

/** Gradients computed by ONNX Runtime (float32) vs the reference (float64). */
export async function checkCompiledGradient(fn: Fn, specs: InputSpec[], seed = 3, tol = 1e-4): Promise<number> {
  const inputs = randomInputs(specs, seed);
  const graph = new Graph();
  const program = withGraph(graph, () => {
    const ins = inputs.map((v, i) => new Tensor(graph, graph.input(`x${i}`, v.shape, v.dtype)));
    const loss = fn(...ins);
    const wrt = ins.filter((t) => t.dtype === 'float32');
    const gs = gradients(loss, wrt);
    return { graph, inputs: ins.map((t) => t.id), outputs: [loss.id, ...gs.map((g) => g.id)] } as Program;
  });
  const exe = await compile(program, { threads: 1 });
  const got = await exe.run(inputs);
  const want = runReference(program, inputs.map(refFromHost));
  let worst = 0;
  got.forEach((g, i) => {
    const err = relError(toNumbers(g), want[i]!.data);
    worst = Math.max(worst, err);
    assert.ok(err <= tol, `output ${i}: ORT gradient vs reference relative error ${err} > ${tol}`);
  });
  return worst;
}
