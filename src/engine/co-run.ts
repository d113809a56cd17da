// How much ranks on one host slow each other down while they compute at the same time (for
// `atscale plan --calibrate` with a model shape): programs of that shape timed in one process
// alone, then in `copies` processes at once (started together, released together), then alone
// again. It depends on the programs: on this project's 2-core VM the one-process step (few large
// session runs into buffers it reuses) ran 0-4% slower beside a copy of itself, while a pipeline
// rank's stage calls (many small runs, outputs handed to JavaScript) ran 0-25% slower on one day
// and 30-100% on another, so each kind is measured, at the time of the calibration.
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { ProfiledShape } from '../plan/program-profile.js';

const WAIT_MS = 120_000;

interface Worker {
  child: ChildProcess;
  ready: Promise<void>;
  result: Promise<number>;
}

export type CoRunKind = 'fused' | 'stages';

function start(i: number, copies: number, shape: ProfiledShape, threads: number, rounds: number, kind: CoRunKind): Worker {
  const script = fileURLToPath(new URL('./co-run-worker.js', import.meta.url));
  const child = spawn(process.execPath, [script], {
    stdio: ['pipe', 'pipe', 'pipe'],
    env: { ...process.env, ATSCALE_CORUN_SHAPE: JSON.stringify(shape), ATSCALE_CORUN_THREADS: String(threads), ATSCALE_CORUN_ROUNDS: String(rounds), ATSCALE_CORUN_KIND: kind, ATSCALE_CORUN_COPIES: String(copies) },
  });
  let out = '';
  let err = '';
  let onReady: () => void = () => {};
  const ready = new Promise<void>((res) => (onReady = res));
  child.stdout!.on('data', (d: Buffer) => {
    out += d.toString();
    if (out.includes('ready\n')) onReady();
  });
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const result = new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`co-run worker ${i} (pid ${child.pid}) gave no result within ${WAIT_MS / 1000} s`));
    }, WAIT_MS);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      const line = out.split('\n').find((l) => l.startsWith('{'));
      if (code === 0 && line) resolve((JSON.parse(line) as { medianMs: number }).medianMs);
      else reject(new Error(`co-run worker ${i} exited ${code}: ${err.slice(-800)}`));
    });
  });
  // A worker that dies before "ready" must not leave the others waiting: its failure settles it.
  return { child, ready: Promise.race([ready, result.then(() => undefined)]), result };
}

/** Median step ms of each of `copies` processes running at once. */
async function together(copies: number, shape: ProfiledShape, threads: number, rounds: number, kind: CoRunKind): Promise<number[]> {
  const ws = Array.from({ length: copies }, (_, i) => start(i, copies, shape, threads, rounds, kind));
  try {
    await Promise.all(ws.map((w) => w.ready));
    for (const w of ws) w.child.stdin!.end('go\n');
    return await Promise.all(ws.map((w) => w.result));
  } finally {
    for (const w of ws) if (w.child.exitCode === null) w.child.kill('SIGKILL');
  }
}

/** How much slower `copies` ranks running `kind` at once are than one alone (at least 1): the
 * slowest of them, because every layout the model prices is synchronous (a data-parallel step
 * waits for its slowest rank in the all-reduce, a pipeline stage for its neighbour's handoff)
 * and the cores of this project's VM did not run alike: two pinned copies of one loop ran at
 * 17.8 and 27.3 ms a round side by side, while one alone ran 25.5 ms. */
export async function measureCoRun(shape: ProfiledShape, threads: number, copies: number, kind: CoRunKind, rounds = 8): Promise<{ ranks: number; slowdown: number; aloneMs: number; togetherMs: number }> {
  const [a1] = await together(1, shape, threads, rounds, kind);
  const t = await together(copies, shape, threads, rounds, kind);
  const [a2] = await together(1, shape, threads, rounds, kind);
  const aloneMs = (a1! + a2!) / 2;
  const togetherMs = Math.max(...t);
  return { ranks: copies, slowdown: Math.max(1, togetherMs / aloneMs), aloneMs, togetherMs };
}
