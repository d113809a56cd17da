// Where V8 does its garbage collection work when the ranks on one host take every core.
//
// onnxruntime-node hands every session output to JavaScript in a fresh ArrayBuffer (a copy,
// even when the caller binds the output's buffer), so a pipeline rank, whose blocks hand out
// what they keep for their backward, frees megabytes of them per micro-batch. V8 frees
// ArrayBuffers on a background task and marks the heap concurrently. With every core running
// a rank's compute thread, that task waits for a core; until it runs, the freed bytes still
// count as external memory, which soon crosses V8's limit and forces full mark-compacts.
// Measured on this project's 2-core VM (pp2, recompute none, one thread per rank): 58
// mark-compacts in a 12-step run (5-17 ms each, 8% of each rank's time) with the background
// task, 8 without it; step medians 290-350 ms against 245-270 in alternated runs.
// So there the work is done on the main thread, between session runs, where it costs only
// the rank that made the garbage.
import { availableParallelism } from 'node:os';
import { setFlagsFromString } from 'node:v8';

/** Whether V8's background GC tasks would find no free core: more than one rank on this host,
 * whose compute threads (`threads` ONNX Runtime threads each) cover its `cores`. */
export function coresTaken(localRanks: number, threads: number, cores = availableParallelism()): boolean {
  return localRanks > 1 && localRanks * threads >= cores;
}

export type GcThreads = 'main' | 'background';

/** Where a rank collects: ATSCALE_GC_THREADS=main or background decides (for A/B runs,
 * `npm run bench -- gc-threads`); auto (the default) picks the main thread when `coresTaken`. */
export function chooseGcThreads(localRanks: number, threads: number, env: NodeJS.ProcessEnv = process.env, cores = availableParallelism()): GcThreads {
  const v = env.ATSCALE_GC_THREADS ?? 'auto';
  if (v === 'main' || v === 'background') return v;
  if (v !== 'auto') throw new Error(`ATSCALE_GC_THREADS must be auto, main or background, got '${v}'`);
  return coresTaken(localRanks, threads, cores) ? 'main' : 'background';
}

/** Has V8 free ArrayBuffers and mark the heap on the main thread from now on. These two flags
 * take effect when set in a running process (mark-compacts fell from 58 to 8-10 per run with
 * them set as `atscale train` starts); the umbrella --single-threaded-gc, set so, crashed the
 * ranks in V8 (its implied flags are settled when V8 starts). Call it before the sessions are built. */
export function collectOnMainThread(): void {
  setFlagsFromString('--no-concurrent-array-buffer-sweeping');
  setFlagsFromString('--no-concurrent-marking');
}
