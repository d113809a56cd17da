// An independent reader of TensorBoard event files, written from the TFRecord and Event specs
// (tensorflow/core/lib/io/record_writer, tensorflow/core/util/event.proto, summary.proto)
// and sharing no code with src/monitor: its own bit-at-a-time CRC-32C and its own protobuf
// decoder. It refuses a file whose framing or checksums are wrong, naming the offset.

/** CRC-32C one bit at a time (the slow textbook form; src/ uses a table). */
export function crc32cBitwise(bytes: Uint8Array): number {
  let crc = ~0 >>> 0;
  for (const b of bytes) {
    crc ^= b;
    for (let k = 0; k < 8; k++) crc = (crc >>> 1) ^ (0x82f63b78 & -(crc & 1));
  }
  return ~crc >>> 0;
}

const mask = (c: number) => (((c >>> 15) | (c << 17)) + 0xa282ead8) >>> 0;

export interface ScalarValue {
  tag: string;
  value: number;
}

export interface ReadEvent {
  wallTime: number;
  step: number;
  fileVersion?: string;
  scalars: ScalarValue[];
}

/** Fields of one protobuf message: field number -> list of (wire type, raw value). */
function fields(buf: Uint8Array): Map<number, { wire: number; v: bigint | Uint8Array }[]> {
  const out = new Map<number, { wire: number; v: bigint | Uint8Array }[]>();
  let i = 0;
  const varint = (): bigint => {
    let shift = 0n;
    let r = 0n;
    for (;;) {
      if (i >= buf.length) throw new Error('protobuf: varint runs past the end of the message');
      const b = buf[i++]!;
      r |= BigInt(b & 0x7f) << shift;
      if (!(b & 0x80)) return r;
      shift += 7n;
    }
  };
  const take = (n: number): Uint8Array => {
    if (i + n > buf.length) throw new Error('protobuf: field runs past the end of the message');
    const s = buf.subarray(i, i + n);
    i += n;
    return s;
  };
  while (i < buf.length) {
    const key = Number(varint());
    const field = key >>> 3;
    const wire = key & 7;
    let v: bigint | Uint8Array;
    if (wire === 0) v = varint();
    else if (wire === 1) v = take(8);
    else if (wire === 2) v = take(Number(varint()));
    else if (wire === 5) v = take(4);
    else throw new Error(`protobuf: unsupported wire type ${wire}`);
    if (!out.has(field)) out.set(field, []);
    out.get(field)!.push({ wire, v });
  }
  return out;
}

const f64 = (b: Uint8Array) => new DataView(b.buffer, b.byteOffset, 8).getFloat64(0, true);
const f32 = (b: Uint8Array) => new DataView(b.buffer, b.byteOffset, 4).getFloat32(0, true);
const utf8 = (b: Uint8Array) => new TextDecoder().decode(b);

function decodeEvent(data: Uint8Array): ReadEvent {
  const f = fields(data);
  const ev: ReadEvent = { wallTime: NaN, step: 0, scalars: [] };
  const wt = f.get(1)?.[0];
  if (wt) ev.wallTime = f64(wt.v as Uint8Array);
  const st = f.get(2)?.[0];
  if (st) ev.step = Number(BigInt.asIntN(64, st.v as bigint));
  const fv = f.get(3)?.[0];
  if (fv) ev.fileVersion = utf8(fv.v as Uint8Array);
  for (const s of f.get(5) ?? []) {
    for (const val of fields(s.v as Uint8Array).get(1) ?? []) {
      const vf = fields(val.v as Uint8Array);
      const tag = vf.get(1)?.[0];
      const sv = vf.get(2)?.[0];
      if (!tag || !sv || sv.wire !== 5) throw new Error('Summary.Value without tag or simple_value');
      ev.scalars.push({ tag: utf8(tag.v as Uint8Array), value: f32(sv.v as Uint8Array) });
    }
  }
  return ev;
}

/** Every event of a file; throws on a short record or a checksum mismatch. */
export function readEventFile(bytes: Uint8Array): ReadEvent[] {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const events: ReadEvent[] = [];
  let at = 0;
  while (at < bytes.length) {
    if (at + 12 > bytes.length) throw new Error(`truncated record header at byte ${at}`);
    const len = Number(view.getBigUint64(at, true));
    if (view.getUint32(at + 8, true) !== mask(crc32cBitwise(bytes.subarray(at, at + 8)))) throw new Error(`length checksum mismatch at byte ${at}`);
    if (at + 12 + len + 4 > bytes.length) throw new Error(`truncated record at byte ${at}: ${len} data bytes announced, ${bytes.length - at - 12} present`);
    const data = bytes.subarray(at + 12, at + 12 + len);
    if (view.getUint32(at + 12 + len, true) !== mask(crc32cBitwise(data))) throw new Error(`data checksum mismatch in the record at byte ${at}`);
    events.push(decodeEvent(data));
    at += 12 + len + 4;
  }
  return events;
}
