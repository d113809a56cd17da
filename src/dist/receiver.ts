// The receiving end of a peer link, built on net.Socket's `onread` option: the kernel copies
// incoming bytes straight into memory we choose. Headers land in a small staging buffer;
// a data payload lands directly in the destination the matching receive posted (all-gather,
// broadcast, recv), or in one reusable scratch buffer that is then reduced into the
// destination (reduce-scatter). Data nobody waits for yet goes to a buffer allocated for it,
// but only after its length passed the frame bound. Measured on loopback this is 4-5x faster
// than 'data' events, which allocate a new buffer per read and need a second copy.
import type { FloatArray } from '../ir/dtype.js';
import { decodeHeader, FrameError, HEADER_BYTES, isDataFrame, type Frame, type FrameHeader } from './frame.js';

const STAGING_BYTES = 64 * 1024;

/** A receive waiting for one data frame. */
export interface PostedRecv {
  /** Where the payload belongs; its length must equal the frame's. */
  dest: Uint8Array;
  /** When set, the payload is reduced into this (dest's float view) instead of copied. */
  reduceInto: FloatArray | null;
  reduce: ((dst: FloatArray, src: FloatArray) => void) | null;
  done: (err: Error | null) => void;
}

export function frameKey(type: number, channel: number, seq: number, part: number): string {
  return `${type}:${channel}:${seq}:${part}`;
}

export class DataReceiver {
  private readonly staging = Buffer.allocUnsafeSlow(STAGING_BYTES);
  private stagingLen = 0;
  /** Where a payload to be reduced lands, viewed as the destination's element type. */
  private scratch = new ArrayBuffer(0);
  private readonly posted = new Map<string, PostedRecv>();
  private readonly unexpected = new Map<string, Buffer>();
  // The payload being read directly into its sink, if any.
  private sink: Uint8Array | null = null;
  private sinkFilled = 0;
  private sinkRecv: PostedRecv | null = null;
  private sinkKey = '';
  private sinkHeader: FrameHeader | null = null;
  private failed: FrameError | null = null;
  /** Set once the link is gone: later receives fail unless their frame already arrived. */
  private closed: Error | null = null;

  constructor(
    public maxPayload: number,
    private readonly controlMaxPayload: number,
    private readonly onControl: (f: Frame) => void,
    private readonly onProtocolError: (err: FrameError) => void,
  ) {}

  /** For net.connect({ onread: { buffer: () => r.nextBuffer(), callback: (n) => r.onRead(n) } }). */
  nextBuffer(): Uint8Array {
    if (this.sink) return this.sink.subarray(this.sinkFilled);
    return this.staging.subarray(this.stagingLen);
  }

  onRead(n: number): void {
    if (this.failed) return;
    if (this.sink) {
      this.sinkFilled += n;
      if (this.sinkFilled === this.sink.length) this.finishPayload();
      return;
    }
    this.stagingLen += n;
    try {
      this.parseStaging();
    } catch (err) {
      this.failed = err instanceof FrameError ? err : new FrameError(String(err));
      this.onProtocolError(this.failed);
    }
  }

  /** Posts a receive; completes at once when the frame already arrived. */
  post(key: string, r: PostedRecv): void {
    const early = this.unexpected.get(key);
    if (early) {
      this.unexpected.delete(key);
      this.deliver(r, early, key);
      return;
    }
    if (this.closed) return r.done(this.closed);
    this.posted.set(key, r);
  }

  /** Forgets a posted receive (its operation failed or timed out). */
  cancel(key: string): void {
    this.posted.delete(key);
  }

