import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { saveShardedCheckpoint, finalizeShardedCheckpoint, consolidateCheckpoint, ShardedCheckpoint, type FlatSlot } from '../../src/checkpoint/sharded.js';
import { readSafetensorsFile } from '../../src/checkpoint/safetensors.js';

const SHARDED_MODULE = new URL('../../src/checkpoint/sharded.js', import.meta.url).href;
const run = promisify(execFile);

// One flat parameter buffer of 1000 elements, split unevenly over 3 ranks; tensor "b" spans
// ranks 0 and 1, tensor "c" spans ranks 1 and 2 (as ZeRO-3 partitions do).
const TOTAL = 1000;
const CHUNKS: [number, number][] = [[0, 150], [150, 650], [650, 1000]];
const LAYOUT: Record<string, FlatSlot> = {
  a: { flat: 'params', offset: 0, shape: [10, 10] },
  b: { flat: 'params', offset: 100, shape: [300] },
  c: { flat: 'params', offset: 400, shape: [20, 30] },
};
const full = Float32Array.from({ length: TOTAL }, (_, i) => Math.sin(i) * 100);
const exp = Float32Array.from({ length: TOTAL }, (_, i) => i * 0.5);

function partOf(rank: number) {
  const [s, e] = CHUNKS[rank]!;
  return {
    flats: {
      params: { dtype: 'F32' as const, totalLength: TOTAL, start: s, data: full.slice(s, e) },
      'adam.v': { dtype: 'F32' as const, totalLength: TOTAL, start: s, data: exp.slice(s, e) },
    },
    layout: LAYOUT,
    ...(rank === 0
      ? { tensors: { step: { dtype: 'I64' as const, shape: [1], data: BigInt64Array.from([12n]) } }, meta: { step: 12, world: 3 }, files: { 'tokenizer.json': '{"kind":"char","chars":["x"]}' } }
      : {}),
  };
}

