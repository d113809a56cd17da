// The one progress display of every long command (training, data preparation, tokenizer
// training, evaluation, export). On a terminal it redraws one line in place (throttled);
// when stderr is not a terminal (logs, CI, pipes) it writes no carriage returns at all: an
// occasional plain line for long jobs and one clean final line with the count, time and rate.

export interface ProgressBarOptions {
  /** What is counted ("tokens", "merges", "batches"); shown after the numbers. */
  unit?: string;
  /** Write nothing at all. */
  quiet?: boolean;
  /** Where to write (default process.stderr). */
  stream?: { write(s: string): unknown; isTTY?: boolean };
  /** Minimum milliseconds between plain lines when not on a terminal (default 30 s). */
  logEveryMs?: number;
}

export function formatDuration(s: number): string {
  if (!Number.isFinite(s) || s < 0) return '?';
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = Math.round(s % 60);
  if (h > 0) return `${h}h${String(m).padStart(2, '0')}m`;
  return m > 0 ? `${m}m${String(sec).padStart(2, '0')}s` : `${s < 10 ? s.toFixed(1) : Math.round(s)}s`;
}

/** 1234567 -> "1.23M": rates and counts stay short on one line. */
export function formatCount(n: number): string {
  const a = Math.abs(n);
  if (a >= 1e9) return `${(n / 1e9).toFixed(2)}G`;
  if (a >= 1e6) return `${(n / 1e6).toFixed(2)}M`;
  if (a >= 1e4) return `${(n / 1e3).toFixed(1)}k`;
  return Number.isInteger(n) ? String(n) : n.toFixed(1);
}

/** Seconds left at the average rate so far; undefined before anything is done. */
export function etaSeconds(done: number, total: number, elapsedS: number): number | undefined {
  if (!(done > 0) || !(total > 0)) return undefined;
  return (Math.max(0, total - done) * elapsedS) / done;
}

export class ProgressBar {
  private readonly t0 = performance.now();
  private readonly stream: NonNullable<ProgressBarOptions['stream']>;
  private readonly tty: boolean;
  private done = 0;
  private lastDraw = -Infinity;
  private finished = false;

  constructor(private readonly label: string, private total: number | undefined, private readonly o: ProgressBarOptions = {}) {
    this.stream = o.stream ?? process.stderr;
    this.tty = this.stream.isTTY === true;
    this.lastDraw = this.tty ? -Infinity : performance.now();
  }

  /** Sets the count done so far (and the total, when it becomes known late). */
  update(done: number, total = this.total): void {
    this.done = done;
    this.total = total;
    if (this.o.quiet || this.finished) return;
    const now = performance.now();
    if (this.tty ? now - this.lastDraw < 100 : now - this.lastDraw < (this.o.logEveryMs ?? 30_000)) return;
    this.lastDraw = now;
    this.stream.write(this.tty ? `\r\x1b[K${this.line()}` : `${this.line()}\n`);
  }

  tick(n = 1): void {
    this.update(this.done + n);
  }

  /** A line above the bar (a validation result, a warning) without garbling it. */
  note(text: string): void {
    if (this.o.quiet) return;
    this.stream.write(this.tty ? `\r\x1b[K${text}\n` : `${text}\n`);
    this.lastDraw = this.tty ? -Infinity : this.lastDraw;
  }

  /** The final line: total count, wall time and mean rate, plus `extra` (e.g. a result). */
  finish(extra?: string): void {
    if (this.finished) return;
    this.finished = true;
    if (this.o.quiet) return;
    const s = this.elapsed();
    const unit = this.o.unit ? ` ${this.o.unit}` : '';
    const line = `${this.label}: ${formatCount(this.done)}${unit} in ${formatDuration(s)} (${formatCount(s > 0 ? this.done / s : 0)}${unit}/s)${extra ? `; ${extra}` : ''}`;
    this.stream.write(this.tty ? `\r\x1b[K${line}\n` : `${line}\n`);
  }

  private elapsed(): number {
    return (performance.now() - this.t0) / 1000;
  }

  /** "label [#####-----] 50% 5/10 unit  2.0 unit/s  ETA 3s" */
  line(): string {
    const s = this.elapsed();
    const unit = this.o.unit ? ` ${this.o.unit}` : '';
    const rate = `${formatCount(s > 0 ? this.done / s : 0)}${unit}/s`;
    if (this.total === undefined || !(this.total > 0)) return `${this.label} ${formatCount(this.done)}${unit}  ${rate}`;
    const frac = Math.min(1, this.done / this.total);
    const width = 20;
    const filled = Math.round(frac * width);
    const bar = `[${'#'.repeat(filled)}${'-'.repeat(width - filled)}]`;
    const eta = etaSeconds(this.done, this.total, s);
    return `${this.label} ${bar} ${Math.floor(frac * 100)}% ${formatCount(this.done)}/${formatCount(this.total)}${unit}  ${rate}  ETA ${eta === undefined ? '?' : formatDuration(eta)}`;
  }
}
