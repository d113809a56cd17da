// Measures MatMul throughput through atscale's own compile-and-run path. Used by the gemm
// benchmark, by `atscale plan --calibrate`, and as the MFU peak of the training benchmark.
import { Graph } from '../ir/graph.js';
import { hostValue, type HostValue } from '../ir/value.js';
import { compile, type Executable } from './execute.js';

export async function gemmExecutable(n: number, threads: number): Promise<{ exe: Executable; feeds: HostValue[] }> {
  const g = new Graph();
  const a = g.input('a', [n, n], 'float32');
  const b = g.input('b', [n, n], 'float32');
  const c = g.add('matmul', [a, b]);
  const exe = await compile({ graph: g, inputs: [a, b], outputs: [c] }, { threads, reuseOutputs: true });
  const fill = (seed: number) => Array.from({ length: n * n }, (_, i) => ((i * 2654435761 + seed) % 1000) / 1000 - 0.5);
  return { exe, feeds: [hostValue('float32', [n, n], fill(1)), hostValue('float32', [n, n], fill(2))] };
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/** Repetitions so that one measurement lasts about `targetMs`. */
export function repsFor(n: number, targetMs = 200, assumedGflops = 50): number {
  return Math.max(3, Math.min(200, Math.round((targetMs * 1e6 * assumedGflops) / (2 * n ** 3 * 1e3))));
}

/**
 * GFLOP/s of an n x n x n MatMul as it runs inside a compiled graph: `chain` independent
 * products in one graph, so the fixed cost of a session run is spread over them (a training
 * step is one run of hundreds of kernels, not one run per GEMM).
 */
export async function measureGemmGflops(n: number, threads: number, samples = 5, chain = 8): Promise<number> {
  const g = new Graph();
  const a = g.input('a', [n, n], 'float32');
  const bs = Array.from({ length: chain }, (_, i) => g.input(`b${i}`, [n, n], 'float32'));
  const outs = bs.map((b) => g.add('matmul', [a, b]));
  const exe = await compile({ graph: g, inputs: [a, ...bs], outputs: outs }, { threads, reuseOutputs: true });
  const fill = (seed: number) => Array.from({ length: n * n }, (_, i) => ((i * 2654435761 + seed) % 1000) / 1000 - 0.5);
  const feeds = [hostValue('float32', [n, n], fill(1)), ...bs.map((_, i) => hostValue('float32', [n, n], fill(i + 2)))];
  await exe.run(feeds);
  const reps = Math.max(1, Math.round(repsFor(n) / chain));
  const times: number[] = [];
  for (let s = 0; s < samples; s++) {
    const t0 = performance.now();
    for (let r = 0; r < reps; r++) await exe.run(feeds);
    times.push((performance.now() - t0) / (reps * chain));
  }
  return (2 * n ** 3) / (median(times) * 1e6);
}
