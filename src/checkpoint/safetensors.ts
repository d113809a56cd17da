// The safetensors format (https://huggingface.co/docs/safetensors): an 8-byte little-endian
// header length N, N bytes of JSON {name: {dtype, shape, data_offsets: [begin, end]}, optional
// "__metadata__": {string: string}}, then the raw little-endian tensor bytes, with offsets
// relative to the end of the header, covering the data without holes or overlaps.
// Writers order tensors by item size (largest first) and pad the header with spaces to a
// multiple of 8, so every tensor starts aligned and readers can view it without copying.

import { closeSync, fsyncSync, openSync, readFileSync, writeSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { endianness } from 'node:os';

export type Dtype = 'F64' | 'F32' | 'F16' | 'BF16' | 'I64' | 'I32' | 'I16' | 'I8' | 'U64' | 'U32' | 'U16' | 'U8' | 'BOOL';

export type TypedArray =
  | Float64Array
  | Float32Array
  | BigInt64Array
  | BigUint64Array
  | Int32Array
  | Int16Array
  | Int8Array
  | Uint32Array
  | Uint16Array
  | Uint8Array;

/** One tensor. F16 and BF16 hold their raw 16-bit patterns in a Uint16Array; BOOL is Uint8Array. */
export interface TensorEntry {
  dtype: Dtype;
  shape: number[];
  data: TypedArray;
}

type Ctor = { new (n: number): TypedArray; new (b: ArrayBufferLike, off: number, n: number): TypedArray; BYTES_PER_ELEMENT: number };

export const DTYPES: Record<Dtype, { itemSize: number; array: Ctor }> = {
  F64: { itemSize: 8, array: Float64Array as unknown as Ctor },
  F32: { itemSize: 4, array: Float32Array as unknown as Ctor },
  F16: { itemSize: 2, array: Uint16Array as unknown as Ctor },
  BF16: { itemSize: 2, array: Uint16Array as unknown as Ctor },
  I64: { itemSize: 8, array: BigInt64Array as unknown as Ctor },
  I32: { itemSize: 4, array: Int32Array as unknown as Ctor },
  I16: { itemSize: 2, array: Int16Array as unknown as Ctor },
  I8: { itemSize: 1, array: Int8Array as unknown as Ctor },
  U64: { itemSize: 8, array: BigUint64Array as unknown as Ctor },
  U32: { itemSize: 4, array: Uint32Array as unknown as Ctor },
  U16: { itemSize: 2, array: Uint16Array as unknown as Ctor },
  U8: { itemSize: 1, array: Uint8Array as unknown as Ctor },
  BOOL: { itemSize: 1, array: Uint8Array as unknown as Ctor },
};

/** Hugging Face's reader refuses headers over 100 MB; so do we. */
export const MAX_HEADER_BYTES = 100_000_000;

function assertLittleEndianHost(): void {
  if (endianness() !== 'LE') throw new Error('safetensors data is little-endian; this big-endian host is not supported');
}

export function elementCount(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

function checkEntry(name: string, t: TensorEntry): void {
  const spec = DTYPES[t.dtype];
  if (!spec) throw new Error(`tensor "${name}": unknown dtype ${JSON.stringify(t.dtype)}; use one of ${Object.keys(DTYPES).join(', ')}`);
  if (!Array.isArray(t.shape) || !t.shape.every((d) => Number.isInteger(d) && d >= 0)) throw new Error(`tensor "${name}": shape ${JSON.stringify(t.shape)} must be non-negative integers`);
  if (!(t.data instanceof spec.array)) throw new Error(`tensor "${name}": dtype ${t.dtype} needs a ${spec.array.name}, got ${t.data?.constructor?.name}`);
  if (t.data.length !== elementCount(t.shape)) throw new Error(`tensor "${name}": shape ${JSON.stringify(t.shape)} has ${elementCount(t.shape)} elements but the data has ${t.data.length}`);
}

/** Header bytes (padded) and the tensors in file order with their offsets. */
function layout(tensors: Record<string, TensorEntry>, metadata?: Record<string, string>): { header: Buffer; order: [string, TensorEntry][]; dataBytes: number } {
  assertLittleEndianHost();
  const order = Object.entries(tensors);
  for (const [name, t] of order) {
    if (name === '__metadata__') throw new Error('a tensor may not be named "__metadata__"');
    checkEntry(name, t);
  }
  order.sort((a, b) => DTYPES[b[1].dtype].itemSize - DTYPES[a[1].dtype].itemSize || (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
  const json: Record<string, unknown> = {};
  if (metadata) {
    for (const [k, v] of Object.entries(metadata)) if (typeof v !== 'string') throw new Error(`safetensors metadata "${k}" must be a string, got ${typeof v}`);
    json['__metadata__'] = metadata;
  }
  let offset = 0;
  for (const [name, t] of order) {
    json[name] = { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + t.data.byteLength] };
    offset += t.data.byteLength;
  }
  let text = JSON.stringify(json);
  const len = Buffer.byteLength(text);
  text += ' '.repeat((8 - ((8 + len) % 8)) % 8);
  return { header: Buffer.from(text, 'utf8'), order, dataBytes: offset };
}

function bytesOf(a: TypedArray): Uint8Array {
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
}

/** The whole file in memory. */
export function serializeSafetensors(tensors: Record<string, TensorEntry>, metadata?: Record<string, string>): Buffer {
  const { header, order, dataBytes } = layout(tensors, metadata);
  const out = Buffer.alloc(8 + header.length + dataBytes);
  out.writeBigUInt64LE(BigInt(header.length), 0);
  header.copy(out, 8);
  let at = 8 + header.length;
  for (const [, t] of order) {
    out.set(bytesOf(t.data), at);
    at += t.data.byteLength;
  }
  return out;
}

/** Writes the file tensor by tensor (no second copy in memory), fsyncs it, and returns its
 *  size and sha256 so a checkpoint manifest needs no second read. */
export function writeSafetensorsFile(path: string, tensors: Record<string, TensorEntry>, metadata?: Record<string, string>): { bytes: number; sha256: string } {
  const { header, order, dataBytes } = layout(tensors, metadata);
  const hash = createHash('sha256');
  const fd = openSync(path, 'w');
  try {
    const put = (b: Uint8Array): void => {
      hash.update(b);
      let done = 0;
      while (done < b.length) done += writeSync(fd, b, done, b.length - done);
    };
    const len = Buffer.alloc(8);
    len.writeBigUInt64LE(BigInt(header.length));
    put(len);
    put(header);
    for (const [, t] of order) put(bytesOf(t.data));
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  return { bytes: 8 + header.length + dataBytes, sha256: hash.digest('hex') };
}

export interface ParsedSafetensors {
  tensors: Record<string, TensorEntry>;
  metadata: Record<string, string>;
}

/** Parses and validates a safetensors buffer. Tensors are views into `buf` when aligned
 *  (so they share its memory), copies otherwise. `source` names the file in errors. */
export function parseSafetensors(buf: Uint8Array, source = 'safetensors data'): ParsedSafetensors {
  assertLittleEndianHost();
  const bad = (what: string): never => {
    throw new Error(`${source}: ${what}`);
  };
  if (buf.length < 8) bad(`only ${buf.length} bytes; a safetensors file starts with an 8-byte header length`);
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const n = view.getBigUint64(0, true);
  if (n > BigInt(MAX_HEADER_BYTES)) bad(`header length ${n} is over the ${MAX_HEADER_BYTES}-byte limit; not a safetensors file`);
  if (n > BigInt(buf.length - 8)) bad(`header length ${n} runs past the end of the ${buf.length}-byte file; the file is truncated`);
  const headerLen = Number(n);
  let header: unknown;
  try {
    header = JSON.parse(Buffer.from(buf.buffer, buf.byteOffset + 8, headerLen).toString('utf8'));
  } catch (e) {
    bad(`header is not valid JSON (${(e as Error).message})`);
  }
  if (typeof header !== 'object' || header === null || Array.isArray(header)) bad('header must be a JSON object');
  const dataStart = 8 + headerLen;
  const dataLen = buf.length - dataStart;
  const metadata: Record<string, string> = {};
  const spans: { name: string; dtype: Dtype; shape: number[]; begin: number; end: number }[] = [];
  for (const [name, raw] of Object.entries(header as Record<string, unknown>)) {
    if (name === '__metadata__') {
      if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) bad('__metadata__ must be an object of strings');
      for (const [k, v] of Object.entries(raw as Record<string, unknown>)) {
        if (typeof v !== 'string') bad(`__metadata__["${k}"] must be a string`);
        metadata[k] = v as string;
      }
      continue;
    }
    const e = raw as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
    if (typeof e !== 'object' || e === null) bad(`entry "${name}" must be an object`);
    const spec = DTYPES[e.dtype as Dtype];
    if (typeof e.dtype !== 'string' || !spec) bad(`tensor "${name}" has unsupported dtype ${JSON.stringify(e.dtype)}`);
    if (!Array.isArray(e.shape) || !e.shape.every((d) => Number.isSafeInteger(d) && d >= 0)) bad(`tensor "${name}" has invalid shape ${JSON.stringify(e.shape)}`);
    const off = e.data_offsets;
    if (!Array.isArray(off) || off.length !== 2 || !off.every((d) => Number.isSafeInteger(d) && d >= 0) || off[0] > off[1]) {
      bad(`tensor "${name}" has invalid data_offsets ${JSON.stringify(off)}`);
    }
    const [begin, end] = off as [number, number];
    if (end > dataLen) bad(`tensor "${name}" data_offsets [${begin}, ${end}] run past the ${dataLen} data bytes; the file is truncated`);
    const shape = e.shape as number[];
    const expected = elementCount(shape) * spec.itemSize;
    if (end - begin !== expected) bad(`tensor "${name}" spans ${end - begin} bytes but ${e.dtype} ${JSON.stringify(shape)} needs ${expected}`);
    spans.push({ name, dtype: e.dtype as Dtype, shape, begin, end });
  }
  spans.sort((a, b) => a.begin - b.begin || a.end - b.end);
  let at = 0;
  for (const s of spans) {
    if (s.begin !== at) bad(`tensor "${s.name}" starts at byte ${s.begin} but the previous data ends at ${at}; data must be contiguous without holes or overlaps`);
    at = s.end;
  }
  if (at !== dataLen) bad(`tensors cover ${at} data bytes but the file has ${dataLen}; the file is damaged or has trailing bytes`);
  const tensors: Record<string, TensorEntry> = {};
  for (const s of spans) {
    const { itemSize, array } = DTYPES[s.dtype];
    const count = (s.end - s.begin) / itemSize;
    const abs = buf.byteOffset + dataStart + s.begin;
    let data: TypedArray;
    if (abs % itemSize === 0) data = new array(buf.buffer, abs, count);
    else {
      data = new array(count);
      bytesOf(data).set(buf.subarray(dataStart + s.begin, dataStart + s.end));
    }
    tensors[s.name] = { dtype: s.dtype, shape: s.shape, data };
  }
  return { tensors, metadata };
}

export function readSafetensorsFile(path: string): ParsedSafetensors {
  return parseSafetensors(readFileSync(path), path);
}