function withDir(fn: (root: string) => void | Promise<void>): () => Promise<void> {
  return async () => {
    const root = mkdtempSync(join(tmpdir(), 'atscale-shard-'));
    try {
      await fn(root);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  };
}

test('sharded: three rank processes save, one finalizes; consolidation rebuilds every tensor', withDir(async (root) => {
  const dir = join(root, 'ckpt');
  // Each rank is a real process that computes only its own chunk (same formulas as above).
  await Promise.all([0, 1, 2].map((rank) => {
    const script = `
      const { saveShardedCheckpoint } = await import(${JSON.stringify(SHARDED_MODULE)});
      const [s, e] = ${JSON.stringify(CHUNKS)}[${rank}];
      const range = (f) => Float32Array.from({ length: e - s }, (_, j) => f(s + j));
      saveShardedCheckpoint(${JSON.stringify(dir)}, ${rank}, 3, 'step-12', {
        flats: {
          params: { dtype: 'F32', totalLength: ${TOTAL}, start: s, data: range((i) => Math.sin(i) * 100) },
          'adam.v': { dtype: 'F32', totalLength: ${TOTAL}, start: s, data: range((i) => i * 0.5) },
        },
        layout: ${JSON.stringify(LAYOUT)},
        ...(${rank} === 0 ? { tensors: { step: { dtype: 'I64', shape: [1], data: BigInt64Array.from([12n]) } }, meta: { step: 12, world: 3 }, files: { 'tokenizer.json': '{"kind":"char","chars":["x"]}' } } : {}),
      });`;
    return run(process.execPath, ['--input-type=module', '-e', script]);
  }));
  const index = finalizeShardedCheckpoint(dir, 3, 'step-12');
  assert.deepEqual(index.flats['params']!.chunks, [{ rank: 0, start: 0, end: 150 }, { rank: 1, start: 150, end: 650 }, { rank: 2, start: 650, end: 1000 }]);
  assert.deepEqual(index.tensors['b'], { dtype: 'F32', shape: [300], flat: 'params', range: [100, 400], ranks: [0, 1] });
  assert.deepEqual(index.tensors['c'], { dtype: 'F32', shape: [20, 30], flat: 'params', range: [400, 1000], ranks: [1, 2] });
  assert.deepEqual(index.tensors['step'], { dtype: 'I64', shape: [1], rank: 0 });
  assert.deepEqual(index.files, { '0': 'rank-00000-of-00003.safetensors', '1': 'rank-00001-of-00003.safetensors', '2': 'rank-00002-of-00003.safetensors' });
  assert.deepEqual(readdirSync(root), ['ckpt']);

  const out = join(root, 'model.safetensors');
  assert.equal(consolidateCheckpoint(dir, out), 4);
  const merged = readSafetensorsFile(out);
  assert.deepEqual(merged.tensors['a']!.data, full.slice(0, 100));
  assert.deepEqual(merged.tensors['b']!.data, full.slice(100, 400));
  assert.deepEqual(merged.tensors['c']!.shape, [20, 30]);
  assert.deepEqual(merged.tensors['c']!.data, full.slice(400, 1000));
  assert.deepEqual(merged.tensors['step']!.data, BigInt64Array.from([12n]));
  assert.deepEqual(JSON.parse(merged.metadata['atscale.meta']!), { step: 12, world: 3 });

  // Resharding: a 2-rank ZeRO run reads its halves of the optimizer buffer from 3-rank files.
  const ckpt = new ShardedCheckpoint(dir);
  assert.deepEqual(ckpt.readFlatRange('adam.v', 0, 500), exp.slice(0, 500));
  assert.deepEqual(ckpt.readFlatRange('adam.v', 500, 1000), exp.slice(500, 1000));
  assert.equal(ckpt.files['tokenizer.json'], '{"kind":"char","chars":["x"]}');
  assert.throws(() => ckpt.readFlatRange('adam.v', 900, 1001), /range \[900, 1001\) is outside \[0, 1000\)/);
}));

test('sharded: missing ranks, gaps, overlaps and tampered shards are clear errors', withDir((root) => {
  const dir = join(root, 'ckpt');
  saveShardedCheckpoint(dir, 0, 3, 1, partOf(0));
  saveShardedCheckpoint(dir, 2, 3, 1, partOf(2));
  assert.throws(() => finalizeShardedCheckpoint(dir, 3, 1), /rank\(s\) 1 of 3 have not written their shard/);
  // Rank 1 saves too little: elements [600, 650) belong to nobody.
  const short = partOf(1);
  short.flats.params.data = short.flats.params.data.slice(0, 450);
  short.flats['adam.v'].data = short.flats['adam.v'].data.slice(0, 450);
  saveShardedCheckpoint(dir, 1, 3, 1, short);
  assert.throws(() => finalizeShardedCheckpoint(dir, 3, 1), /flat buffer "(params|adam\.v)": rank 2's chunk starts at 650 but elements \[600, 650\) are saved by no rank/);
  // Rank 1 saves too much: overlap with rank 2.
  const long = partOf(1);
  long.flats.params = { ...long.flats.params, data: full.slice(150, 700) };
  saveShardedCheckpoint(dir, 1, 3, 1, long);
  assert.throws(() => finalizeShardedCheckpoint(dir, 3, 1), /rank 2's chunk starts at 650 but elements before 700 are saved twice/);
  assert.throws(() => saveShardedCheckpoint(dir, 3, 3, 1, partOf(0)), /rank must be an integer in \[0, 3\), got 3/);
  assert.throws(() => saveShardedCheckpoint(dir, 0, 3, 1, { flats: { p: { dtype: 'F32', totalLength: 10, start: 5, data: new Float32Array(6) } } }), /range \[5, 11\) is outside \[0, 10\)/);

  saveShardedCheckpoint(dir, 1, 3, 1, partOf(1));
  finalizeShardedCheckpoint(dir, 3, 1);
  const file = join(dir, 'rank-00001-of-00003.safetensors');
  const bytes = readFileSync(file);
  bytes[bytes.length - 1]! ^= 0x80;
  writeFileSync(file, bytes);
  assert.throws(() => new ShardedCheckpoint(dir), /rank-00001-of-00003\.safetensors does not match its sha256/);
  assert.throws(() => consolidateCheckpoint(dir, join(root, 'out.safetensors')), /refusing to load/);
  assert.deepEqual(readdirSync(root).filter((n) => n.startsWith('out')), []);
}));
