import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseSafetensors, serializeSafetensors, writeSafetensorsFile, readSafetensorsFile, DTYPES, type TensorEntry } from '../../src/checkpoint/safetensors.js';

function sample(): Record<string, TensorEntry> {
  return {
    'h.0.attn.weight': { dtype: 'F32', shape: [2, 3], data: Float32Array.from([1, -2, 3.5, 1e-8, -0, Infinity]) },
    f64: { dtype: 'F64', shape: [2], data: Float64Array.from([Math.PI, -1e300]) },
    half: { dtype: 'F16', shape: [3], data: Uint16Array.from([0x3c00, 0xc000, 0x7c00]) },
    bf: { dtype: 'BF16', shape: [1, 1], data: Uint16Array.from([0x3f80]) },
    i64: { dtype: 'I64', shape: [2], data: BigInt64Array.from([-(2n ** 62n), 7n]) },
    i32: { dtype: 'I32', shape: [3], data: Int32Array.from([-1, 0, 2 ** 31 - 1]) },
    u8: { dtype: 'U8', shape: [5], data: Uint8Array.from([0, 1, 2, 254, 255]) },
    u16: { dtype: 'U16', shape: [1], data: Uint16Array.from([65535]) },
    u32: { dtype: 'U32', shape: [1], data: Uint32Array.from([4294967295]) },
    flags: { dtype: 'BOOL', shape: [3], data: Uint8Array.from([1, 0, 1]) },
    scalar: { dtype: 'F32', shape: [], data: Float32Array.from([42]) },
    empty: { dtype: 'F32', shape: [0, 4], data: new Float32Array(0) },
  };
}

test('safetensors: exact bytes of a one-tensor file match the format spec', () => {
  const buf = serializeSafetensors({ t: { dtype: 'F32', shape: [2], data: Float32Array.from([1, 2]) } });
  const json = '{"t":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}';
  const padded = json + ' '.repeat((8 - ((8 + json.length) % 8)) % 8);
  const expected = Buffer.alloc(8 + padded.length + 8);
  expected.writeBigUInt64LE(BigInt(padded.length), 0);
  expected.write(padded, 8, 'utf8');
  expected.writeFloatLE(1, 8 + padded.length);
  expected.writeFloatLE(2, 12 + padded.length);
  assert.deepEqual(buf, expected);
});

test('safetensors: every dtype round trips with metadata; aligned tensors are zero-copy views', () => {
  const tensors = sample();
  const buf = serializeSafetensors(tensors, { format: 'pt', note: 'héllo' });
  const headerLen = Number(buf.readBigUInt64LE(0));
  assert.equal((8 + headerLen) % 8, 0);
  const parsed = parseSafetensors(buf);
  assert.deepEqual(parsed.metadata, { format: 'pt', note: 'héllo' });
  assert.deepEqual(Object.keys(parsed.tensors).sort(), Object.keys(tensors).sort());
  for (const [name, t] of Object.entries(tensors)) {
    const got = parsed.tensors[name]!;
    assert.equal(got.dtype, t.dtype, name);
    assert.deepEqual(got.shape, t.shape, name);
    assert.deepEqual(got.data, t.data, name);
    assert.equal(got.data.buffer, buf.buffer, `${name} should be a view`);
  }
  // At an odd byte offset nothing is aligned: values are copied, still exact.
  const shifted = Buffer.alloc(buf.length + 1);
  buf.copy(shifted, 1);
  const copied = parseSafetensors(shifted.subarray(1));
  assert.notEqual(copied.tensors['f64']!.data.buffer, shifted.buffer);
  assert.deepEqual(copied.tensors['f64']!.data, tensors['f64']!.data);
});

