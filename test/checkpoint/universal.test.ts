// The universal checkpoint format on its own (no model): ranks write shards into a staging
// directory and rank 0 commits the manifest; a save that dies before the manifest leaves the
// last good checkpoint loadable; the manifest's partition arithmetic is checked with the
// numbers in the message.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, renameSync, rmSync, truncateSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AsyncCheckpointWriter, checkManifest, finalizeUniversal, shardFileName, UniversalCheckpoint, writeUniversalShard, type TensorInfo, type UniversalShardPart } from '../../src/checkpoint/index.js';

const work = mkdtempSync(join(tmpdir(), 'atscale-universal-'));
test.after(() => rmSync(work, { recursive: true, force: true }));

const INFO: Record<string, TensorInfo> = { w: { shape: [2, 4], tp: { kind: 'column', axis: 1 }, stage: 0 }, b: { shape: [3], tp: { kind: 'replicated' }, stage: 0 } };
const layout = { dp: 2, tp: 1, pp: 1, zero: 1, world: 2 };

/** Two dp ranks split w [0, 5) | [5, 8) and b [0, 3) | -, with values offset by `base`. */
function parts(save: string, base: number): UniversalShardPart[] {
  const vals = (lo: number, hi: number, k: number) => Float32Array.from({ length: hi - lo }, (_, i) => base + k * 100 + lo + i);
  const piece = (name: string, lo: number, hi: number) => ({ name, tpRank: 0, start: lo, end: hi, param: vals(lo, hi, 0), expAvg: vals(lo, hi, 1), expAvgSq: vals(lo, hi, 2) });
  return [
    { run: 'rtest', save, coords: { rank: 0, dp: 0, tp: 0, pp: 0 }, pieces: [piece('w', 0, 5), piece('b', 0, 3)], tensors: INFO },
    { run: 'rtest', save, coords: { rank: 1, dp: 1, tp: 0, pp: 0 }, pieces: [piece('w', 5, 8)], tensors: { w: INFO.w! } },
  ];
}
const finalize = (dir: string, save: string, base: number) => finalizeUniversal(dir, { layout, run: 'rtest', save, order: ['w', 'b'], meta: { iter: base }, files: { 'note.txt': 'hi' } });

function save(dir: string, save: string, base: number, commit = true): void {
  for (const part of parts(save, base)) writeUniversalShard(dir, part);
  if (commit) finalize(dir, save, base);
}

test('shards and manifest round trip; a save that dies before its manifest keeps the last good one', () => {
  const dir = join(work, 'ckpt');
  save(dir, 's1', 1);
  let ck = new UniversalCheckpoint(dir);
  assert.deepEqual([...ck.readFull('w', 'exp_avg_sq')], [201, 202, 203, 204, 205, 206, 207, 208]);
  assert.deepEqual(ck.meta, { iter: 1 });
  assert.equal(ck.files['note.txt'], 'hi');
  // Save 2 writes both shards, then "crashes": no manifest, DIR untouched.
  save(dir, 's2', 1000, false);
  ck = new UniversalCheckpoint(dir);
  assert.deepEqual(ck.meta, { iter: 1 });
  assert.equal(ck.readFull('b', 'param')[0], 1);
  // Save 3 commits; the abandoned staging directory of save 2 is removed, save 1 is DIR.prev.
  save(dir, 's3', 2000);
  assert.deepEqual(new UniversalCheckpoint(dir).meta, { iter: 2000 });
  assert.deepEqual(readdirSync(work).sort(), ['ckpt', 'ckpt.prev']);
  // A crash between the two renames (DIR gone, DIR.prev whole) loads DIR.prev.
  renameSync(dir, join(work, 'elsewhere'));
  assert.deepEqual(new UniversalCheckpoint(dir).meta, { iter: 1 });
  assert.ok(!existsSync(dir));
});

test('shards written by the background writer thread publish the same checkpoint; a shard cut short is never published', async () => {
  const dir = join(work, 'background');
  const writer = new AsyncCheckpointWriter();
  try {
    const write = async (save: string, base: number) => {
      for (const part of parts(save, base)) await (await writer.submitJob({ writer: 'universal-shard', dir, part })).published;
    };
    await write('b1', 7);
    finalize(dir, 'b1', 7);
    const ck = new UniversalCheckpoint(dir);
    assert.deepEqual([...ck.readFull('w', 'exp_avg')], [107, 108, 109, 110, 111, 112, 113, 114]);
    assert.deepEqual(ck.meta, { iter: 7 });
    // Rank 1's shard loses its tail after its record was written (a disk that lied about the
    // write): finalize compares each shard's size with its record and publishes nothing.
    await write('b2', 9);
    truncateSync(join(`${dir}.staging-b2`, shardFileName(1)), 10);
    assert.throws(() => finalize(dir, 'b2', 9), /rank 1's shard rank-0*1\.safetensors has 10 bytes but its record says \d+; not publishing it/);
    assert.deepEqual(new UniversalCheckpoint(dir).meta, { iter: 7 });
  } finally {
    await writer.close();
  }
});

test('finalize refuses a missing rank; the manifest check refuses gaps, overlaps and bad layouts', () => {
  const dir = join(work, 'partial');
  writeUniversalShard(dir, { run: 'rtest', save: 'p1', coords: { rank: 0, dp: 0, tp: 0, pp: 0 }, pieces: [], tensors: {} });
  assert.throws(() => finalizeUniversal(dir, { layout, run: 'rtest', save: 'p1', order: ['w'], meta: {} }), /rank\(s\) 1 of 2 have not written their shard/);
  save(join(work, 'good'), 'g1', 1);
  const m = new UniversalCheckpoint(join(work, 'good')).manifest;
  const edit = (f: (x: typeof m) => void) => {
    const x = JSON.parse(JSON.stringify(m)) as typeof m;
    f(x);
    return () => checkManifest(x, 'manifest.json');
  };
  assert.throws(edit((x) => (x.tensors.w!.pieces[1]!.start = 6)), /manifest\.json: tensor "w": tp shard 0: elements \[5, 6\) are in no shard file/);
  assert.throws(edit((x) => (x.tensors.w!.pieces[1]!.start = 4)), /tensor "w": tp shard 0: elements from 4 are in two shard files/);
  assert.throws(edit((x) => (x.layout.dp = 3)), /layout dp 3 x tp 1 x pp 1 = 3, but world is 2/);
  assert.throws(edit((x) => (x.tensors.w!.tp = { kind: 'column', axis: 1, parts: 3 })), /tensor "w": axis 1 of size 4 is not 3 equal parts \(4 % 3 = 1\)/);
  assert.throws(edit((x) => (x.shards['rank-00001.safetensors']!.dp = 0)), /coordinates dp 0, tp 0, pp 0 are not those of rank 1/);
  assert.throws(edit((x) => ((x.tensors.b as { dtype: string }).dtype = 'BF16')), /tensor "b" has dtype "BF16"; universal checkpoints hold the training dtype's state \(F32, or F64 for a float64 run\) only/);
});
