// A live progress line (iteration, loss, tokens/s, MFU, ETA): rewritten in place on a
// terminal, one line per update otherwise (logs, CI). Times and ETA are formatted as every
// other progress display (monitor/progress-bar).
import { etaSeconds, formatDuration } from '../monitor/index.js';

export class Progress {
  private readonly t0 = performance.now();
  private readonly tty = process.stderr.isTTY === true;
  private first: number | undefined;

  constructor(private readonly total: number, private readonly quiet = false) {}

  /** `step` counts optimizer steps from 1, as metrics.jsonl and the val lines do. */
  update(step: number, loss: number, tokensPerS: number, mfu?: number): void {
    if (this.quiet) return;
    this.first ??= step;
    const done = step + 1 - this.first;
    const elapsed = (performance.now() - this.t0) / 1000;
    // `step` is 1-based, so the steps this display covers are first..total.
    const eta = etaSeconds(done, this.total - this.first + 1, elapsed) ?? NaN;
    const line = `iter ${step}/${this.total}  loss ${loss.toFixed(4)}  ${Math.round(tokensPerS)} tok/s  MFU ${mfu === undefined ? 'n/a' : (mfu * 100).toFixed(1) + '%'}  ETA ${formatDuration(eta)}`;
    process.stderr.write(this.tty ? `\r\x1b[K${line}` : `${line}\n`);
  }

  done(): void {
    if (!this.quiet && this.tty) process.stderr.write('\n');
  }
}