test('safetensors: file writer gives the same bytes and reports its sha256', () => {
  const dir = mkdtempSync(join(tmpdir(), 'atscale-st-'));
  try {
    const path = join(dir, 'x.safetensors');
    const { bytes, sha256 } = writeSafetensorsFile(path, sample(), { a: 'b' });
    const onDisk = readFileSync(path);
    assert.deepEqual(onDisk, serializeSafetensors(sample(), { a: 'b' }));
    assert.equal(bytes, onDisk.length);
    assert.match(sha256, /^[0-9a-f]{64}$/);
    assert.deepEqual(readSafetensorsFile(path).tensors['i64']!.data, sample()['i64']!.data);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

function fileWith(header: object | string, dataBytes: number, headerLenOverride?: bigint): Buffer {
  const text = typeof header === 'string' ? header : JSON.stringify(header);
  const h = Buffer.from(text, 'utf8');
  const buf = Buffer.alloc(8 + h.length + dataBytes);
  buf.writeBigUInt64LE(headerLenOverride ?? BigInt(h.length), 0);
  h.copy(buf, 8);
  return buf;
}

test('safetensors: malformed files are refused with a clear reason', () => {
  const ok = serializeSafetensors(sample());
  const cases: [Buffer | Uint8Array, RegExp][] = [
    [Buffer.alloc(5), /only 5 bytes/],
    [fileWith('{}', 0, 2n ** 40n), /header length 1099511627776 is over the 100000000-byte limit/],
    [fileWith('{}', 0, 50n), /header length 50 runs past the end of the 10-byte file; the file is truncated/],
    [ok.subarray(0, ok.length - 3), /run past the \d+ data bytes; the file is truncated|truncated/],
    [fileWith('{"a": ', 0), /header is not valid JSON/],
    [fileWith('[]', 0), /header must be a JSON object/],
    [fileWith({ a: { dtype: 'F8', shape: [1], data_offsets: [0, 1] } }, 1), /tensor "a" has unsupported dtype "F8"/],
    [fileWith({ a: { dtype: 'F32', shape: [-1], data_offsets: [0, 4] } }, 4), /tensor "a" has invalid shape \[-1\]/],
    [fileWith({ a: { dtype: 'F32', shape: [3], data_offsets: [0, 8] } }, 8), /tensor "a" spans 8 bytes but F32 \[3\] needs 12/],
    [fileWith({ a: { dtype: 'F32', shape: [1], data_offsets: [4, 8] } }, 8), /tensor "a" starts at byte 4 but the previous data ends at 0/],
    [fileWith({ a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] }, b: { dtype: 'F32', shape: [1], data_offsets: [4, 8] } }, 8), /tensor "b" starts at byte 4 but the previous data ends at 8/],
    [fileWith({ a: { dtype: 'F32', shape: [1], data_offsets: [0, 4] } }, 12), /tensors cover 4 data bytes but the file has 12/],
    [fileWith({ a: { dtype: 'F32', shape: [1], data_offsets: [0] } }, 4), /tensor "a" has invalid data_offsets \[0\]/],
    [fileWith({ __metadata__: { k: 1 } }, 0), /__metadata__\["k"\] must be a string/],
  ];
  for (const [buf, re] of cases) assert.throws(() => parseSafetensors(buf, 'bad.safetensors'), (e: Error) => e.message.startsWith('bad.safetensors: ') && re.test(e.message), re.source);
});

test('safetensors: writer rejects inconsistent tensors', () => {
  assert.throws(() => serializeSafetensors({ a: { dtype: 'F32', shape: [3], data: new Float32Array(2) } }), /tensor "a": shape \[3\] has 3 elements but the data has 2/);
  assert.throws(() => serializeSafetensors({ a: { dtype: 'F32', shape: [2], data: new Float64Array(2) } }), /dtype F32 needs a Float32Array, got Float64Array/);
  assert.throws(() => serializeSafetensors({ a: { dtype: 'Q4' as 'F32', shape: [1], data: new Float32Array(1) } }), /unknown dtype "Q4"/);
  assert.equal(Object.keys(DTYPES).length, 13);
});
