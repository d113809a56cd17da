// Forwards workers' output to one destination with `[rank R] ` before every line. Only whole
// lines are written, so lines of different ranks never interleave mid-line; a line longer
// than the bound is written in pieces rather than buffered without limit.
import type { Readable, Writable } from 'node:stream';

const MAX_LINE_BYTES = 64 * 1024;

export class PrefixedOutput {
  /** Sources paused because the destination is full; one 'drain' resumes them all. */
  private readonly paused = new Set<Readable>();
  private waitingForDrain = false;
  private broken = false;

  constructor(private readonly to: Writable) {
    // Once the reader is gone (a closed pipe: `atscale launch ... | head`), output is dropped
    // but still drained, so no worker blocks on a full pipe and the job runs on.
    // process.stdout reports a closed pipe with 'error' (EPIPE) and may never emit 'close'.
    const lost = () => {
      this.broken = true;
      this.resumeAll();
    };
    to.once('error', lost);
    to.once('close', lost);
  }

  private get gone(): boolean {
    return this.broken || this.to.destroyed || this.to.writableEnded;
  }

  add(from: Readable, prefix: string): void {
    let pending: Buffer = Buffer.alloc(0);
    const write = (line: Buffer) => {
      if (this.gone) return;
      if (!this.to.write(Buffer.concat([Buffer.from(prefix), line]))) this.pause(from);
    };
    from.on('data', (chunk: Buffer) => {
      let buf = pending.length ? Buffer.concat([pending, chunk]) : chunk;
      let nl: number;
      while ((nl = buf.indexOf(0x0a)) >= 0) {
        write(buf.subarray(0, nl + 1));
        buf = buf.subarray(nl + 1);
      }
      while (buf.length > MAX_LINE_BYTES) {
        write(Buffer.concat([buf.subarray(0, MAX_LINE_BYTES), Buffer.from('\n')]));
        buf = buf.subarray(MAX_LINE_BYTES);
      }
      pending = Buffer.from(buf);
    });
    from.on('end', () => {
      if (pending.length) write(Buffer.concat([pending, Buffer.from('\n')]));
      pending = Buffer.alloc(0);
      this.paused.delete(from);
    });
  }

  /** Back-pressure: a chatty worker must not grow the launcher's memory. */
  private pause(from: Readable): void {
    from.pause();
    this.paused.add(from);
    if (this.waitingForDrain) return;
    this.waitingForDrain = true;
    this.to.once('drain', () => this.resumeAll());
  }

  private resumeAll(): void {
    this.waitingForDrain = false;
    for (const s of this.paused) s.resume();
    this.paused.clear();
  }
}
