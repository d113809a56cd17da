// Measures MatMul throughput through atscale's own compile-and-run path. Used by the gemm
// benchmark, by `atscale plan --calibrate`, and as the MFU peak of the training benchmark.
import { Graph } from '../ir/graph.js';
import { hostValue, type HostValue } from '../ir/value.js';
import { compile, toModel, type Executable } from './execute.js';
import { median } from './median.js';

/** An n x n MatMul compiled through atscale, its feeds, and its ONNX bytes (which the gemm
 * benchmark also runs in a raw onnxruntime-node session). */
export async function gemmExecutable(n: number, threads: number, spinning = true): Promise<{ exe: Executable; feeds: HostValue[]; model: Uint8Array }> {
  const g = new Graph();
  const a = g.input('a', [n, n], 'float32');
  const b = g.input('b', [n, n], 'float32');
  const c = g.add('matmul', [a, b]);
  const program = { graph: g, inputs: [a, b], outputs: [c] };
  const exe = await compile(program, { threads, spinning, reuseOutputs: true });
  const fill = (seed: number) => Array.from({ length: n * n }, (_, i) => ((i * 2654435761 + seed) % 1000) / 1000 - 0.5);
  return { exe, feeds: [hostValue('float32', [n, n], fill(1)), hostValue('float32', [n, n], fill(2))], model: toModel(program).model };
}

/** Repetitions so that one measurement lasts about `targetMs`. */
export function repsFor(n: number, targetMs = 200, assumedGflops = 50): number {
  return Math.max(3, Math.min(200, Math.round((targetMs * 1e6 * assumedGflops) / (2 * n ** 3 * 1e3))));
}


// ---- Probes for the planner's model of a training step (atscale plan --calibrate) ----------
// A training step is one session run of hundreds of kernels whose intermediates never leave
// ONNX Runtime's arena; only parameters and optimizer state cross into and out of JavaScript.
// So these probes keep their tensors inside one graph and take differences of two graphs that
// differ only in the kernels being measured: what remains is the kernels' own time.

const all = (g: Graph, x: number) => g.add('sum', [x], { axes: [...g.node(x).shape.keys()], keepdims: false });

interface Timed {
  exe: Executable;
  feeds: HostValue[];
}

/** Runs per timing batch so that one batch lasts about targetMs / 5 (after a warm-up run). */
async function repsOf(t: Timed, targetMs: number): Promise<number> {
  await t.exe.run(t.feeds);
  const t0 = performance.now();
  await t.exe.run(t.feeds);
  const once = performance.now() - t0;
  return Math.max(1, Math.min(200, Math.round(targetMs / 5 / Math.max(once, 0.005))));
}

async function batchMs(t: Timed, reps: number): Promise<number> {
  const t0 = performance.now();
  for (let r = 0; r < reps; r++) await t.exe.run(t.feeds);
  return (performance.now() - t0) / reps;
}

/**
 * Seconds per unit of the kernels graph `more` has beyond graph `base` (`units` of them): the
 * median over rounds that time both graphs back to back. Timing each graph in its own stretch
 * lets a burst of load on a shared machine land on one of them only, and the difference (and
 * so a GEMM rate) can then come out absurd, even negative.
 */
async function differenceSeconds(base: Timed, more: Timed, units: number, targetMs: number): Promise<number> {
  const [rb, rm] = [await repsOf(base, targetMs), await repsOf(more, targetMs)];
  const diffs: number[] = [];
  for (let r = 0; r < 7; r++) diffs.push((await batchMs(more, rm)) - (await batchMs(base, rb)));
  return Math.max(median(diffs) / units / 1000, 1e-12);
}

const filled = (shape: number[], seed: number, scale = 1) => {
  const n = shape.reduce((a, b) => a * b, 1);
  return hostValue('float32', shape, Array.from({ length: n }, (_, i) => ((((i * 2654435761 + seed) % 1000) / 1000 - 0.5) * scale)));
};

export interface GemmShape {
  /** Independent products done by one batched MatMul (attention's batch x heads), 1 for a plain GEMM. */
  batch: number;
  m: number;
  k: number;
  n: number;
}

/**
 * Seconds of one (batch x) m x k . k x n MatMul kernel inside a graph: a graph of `extra` + 1
 * products of one A with differently scaled copies of B, each summed to a scalar, timed
 * against the same graph with one product.
 */
