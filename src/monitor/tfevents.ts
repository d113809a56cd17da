// TensorBoard event files written from scratch: TFRecord framing around Event protos that carry
// scalar Summaries. A record is
//   uint64 length (LE) | uint32 masked CRC-32C of those 8 bytes | data | uint32 masked CRC-32C of data
// and the data is an Event message: wall_time (1, double), step (2, int64), file_version
// (3, string; the first event says "brain.Event:2") or summary (5, Summary). A Summary holds
// repeated Value (1) and a Value is tag (1, string) + simple_value (2, float).
import { appendFileSync, mkdirSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { crc32c, maskCrc } from './crc32c.js';

const utf8 = new TextEncoder();

/** Protobuf wire encoding for the handful of field kinds an Event needs, into one growing
 * byte buffer (an event is written per logged step, so this stays off the profile). */
class ProtoWriter {
  private buf = new Uint8Array(128);
  private len = 0;

  private room(n: number): void {
    if (this.len + n <= this.buf.length) return;
    const next = new Uint8Array(Math.max(this.buf.length * 2, this.len + n));
    next.set(this.buf.subarray(0, this.len));
    this.buf = next;
  }

  private byte(b: number): void {
    this.room(1);
    this.buf[this.len++] = b;
  }

  private varint(v: number): void {
    if (v < 0 || !Number.isSafeInteger(v)) {
      // Negative int64s are ten bytes of two's complement; never hot (steps are >= 0).
      let x = BigInt.asUintN(64, BigInt(Math.trunc(v)));
      while (x >= 0x80n) {
        this.byte(Number(x & 0x7fn) | 0x80);
        x >>= 7n;
      }
      this.byte(Number(x));
      return;
    }
    while (v >= 0x80) {
      this.byte((v % 0x80) | 0x80);
      v = Math.floor(v / 0x80);
    }
    this.byte(v);
  }

  private key(field: number, wire: number): void {
    this.varint(field * 8 + wire);
  }

  int64(field: number, v: number): this {
    this.key(field, 0);
    this.varint(v);
    return this;
  }

  double(field: number, v: number): this {
    this.key(field, 1);
    this.room(8);
    new DataView(this.buf.buffer).setFloat64(this.len, v, true);
    this.len += 8;
    return this;
  }

  float(field: number, v: number): this {
    this.key(field, 5);
    this.room(4);
    new DataView(this.buf.buffer).setFloat32(this.len, v, true);
    this.len += 4;
    return this;
  }

  bytes(field: number, v: Uint8Array): this {
    this.key(field, 2);
    this.varint(v.length);
    this.room(v.length);
    this.buf.set(v, this.len);
    this.len += v.length;
    return this;
  }

  string(field: number, v: string): this {
    return this.bytes(field, utf8.encode(v));
  }

  finish(): Uint8Array {
    return this.buf.slice(0, this.len);
  }
}

/** One TFRecord around `data`. */
export function tfrecord(data: Uint8Array): Uint8Array {
  const out = new Uint8Array(12 + data.length + 4);
  const view = new DataView(out.buffer);
  view.setBigUint64(0, BigInt(data.length), true);
  view.setUint32(8, maskCrc(crc32c(out.subarray(0, 8))), true);
  out.set(data, 12);
  view.setUint32(12 + data.length, maskCrc(crc32c(data)), true);
  return out;
}

/** An Event with scalar summaries (tag -> value). */
export function scalarEvent(wallTime: number, step: number, scalars: Record<string, number>): Uint8Array {
  if (!Number.isSafeInteger(step)) throw new RangeError(`a TensorBoard step must be an integer, got ${step}`);
  const summary = new ProtoWriter();
  for (const [tag, value] of Object.entries(scalars)) summary.bytes(1, new ProtoWriter().string(1, tag).float(2, value).finish());
  return new ProtoWriter().double(1, wallTime).int64(2, step).bytes(5, summary.finish()).finish();
}

export function fileVersionEvent(wallTime: number): Uint8Array {
  return new ProtoWriter().double(1, wallTime).int64(2, 0).string(3, 'brain.Event:2').finish();
}

/**
 * Appends events to DIR/events.out.tfevents.<seconds>.<host>.<pid>, one file per run (the name
 * TensorBoard globs for). Each record is appended with one write and no descriptor is held
 * open between records (records come once per logged step), so a run that dies leaves whole
 * records or a tail a reader detects, and nothing needs closing.
 */
export class TensorBoardWriter {
  readonly path: string;

  constructor(dir: string) {
    mkdirSync(dir, { recursive: true });
    const now = Date.now() / 1000;
    this.path = join(dir, `events.out.tfevents.${Math.floor(now)}.${hostname()}.${process.pid}`);
    appendFileSync(this.path, tfrecord(fileVersionEvent(now)));
  }

  scalars(step: number, values: Record<string, number>, wallTime = Date.now() / 1000): void {
    appendFileSync(this.path, tfrecord(scalarEvent(wallTime, step, values)));
  }
}
