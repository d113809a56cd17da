// `npm run bench -- monitor [--json]`: what watching a run costs. Per logged record: the
// metrics.jsonl, TensorBoard and CSV writers, each alone and all together, next to one training
// step of the small test model measured in the same run (the ratio is the overhead at
// --log-interval 1). And the dashboard's reader: rows per second parsed from a large metrics.jsonl.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CsvMonitor, JsonlMonitor, TensorBoardMonitor, openMonitors, type Monitor, type MetricRecord } from '../src/monitor/index.js';
import { JsonlTail } from '../src/dashboard/index.js';
import { timeTrainingStep } from '../src/engine/step-timer.js';
import { median } from '../src/runtime/median.js';

const RECORDS = 2000;
const REPS = 5;

const record = (iter: number): MetricRecord => ({ iter, loss: 3.2 - iter * 1e-4, lr: 6e-4, tokens_per_s: 12345, mfu: 0.21, grad_norm: 1.1, step_ms: 25.3, rss_mb: 180 });

function usPerRecord(make: (dir: string) => Monitor): number {
  const times: number[] = [];
  for (let r = 0; r < REPS; r++) {
    const dir = mkdtempSync(join(tmpdir(), 'atscale-bench-monitor-'));
    const m = make(dir);
    const t0 = performance.now();
    for (let i = 0; i < RECORDS; i++) m.write(record(i));
    times.push(((performance.now() - t0) * 1000) / RECORDS);
    m.close();
    rmSync(dir, { recursive: true, force: true });
  }
  return median(times);
}

export async function run(argv: string[]): Promise<number> {
  const json = argv.includes('--json');
  const step = await timeTrainingStep({ nLayer: 2, nHead: 2, nEmbd: 32, blockSize: 32, dropout: 0 }, 8, { threads: 1, iters: 10 });
  const writers: [string, (dir: string) => Monitor][] = [
    ['metrics.jsonl', (d) => new JsonlMonitor(join(d, 'metrics.jsonl'))],
    ['tensorboard', (d) => new TensorBoardMonitor(join(d, 'tb'))],
    ['csv', (d) => new CsvMonitor(join(d, 'csv'))],
    ['all three', (d) => openMonitors(d, { csv: { enabled: true } })],
  ];
  const rows = writers.map(([name, make]) => {
    const us = usPerRecord(make);
    return { name, us, ratio: us / 1000 / step.msPerIter };
  });
  // Reader: a 100k-line metrics.jsonl parsed by the dashboard's tail, in its bounded pieces.
  const dir = mkdtempSync(join(tmpdir(), 'atscale-bench-tail-'));
  const path = join(dir, 'metrics.jsonl');
  writeFileSync(path, Array.from({ length: 100_000 }, (_, i) => JSON.stringify(record(i))).join('\n') + '\n');
  const tailTimes: number[] = [];
  for (let r = 0; r < REPS; r++) {
    const tail = new JsonlTail(path, 'metrics.jsonl');
    const t0 = performance.now();
    let n = 0;
    for (let got = tail.poll().rows.length; got > 0; got = tail.poll().rows.length) n += got;
    if (n !== 100_000) throw new Error(`the tail read ${n} rows of 100000`);
    tailTimes.push(performance.now() - t0);
  }
  rmSync(dir, { recursive: true, force: true });
  const rowsPerS = 100_000 / (median(tailTimes) / 1000);
  if (json) {
    for (const r of rows) console.log(JSON.stringify({ bench: 'monitor', writer: r.name, us_per_record: Number(r.us.toFixed(2)), step_ms: Number(step.msPerIter.toFixed(3)), fraction_of_step: Number(r.ratio.toExponential(3)) }));
    console.log(JSON.stringify({ bench: 'monitor', reader: 'dashboard-tail', rows: 100_000, rows_per_s: Math.round(rowsPerS) }));
    return 0;
  }
  console.log(`one training step of the test model (2x32, T=32, B=8, 1 thread): ${step.msPerIter.toFixed(2)} ms (median of 10)\n`);
  console.log('writer           us/record   share of one step');
  for (const r of rows) console.log(`${r.name.padEnd(16)} ${r.us.toFixed(1).padStart(9)}   ${(r.ratio * 100).toFixed(2).padStart(8)}%`);
  console.log(`\ndashboard reader: ${Math.round(rowsPerS).toLocaleString('en')} metrics rows/s (100k-line file, median of ${REPS})`);
  return 0;
}
