// Reading a safetensors file in two steps, for weights too large to hold twice: the header
// alone first (names, dtypes, shapes: enough to check a model before allocating anything),
// then one tensor at a time, converted to float32 (F16 and BF16 exactly, F64 rounded).
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { DTYPES, MAX_HEADER_BYTES, elementCount, type Dtype } from './safetensors.js';
import { bf16BitsToFloat32, f16BitsToFloat32 } from './half.js';

export interface HeaderEntry {
  name: string;
  dtype: Dtype;
  shape: number[];
  /** Byte range within the file (absolute, not relative to the data section). */
  begin: number;
  end: number;
}

export interface SafetensorsHeader {
  path: string;
  entries: Map<string, HeaderEntry>;
  metadata: Record<string, string>;
}

function readExactly(fd: number, bytes: number, position: number, path: string): Buffer {
  const buf = Buffer.alloc(bytes);
  let done = 0;
  while (done < bytes) {
    const n = readSync(fd, buf, done, bytes - done, position + done);
    if (n === 0) throw new Error(`${path}: file ends after ${position + done} bytes; it is truncated`);
    done += n;
  }
  return buf;
}

/** Names, dtypes, shapes and byte ranges of every tensor, reading only the header. */
export function readSafetensorsHeader(path: string): SafetensorsHeader {
  const fd = openSync(path, 'r');
  try {
    const size = fstatSync(fd).size;
    if (size < 8) throw new Error(`${path}: only ${size} bytes; a safetensors file starts with an 8-byte header length`);
    const n = readExactly(fd, 8, 0, path).readBigUInt64LE(0);
    if (n > BigInt(Math.min(MAX_HEADER_BYTES, size - 8))) throw new Error(`${path}: header length ${n} is larger than the file or the ${MAX_HEADER_BYTES}-byte limit; not a safetensors file`);
    let header: Record<string, any>;
    try {
      header = JSON.parse(readExactly(fd, Number(n), 8, path).toString('utf8')) as Record<string, any>;
    } catch (e) {
      throw new Error(`${path}: header is not valid JSON (${(e as Error).message})`);
    }
    const dataStart = 8 + Number(n);
    const entries = new Map<string, HeaderEntry>();
    let metadata: Record<string, string> = {};
    for (const [name, e] of Object.entries(header)) {
      if (name === '__metadata__') {
        metadata = (e ?? {}) as Record<string, string>;
        continue;
      }
      const spec = DTYPES[e?.dtype as Dtype];
      if (!spec) throw new Error(`${path}: tensor '${name}' has unsupported dtype ${JSON.stringify(e?.dtype)}`);
      const [b, en] = (e.data_offsets ?? []) as number[];
      const shape = e.shape as number[];
      if (!Array.isArray(shape) || !Number.isSafeInteger(b) || !Number.isSafeInteger(en) || en - b! !== elementCount(shape) * spec.itemSize || dataStart + en! > size) {
        throw new Error(`${path}: tensor '${name}' has a bad shape or data_offsets (${JSON.stringify(shape)}, ${JSON.stringify(e.data_offsets)}) for a ${size}-byte file`);
      }
      entries.set(name, { name, dtype: e.dtype as Dtype, shape, begin: dataStart + b!, end: dataStart + en! });
    }
    return { path, entries, metadata };
  } finally {
    closeSync(fd);
  }
}

/** The dtypes that convert to float32 for a model's parameters. */
export const FLOAT_DTYPES: readonly Dtype[] = ['F32', 'F16', 'BF16', 'F64'];

/** One tensor's values as float32 (BF16 and F16 widen exactly). */
export function readTensorFloat32(header: SafetensorsHeader, entry: HeaderEntry, out?: Float32Array): Float32Array {
  const fd = openSync(header.path, 'r');
  let raw: Buffer;
  try {
    raw = readExactly(fd, entry.end - entry.begin, entry.begin, header.path);
  } finally {
    closeSync(fd);
  }
  const count = elementCount(entry.shape);
  const aligned = new Uint8Array(raw.length);
  aligned.set(raw);
  let values: ArrayLike<number>;
  if (entry.dtype === 'F32') values = new Float32Array(aligned.buffer, 0, count);
  else if (entry.dtype === 'BF16') values = bf16BitsToFloat32(new Uint16Array(aligned.buffer, 0, count));
  else if (entry.dtype === 'F16') values = f16BitsToFloat32(new Uint16Array(aligned.buffer, 0, count));
  else if (entry.dtype === 'F64') values = new Float64Array(aligned.buffer, 0, count);
  else throw new Error(`${header.path}: tensor '${entry.name}' is ${entry.dtype}; model weights must be F32, F16, BF16 or F64`);
  const dst = out ?? new Float32Array(count);
  dst.set(values);
  return dst;
}