export async function measureGemmKernelSeconds(s: GemmShape, threads: number, targetMs = 150, extra = 4): Promise<number> {
  const lead = s.batch > 1 ? [s.batch] : [];
  const timed = async (products: number) => {
    const g = new Graph();
    const a = g.input('a', [...lead, s.m, s.k], 'float32');
    const b = g.input('b', [...lead, s.k, s.n], 'float32');
    let acc = all(g, g.add('matmul', [a, b]));
    for (let i = 1; i < products; i++) {
      const bi = g.add('mul', [b, g.constant(hostValue('float32', [], [1 + i / 64]))]);
      acc = g.add('add', [acc, all(g, g.add('matmul', [a, bi]))]);
    }
    const exe = await compile({ graph: g, inputs: [a, b], outputs: [acc] }, { threads, reuseOutputs: true });
    return { exe, feeds: [filled([...lead, s.m, s.k], 1), filled([...lead, s.k, s.n], 2, Math.sqrt(12 / s.k))] };
  };
  return differenceSeconds(await timed(1), await timed(1 + extra), extra, targetMs);
}

/**
 * Seconds of one elementwise kernel (a float32 Add or Mul of two tensors of `elements`) inside
 * a graph: a chain of `chain` such kernels against a chain of one. Small tensors give the
 * dispatch cost of a kernel, large ones the bandwidth these kernels get (3 x 4 bytes an element).
 */
export async function measureElementwiseKernelSeconds(elements: number, threads: number, targetMs = 150, chain = 16): Promise<number> {
  const rows = Math.max(1, Math.round(elements / 1024));
  const timed = async (ops: number) => {
    const g = new Graph();
    const x0 = g.input('x', [1, 1024], 'float32');
    const y0 = g.input('y', [1, 1024], 'float32');
    const y = g.add('expand', [y0], { shape: [rows, 1024] });
    let c = g.add('expand', [x0], { shape: [rows, 1024] });
    for (let i = 0; i < ops; i++) c = g.add(i % 2 ? 'mul' : 'add', [c, y]);
    const exe = await compile({ graph: g, inputs: [x0, y0], outputs: [all(g, c)] }, { threads, reuseOutputs: true });
    return { exe, feeds: [filled([1, 1024], 1), filled([1, 1024], 2)] };
  };
  return differenceSeconds(await timed(1), await timed(1 + chain), chain, targetMs);
}

/**
 * Seconds one session run spends moving `elements` float32 in from JavaScript and the same out
 * again (as a training step's parameters and optimizer state do), with a trivial kernel between.
 */
export async function measureBoundarySeconds(elements: number, threads: number, targetMs = 150): Promise<number> {
  const g = new Graph();
  const x = g.input('x', [elements], 'float32');
  const exe = await compile({ graph: g, inputs: [x], outputs: [g.add('neg', [x])] }, { threads, reuseOutputs: true });
  const t = { exe, feeds: [filled([elements], 1)] };
  const reps = await repsOf(t, targetMs);
  const times: number[] = [];
  for (let r = 0; r < 5; r++) times.push(await batchMs(t, reps));
  return median(times) / 1000;
}

/**
 * Seconds per byte a session run spends handing an output to JavaScript, written into a buffer
 * the caller reuses (what a pipeline block's forward does with every tensor it keeps for its
 * backward, engine/pipeline/stage.ts): a graph computing `outputs` products of its input, each
 * `elements` float32, and their sum, timed returning every product against returning the sum
 * only. The difference is ONNX Runtime writing the products out as outputs, and
 * onnxruntime-node returning a copy of each in a new ArrayBuffer (it does even for bound outputs).
 */
export async function measureOutputCopySecondsPerByte(threads: number, outputs = 8, elements = 1 << 17, targetMs = 150): Promise<number> {
  const timed = async (handOut: boolean) => {
    const g = new Graph();
    const x = g.input('x', [elements], 'float32');
    const outs = Array.from({ length: outputs }, (_, i) => g.add('mul', [x, g.constant(hostValue('float32', [], [1 + i / 64]))]));
    const total = outs.slice(1).reduce((acc, o) => g.add('add', [acc, all(g, o)]), all(g, outs[0]!));
    const exe = await compile({ graph: g, inputs: [x], outputs: handOut ? [total, ...outs] : [total] }, { threads, reuseOutputs: true });
    return { exe, feeds: [filled([elements], 1)] };
  };
  return differenceSeconds(await timed(false), await timed(true), outputs * elements * 4, targetMs);
}

/** The peak MFU is measured against: the best in-graph GEMM rate at large square sizes, GFLOP/s. */
export async function measurePeakGflops(threads: number, sizes: readonly number[] = [1024, 2048]): Promise<number> {
  let best = 0;
  for (const n of sizes) best = Math.max(best, (2 * n ** 3) / (await measureGemmKernelSeconds({ batch: 1, m: n, k: n, n }, threads)) / 1e9);
  return best;
}
