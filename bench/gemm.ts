// `npm run bench -- gemm [--json] [--sizes 256,512,...] [--threads 1,2]`: MatMul GFLOP/s
// through atscale (trace -> ONNX -> session -> run with host values) next to raw
// onnxruntime-node running the very same model bytes, measured alternately in one run.
import * as ort from 'onnxruntime-node';
import { gemmExecutable, repsFor } from '../src/runtime/gemm-probe.js';
import { median } from '../src/runtime/median.js';
import { parseArgs } from '../src/cli/args.js';

export interface GemmRow {
  bench: 'gemm';
  n: number;
  threads: number;
  gflops: number;
  raw_gflops: number;
  overhead_pct: number;
}

export async function gemmRows(sizes: number[], threadCounts: number[], samples = 21): Promise<GemmRow[]> {
  const rows: GemmRow[] = [];
  for (const threads of threadCounts) {
    for (const n of sizes) {
      // Two sessions alternate on the same cores, so neither may leave its pool threads
      // spinning into the other's turn (same session options on both sides).
      const { exe, feeds, model } = await gemmExecutable(n, threads, false);
      const raw = await ort.InferenceSession.create(model, { intraOpNumThreads: threads, interOpNumThreads: 1, graphOptimizationLevel: 'all', extra: { session: { intra_op: { allow_spinning: '0' } } } });
      const rawFeeds = { in_a: new ort.Tensor('float32', feeds[0]!.data as Float32Array, [n, n]), in_b: new ort.Tensor('float32', feeds[1]!.data as Float32Array, [n, n]) };
      const rawOut = { out_0: new ort.Tensor('float32', new Float32Array(n * n), [n, n]) };
      await exe.run(feeds);
      await raw.run(rawFeeds, rawOut);
      // Short blocks, alternating which goes first, many samples: this VM's speed drifts by tens
      // of percent within seconds. Overhead = ratio of the median times.
      const reps = Math.max(2, Math.round(repsFor(n) / 4));
      const ours: number[] = [];
      const theirs: number[] = [];
      const time = async (f: () => Promise<unknown>) => {
        const t0 = performance.now();
        for (let r = 0; r < reps; r++) await f();
        return (performance.now() - t0) / reps;
      };
      for (let s = 0; s < samples; s++) {
        if (s % 2 === 0) {
          ours.push(await time(() => exe.run(feeds)));
          theirs.push(await time(() => raw.run(rawFeeds, rawOut)));
        } else {
          theirs.push(await time(() => raw.run(rawFeeds, rawOut)));
          ours.push(await time(() => exe.run(feeds)));
        }
      }
      const flop = 2 * n ** 3;
      const gflops = flop / (median(ours) * 1e6);
      const rawGflops = flop / (median(theirs) * 1e6);
      rows.push({ bench: 'gemm', n, threads, gflops: round(gflops), raw_gflops: round(rawGflops), overhead_pct: round((rawGflops / gflops - 1) * 100) });
      await raw.release();
    }
  }
  return rows;
}

const round = (x: number) => Math.round(x * 100) / 100;

export async function run(argv: string[]): Promise<number> {
  const { flags } = parseArgs(argv, {
    json: { type: 'boolean', help: 'print JSON lines' },
    sizes: { type: 'string', help: 'matrix sizes', default: '256,512,1024,2048' },
    threads: { type: 'string', help: 'thread counts', default: '1,2' },
  }, 'bench gemm');
  const sizes = String(flags.sizes).split(',').map(Number);
  const threads = String(flags.threads).split(',').map(Number);
  const rows = await gemmRows(sizes, threads);
  if (flags.json) for (const r of rows) console.log(JSON.stringify(r));
  console.log('\n   n  threads  atscale GFLOP/s  raw ORT GFLOP/s  overhead');
  for (const r of rows) {
    console.log(`${String(r.n).padStart(5)}  ${String(r.threads).padStart(7)}  ${r.gflops.toFixed(1).padStart(15)}  ${r.raw_gflops.toFixed(1).padStart(15)}  ${r.overhead_pct.toFixed(1).padStart(7)}%`);
  }
  return 0;
}
