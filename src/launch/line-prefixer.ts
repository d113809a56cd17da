// Forwards a worker's output with `[rank R] ` before every line. Only whole lines are written,
// so lines of different ranks never interleave mid-line; a line longer than the bound is
// written in pieces rather than buffered without limit.
import type { Readable, Writable } from 'node:stream';

const MAX_LINE_BYTES = 64 * 1024;

export function forwardLines(from: Readable, to: Writable, prefix: string): void {
  let pending: Buffer = Buffer.alloc(0);
  const write = (line: Buffer) => {
    if (!to.write(Buffer.concat([Buffer.from(prefix), line]))) {
      // Respect back-pressure so a chatty worker cannot grow the launcher's memory.
      from.pause();
      to.once('drain', () => from.resume());
    }
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
  });
}
