// One of the processes `measureCoRun` (co-run.ts) starts: builds the programs of the shape and
// kind it is given (the one process's step, or a pipeline rank's stage calls with full
// recomputation), warms them up, says "ready", waits for "go" on stdin (so that every copy's
// timed rounds run at the same time), times its rounds and prints one JSON line.
import { createInterface } from 'node:readline';
import { median } from '../runtime/median.js';
import type { ProfiledShape } from '../plan/program-profile.js';
import { fusedTimer, stageTimer } from './program-profile.js';
import { chooseGcThreads, collectOnMainThread } from '../runtime/gc-threads.js';

const s = JSON.parse(process.env.ATSCALE_CORUN_SHAPE!) as ProfiledShape;
const threads = Number(process.env.ATSCALE_CORUN_THREADS ?? 1);
const rounds = Number(process.env.ATSCALE_CORUN_ROUNDS ?? 8);
// Copies sharing every core collect garbage as ranks in that case do (runtime/gc-threads.ts).
if (chooseGcThreads(Number(process.env.ATSCALE_CORUN_COPIES ?? 1), threads) === 'main') collectOnMainThread();
const timer = process.env.ATSCALE_CORUN_KIND === 'stages' ? await stageTimer(s, 'full', threads, 2) : await fusedTimer(s, 'none', threads);
process.stdout.write('ready\n');
const lines = createInterface({ input: process.stdin });
for await (const line of lines) if (line.trim() === 'go') break;
const ms: number[] = [];
for (let i = 0; i < rounds; i++) {
  const t0 = performance.now();
  await timer.round();
  ms.push(performance.now() - t0);
}
process.stdout.write(JSON.stringify({ medianMs: median(ms) }) + '\n');
process.exit(0);
