// Where training metrics go. The loop builds one record per logged step and hands it to a
// Monitor; metrics.jsonl, TensorBoard event files and CSV files are each a Monitor, and
// openMonitors fans a record out to the ones a run asked for (DeepSpeed's monitor section idea).
import { appendFileSync, mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { TensorBoardWriter } from './tfevents.js';
import { CsvWriter } from './csv.js';

/** One line of metrics.jsonl: the step and named scalars (null: not measured, e.g. MFU without a peak). */
export type MetricRecord = { iter: number } & Record<string, number | null>;

export interface Monitor {
  write(rec: MetricRecord): void;
  close(): void;
}

/** metrics.jsonl key -> TensorBoard/CSV tag. The keys stay short and flat for JSON; tags group
 * train and validation loss the way TensorBoard users expect. Unlisted keys keep their name. */
export const SCALAR_TAGS: Readonly<Record<string, string>> = {
  loss: 'train/loss',
  val_loss: 'val/loss',
  lr: 'lr',
  tokens_per_s: 'tokens_per_s',
  mfu: 'mfu',
  mfu_peak_gflops: 'mfu_peak_gflops',
  grad_norm: 'grad_norm',
  rss_mb: 'memory/rss_mb',
  step_ms: 'step_ms',
  checkpoint_stall_s: 'checkpoint/stall_s',
  async: 'checkpoint/async',
  checkpoint_interval_steps: 'checkpoint/interval_steps',
  young_daly_s: 'checkpoint/young_daly_s',
  step_s: 'checkpoint/step_s',
  skipped: 'skipped_batches',
};

/** The scalars of a record as tag -> value, nulls and non-numbers left out. */
export function scalarsOf(rec: MetricRecord): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [k, v] of Object.entries(rec)) if (k !== 'iter' && typeof v === 'number' && Number.isFinite(v)) out[SCALAR_TAGS[k] ?? k] = v;
  return out;
}

export class JsonlMonitor implements Monitor {
  constructor(readonly path: string) {
    mkdirSync(dirname(path), { recursive: true });
  }
  write(rec: MetricRecord): void {
    appendFileSync(this.path, JSON.stringify(rec) + '\n');
  }
  close(): void {}
}

export class TensorBoardMonitor implements Monitor {
  readonly writer: TensorBoardWriter;
  constructor(dir: string) {
    this.writer = new TensorBoardWriter(dir);
  }
  write(rec: MetricRecord): void {
    const s = scalarsOf(rec);
    if (Object.keys(s).length) this.writer.scalars(rec.iter, s);
  }
  close(): void {}
}

export class CsvMonitor implements Monitor {
  private readonly writer: CsvWriter;
  constructor(dir: string) {
    this.writer = new CsvWriter(dir);
  }
  write(rec: MetricRecord): void {
    for (const [tag, v] of Object.entries(scalarsOf(rec))) this.writer.append(tag, rec.iter, v);
  }
  close(): void {}
}

/** A DeepSpeed-style monitor section: `{ enabled, output_path, job_name }`. */
export interface MonitorSection {
  enabled: boolean;
  /** Folder for the files; default: the run's out directory (tb/ or csv/ inside it). */
  outputPath?: string;
  jobName?: string;
}

export interface MonitorOptions {
  /** TensorBoard is on by default (OUT/tb); `{ enabled: false }` turns it off. */
  tensorboard?: MonitorSection;
  /** CSV files, off by default (OUT/csv when enabled). */
  csv?: MonitorSection;
}

/** Folder of a section: output_path/job_name as DeepSpeed lays it out, else OUT/<dflt>. */
export function sectionDir(out: string, s: MonitorSection | undefined, dflt: string): string {
  const base = s?.outputPath ? s.outputPath : join(out, dflt);
  return s?.jobName ? join(base, s.jobName) : base;
}

/** All monitors of a run writing to `out` (metrics.jsonl always). */
export function openMonitors(out: string, o: MonitorOptions = {}): Monitor {
  const all: Monitor[] = [new JsonlMonitor(join(out, 'metrics.jsonl'))];
  if (o.tensorboard?.enabled ?? true) all.push(new TensorBoardMonitor(sectionDir(out, o.tensorboard, 'tb')));
  if (o.csv?.enabled) all.push(new CsvMonitor(sectionDir(out, o.csv, 'csv')));
  return {
    write: (rec) => all.forEach((m) => m.write(rec)),
    close: () => all.forEach((m) => m.close()),
  };
}