  private parseStaging(): void {
    let pos = 0;
    while (this.stagingLen - pos >= HEADER_BYTES) {
      const data = isDataFrameAt(this.staging, pos);
      const h = decodeHeader(this.staging, pos, data ? this.maxPayload : this.controlMaxPayload);
      const avail = this.stagingLen - pos - HEADER_BYTES;
      if (!isDataFrame(h.type)) {
        if (avail < h.length) break; // control frames are small: wait until whole in staging
        const payload = Buffer.from(this.staging.subarray(pos + HEADER_BYTES, pos + HEADER_BYTES + h.length));
        pos += HEADER_BYTES + h.length;
        this.onControl({ header: h, payload });
        continue;
      }
      pos += HEADER_BYTES;
      this.startPayload(h);
      const take = Math.min(avail, h.length);
      this.sink!.set(this.staging.subarray(pos, pos + take), 0);
      this.sinkFilled = take;
      pos += take;
      if (take === h.length) this.finishPayload();
      else break; // the rest of this payload is read straight into its sink
    }
    // Keep the unparsed tail (a partial header or control frame) at the front.
    if (pos > 0) {
      this.staging.copyWithin(0, pos, this.stagingLen);
      this.stagingLen -= pos;
    }
  }

  private startPayload(h: FrameHeader): void {
    const key = `${h.type}:${h.channel}:${h.seq}:${h.part}`;
    const r = this.posted.get(key) ?? null;
    this.sinkKey = key;
    this.sinkHeader = h;
    this.sinkRecv = r;
    if (r && r.dest.length === h.length) {
      this.posted.delete(key);
      if (r.reduceInto) {
        if (this.scratch.byteLength < h.length) this.scratch = new ArrayBuffer(Math.ceil(h.length / 8) * 8);
        this.sink = new Uint8Array(this.scratch, 0, h.length);
      } else {
        this.sink = r.dest;
      }
    } else {
      // Nobody waits for it yet, or the sizes disagree: hold it (length already bounded).
      this.sink = Buffer.allocUnsafe(h.length);
    }
  }

  private finishPayload(): void {
    const r = this.sinkRecv;
    const h = this.sinkHeader!;
    const sink = this.sink!;
    this.sink = null;
    this.sinkRecv = null;
    if (!r) {
      // The receive may have been posted while this payload was still streaming in.
      const late = this.posted.get(this.sinkKey);
      if (late) {
        this.posted.delete(this.sinkKey);
        this.deliver(late, sink as Buffer, this.sinkKey);
      } else {
        this.unexpected.set(this.sinkKey, sink as Buffer);
      }
    } else if (r.dest.length !== h.length) {
      this.posted.delete(this.sinkKey);
      r.done(new Error(`received ${h.length} bytes but ${r.dest.length} were expected (part ${h.part}): do all ranks pass buffers of the same size?`));
    } else if (r.reduceInto) {
      r.reduce!(r.reduceInto, viewAs(r.reduceInto, this.scratch, 0, h.length));
      r.done(null);
    } else {
      r.done(null);
    }
  }

  private deliver(r: PostedRecv, payload: Buffer, key: string): void {
    if (payload.length !== r.dest.length) {
      r.done(new Error(`received ${payload.length} bytes but ${r.dest.length} were expected (${key}): do all ranks pass buffers of the same size?`));
      return;
    }
    if (r.reduceInto) {
      // Buffer.allocUnsafe memory is 8-byte aligned; the copy is only a safety net. Never use
      // the shared scratch here: a payload may be streaming into it right now.
      const aligned = payload.byteOffset % r.reduceInto.BYTES_PER_ELEMENT === 0;
      const src = aligned ? viewAs(r.reduceInto, payload.buffer, payload.byteOffset, payload.length) : viewAs(r.reduceInto, Uint8Array.from(payload).buffer, 0, payload.length);
      r.reduce!(r.reduceInto, src);
    } else {
      r.dest.set(payload);
    }
    r.done(null);
  }

  /** Rejects every posted receive (the link is gone). */
  failAll(err: Error): void {
    this.closed = err;
    const rs = [...this.posted.values()];
    this.posted.clear();
    for (const r of rs) r.done(err);
  }
}

/** `bytes` bytes at `offset` of `buf` as an array of `like`'s element type (a float64
 * reduction reads 8-byte elements, a float32 one 4-byte ones). */
function viewAs(like: FloatArray, buf: ArrayBufferLike, offset: number, bytes: number): FloatArray {
  return like instanceof Float64Array ? new Float64Array(buf, offset, bytes / 8) : new Float32Array(buf, offset, bytes / 4);
}

function isDataFrameAt(b: Buffer, pos: number): boolean {
  return isDataFrame(b[pos + 5]!);
}
