// A live progress line (iteration, loss, tokens/s, MFU, ETA): rewritten in place on a
// terminal, one line per update otherwise (logs, CI).

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
    const eta = done > 0 ? ((this.total - step) * elapsed) / done : 0;
    const line = `iter ${step}/${this.total}  loss ${loss.toFixed(4)}  ${Math.round(tokensPerS)} tok/s  MFU ${mfu === undefined ? 'n/a' : (mfu * 100).toFixed(1) + '%'}  ETA ${fmt(eta)}`;
    process.stderr.write(this.tty ? `\r\x1b[K${line}` : `${line}\n`);
  }

  note(text: string): void {
    if (this.quiet) return;
    process.stderr.write(this.tty ? `\r\x1b[K${text}\n` : `${text}\n`);
  }

  done(): void {
    if (!this.quiet && this.tty) process.stderr.write('\n');
  }
}

function fmt(s: number): string {
  if (!Number.isFinite(s)) return '?';
  const m = Math.floor(s / 60);
  return m > 0 ? `${m}m${String(Math.round(s % 60)).padStart(2, '0')}s` : `${Math.round(s)}s`;
}
