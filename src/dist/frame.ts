// Every byte that crosses a process boundary travels in a frame: a fixed 24-byte header
// (magic, version, type, payload length, and a (channel, seq, part) tag that matches data to
// the operation waiting for it) followed by the payload. The header is checked, and the
// length compared with the reader's bound, before any payload memory is allocated, so a
// peer cannot make us allocate gigabytes by lying about a length.

export const FRAME_MAGIC = 0x41545344; // 'ATSD'
export const FRAME_VERSION = 1;
export const HEADER_BYTES = 24;

/** Frame types. Control frames are small and read whole; data frames go to posted receives. */
export const FrameType = {
  hello: 1,
  challenge: 2,
  proof: 3,
  welcome: 4,
  refused: 5,
  storeRequest: 10,
  storeResponse: 11,
  collective: 20,
  p2p: 21,
  bye: 30,
  /** "I lost rank k": lets every rank name the rank that died, whoever noticed first. */
  peerLost: 31,
  /** Launcher-to-launcher messages of the elastic rendezvous (launch/rendezvous.ts), JSON. */
  rendezvous: 40,
} as const;

export function isDataFrame(type: number): boolean {
  return type === FrameType.collective || type === FrameType.p2p;
}

export interface FrameHeader {
  type: number;
  length: number;
  channel: number;
  seq: number;
  part: number;
}

export class FrameError extends Error {
  override name = 'FrameError';
}

export function encodeHeader(h: FrameHeader): Buffer {
  const b = Buffer.allocUnsafe(HEADER_BYTES);
  b.writeUInt32LE(FRAME_MAGIC, 0);
  b.writeUInt8(FRAME_VERSION, 4);
  b.writeUInt8(h.type, 5);
  b.writeUInt16LE(0, 6);
  b.writeUInt32LE(h.length, 8);
  b.writeUInt32LE(h.channel >>> 0, 12);
  b.writeUInt32LE(h.seq >>> 0, 16);
  b.writeUInt32LE(h.part >>> 0, 20);
  return b;
}

/** Encodes a whole small frame (header and payload in one buffer). */
export function encodeFrame(type: number, payload: Uint8Array = new Uint8Array(0), channel = 0, seq = 0, part = 0): Buffer {
  const out = Buffer.allocUnsafe(HEADER_BYTES + payload.length);
  encodeHeader({ type, length: payload.length, channel, seq, part }).copy(out, 0);
  out.set(payload, HEADER_BYTES);
  return out;
}

/**
 * Parses and validates a header at `offset`. Throws FrameError naming what was wrong when
 * the magic, version or type is unknown or the length exceeds `maxPayload`.
 */
export function decodeHeader(b: Uint8Array, offset: number, maxPayload: number): FrameHeader {
  const v = new DataView(b.buffer, b.byteOffset + offset, HEADER_BYTES);
  const magic = v.getUint32(0, true);
  if (magic !== FRAME_MAGIC) throw new FrameError(`bad frame magic 0x${magic.toString(16)}: the peer does not speak the atscale protocol`);
  const version = v.getUint8(4);
  if (version !== FRAME_VERSION) throw new FrameError(`frame version ${version} is not supported (this build speaks version ${FRAME_VERSION}): run the same atscale version on every worker`);
  const type = v.getUint8(5);
  if (!Object.values(FrameType).includes(type as never)) throw new FrameError(`unknown frame type ${type}`);
  const length = v.getUint32(8, true);
  if (length > maxPayload) throw new FrameError(`frame of ${length} bytes exceeds the bound of ${maxPayload} bytes: refused before reading it`);
  return { type, length, channel: v.getUint32(12, true), seq: v.getUint32(16, true), part: v.getUint32(20, true) };
}

export interface Frame {
  header: FrameHeader;
  payload: Buffer;
}

/**
 * Reassembles whole frames from a byte stream delivered in arbitrary pieces ('data' events).
 * Used for control traffic (handshakes, the store); bulk data uses the zero-copy receiver.
 * `maxPayload` can be raised after authentication.
 */
export class FrameReader {
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private header: FrameHeader | null = null;

  constructor(public maxPayload: number) {}

  /** Adds bytes; returns every frame completed by them. Throws FrameError on a bad header. */
  push(chunk: Buffer): Frame[] {
    this.pending.push(chunk);
    this.pendingBytes += chunk.length;
    const frames: Frame[] = [];
    for (;;) {
      if (!this.header) {
        if (this.pendingBytes < HEADER_BYTES) break;
        this.header = decodeHeader(this.take(HEADER_BYTES), 0, this.maxPayload);
      }
      if (this.pendingBytes < this.header.length) break;
      frames.push({ header: this.header, payload: this.take(this.header.length) });
      this.header = null;
    }
    return frames;
  }

  private take(n: number): Buffer {
    if (n === 0) return Buffer.alloc(0);
    let joined = this.pending.length === 1 ? this.pending[0]! : Buffer.concat(this.pending, this.pendingBytes);
    const out = joined.subarray(0, n);
    joined = joined.subarray(n);
    this.pending = joined.length ? [joined] : [];
    this.pendingBytes = joined.length;
    return out;
  }
}
