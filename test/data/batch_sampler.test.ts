import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Rng } from '../../src/tensor/rng.js';
import { BatchSampler, ShardedBatchSampler, sliceMicroBatch, rankRows } from '../../src/data/batch_sampler.js';

const tokens = Uint16Array.from({ length: 5000 }, (_, i) => (i * 7919) % 65);

test('batches: shape, y is x shifted by one, windows in range', () => {
  const s = new BatchSampler(tokens, 16, 4, new Rng(1));
  const offsets = new BatchSampler(tokens, 16, 4, new Rng(1)).drawOffsets();
  const { x, y, rows, blockSize } = s.next();
  assert.equal(rows, 4);
  assert.equal(blockSize, 16);
  assert.equal(x.length, 64);
  for (let r = 0; r < 4; r++) {
    const o = offsets[r]!;
    assert.ok(o >= 0 && o + 16 < tokens.length);
    assert.deepEqual(Array.from(x.subarray(r * 16, r * 16 + 16)), Array.from(tokens.subarray(o, o + 16)));
    assert.deepEqual(Array.from(y.subarray(r * 16, r * 16 + 16)), Array.from(tokens.subarray(o + 1, o + 17)));
  }
});

test('batches: same seed gives the same stream; saving and restoring the state resumes it', () => {
  const a = new BatchSampler(tokens, 8, 3, new Rng(42));
  const b = new BatchSampler(tokens, 8, 3, new Rng(42));
  for (let i = 0; i < 3; i++) assert.deepEqual(a.next(), b.next());
  const saved = a.getState();
  const expected = [a.next(), a.next(), a.next()];
  const resumed = new BatchSampler(tokens, 8, 3, new Rng(999));
  resumed.setState(JSON.parse(JSON.stringify(saved)));
  assert.deepEqual([resumed.next(), resumed.next(), resumed.next()], expected);
  assert.notDeepEqual(new BatchSampler(tokens, 8, 3, new Rng(43)).next(), new BatchSampler(tokens, 8, 3, new Rng(42)).next());
});

test('batches: block size larger than the data is a clear error', () => {
  assert.throws(() => new BatchSampler(new Uint16Array(100), 256, 4, new Rng(0)), {
    message: 'block size 256 is larger than the data (100 tokens); use a smaller --block-size or more data',
  });
  assert.throws(() => new BatchSampler(new Uint16Array(100), 100, 4, new Rng(0)), /block size 100 is larger than the data \(100 tokens\)/);
  assert.doesNotThrow(() => new BatchSampler(new Uint16Array(101), 100, 4, new Rng(0)).next());
  assert.throws(() => new BatchSampler(tokens, 8, 0, new Rng(0)), /batch size must be a positive integer/);
});

test('sharded sampler: N ranks together draw exactly the single-process global batch', () => {
  const world = 4;
  const single = new BatchSampler(tokens, 12, 8, new Rng(7));
  const ranks = Array.from({ length: world }, (_, r) => new ShardedBatchSampler(tokens, 12, 8, r, world, new Rng(7)));
  const globalView = new ShardedBatchSampler(tokens, 12, 8, 0, world, new Rng(7));
  for (let step = 0; step < 5; step++) {
    const whole = single.next();
    const parts = ranks.map((s) => s.next());
    const x = new Int32Array(whole.x.length);
    const y = new Int32Array(whole.y.length);
    let at = 0;
    for (const p of parts) {
      assert.equal(p.rows, 2);
      x.set(p.x, at);
      y.set(p.y, at);
      at += p.x.length;
    }
    assert.deepEqual(x, whole.x);
    assert.deepEqual(y, whole.y);
    const g = globalView.nextGlobal();
    assert.deepEqual(g.x, whole.x);
    for (let r = 0; r < world; r++) assert.deepEqual(Array.from(sliceMicroBatch(g, r, world).x), Array.from(parts[r]!.x));
  }
  assert.deepEqual(ranks[3]!.getState(), single.getState());
});

test('sharded sampler: bad world sizes are clear errors', () => {
  assert.throws(() => rankRows(10, 0, 3), /global batch size 10 is not divisible by the world size 3/);
  assert.throws(() => rankRows(8, 4, 4), /rank must be an integer in \[0, 4\), got 4/);
});
