// One atscale training measurement in its own process (so peak RSS is this run's alone):
// node dist/bench/train-worker.js '{"preset":"cpu-small","dropout":0,"iters":20,"warmup":3,"threads":2}'
import { readFileSync } from 'node:fs';
import { preset } from '../src/models/presets.js';
import { timeTrainingStep } from '../src/engine/step-timer.js';

interface Job {
  preset: string;
  /** Overrides the preset's dropout. */
  dropout?: number;
  iters: number;
  warmup: number;
  threads: number;
}

const job = JSON.parse(process.argv[2] ?? '{}') as Job;
const p = preset(job.preset);
const seq = p.model.blockSize!;
const r = await timeTrainingStep({ ...p.model, vocabSize: 65, ...(job.dropout === undefined ? {} : { dropout: job.dropout }) }, p.train.batchSize, { threads: job.threads, iters: job.iters, warmup: job.warmup });
const tokens = p.train.batchSize * seq;
console.log(JSON.stringify({ ms_per_iter: r.msPerIter, tokens_per_s: (tokens * 1000) / r.msPerIter, peak_rss_mb: peakRssMb(), n_params: r.params, ms_all: r.all }));

/** This process's own peak RSS (VmHWM): getrusage's maxRSS survives exec on Linux and can
 * report the parent's instead. */
function peakRssMb(): number {
  const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync('/proc/self/status', 'utf8'));
  return m ? Number(m[1]) / 1024 : process.resourceUsage().maxRSS / 1024;
}
