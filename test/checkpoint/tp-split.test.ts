// Tensor-parallel splits as arithmetic: every split kind cuts a tensor into the shards a tp rank
// holds and joins them back bitwise, including fused [q | k | v] parts and a padded vocabulary.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { tpJoinTensor, tpShardShape, tpSplitTensor, type TpSplit } from '../../src/checkpoint/index.js';

const iota = (n: number) => Float32Array.from({ length: n }, (_, i) => i + 0.5);

test('column split with 3 parts takes the same range of each third', () => {
  // [in 2, out 12] = [q | k | v] of 4 columns each; tp 2: rank 0 holds columns 0-1 of each part.
  const full = iota(24);
  const split: TpSplit = { kind: 'column', axis: 1, parts: 3 };
  assert.deepEqual(tpShardShape('w', [2, 12], split, 2), [2, 6]);
  assert.deepEqual([...tpSplitTensor('w', full, [2, 12], split, 2, 0)], [0, 1, 4, 5, 8, 9, 12, 13, 16, 17, 20, 21].map((i) => i + 0.5));
  const shards = [0, 1].map((r) => tpSplitTensor('w', full, [2, 12], split, 2, r));
  assert.deepEqual(tpJoinTensor('w', shards, [2, 12], split), full);
});

test('row, column and padded vocab splits join back bitwise for tp 1-4', () => {
  const cases: [number[], TpSplit][] = [[[8, 6], { kind: 'row', axis: 0 }], [[6, 8], { kind: 'column', axis: 1 }], [[4, 12], { kind: 'column', axis: 1, parts: 3 }], [[13, 4], { kind: 'vocab', axis: 0 }], [[5], { kind: 'replicated' }]];
  for (const [shape, split] of cases) {
    const full = Float32Array.from({ length: shape.reduce((a, b) => a * b) }, () => Math.random() - 0.5);
    for (const tp of [1, 2, 4]) {
      if (split.kind !== 'vocab' && split.kind !== 'replicated' && (shape[split.axis]! / (split.parts ?? 1)) % tp) continue;
      const shards = Array.from({ length: tp }, (_, r) => tpSplitTensor('t', full, shape, split, tp, r));
      assert.ok(Buffer.from(tpJoinTensor('t', shards, shape, split).buffer).equals(Buffer.from(full.buffer)), `${JSON.stringify(split)} tp ${tp}`);
    }
  }
  // 13 vocabulary rows over tp 2: 7 rows each, the last row of rank 1 is zero padding.
  const v = tpSplitTensor('wte', iota(13 * 4), [13, 4], { kind: 'vocab', axis: 0 }, 2, 1);
  assert.equal(v.length, 28);
  assert.deepEqual([...v.subarray(24)], [0, 0, 0, 0]);
});

test('a split that does not divide is refused with the arithmetic', () => {
  assert.throws(() => tpShardShape('h.0.mlp.c_fc.weight', [6, 10], { kind: 'column', axis: 1 }, 4), /tensor "h\.0\.mlp\.c_fc\.weight": column-parallel axis 1 of size 10 does not divide by tp 4 \(10 % 4 = 2\)/);
  assert.throws(() => tpShardShape('w', [6, 12], { kind: 'column', axis: 1, parts: 3 }, 8), /size 4 \(per part, 3 parts\) does not divide by tp 8/);
  assert.throws(() => tpShardShape('w', [6], { kind: 'row', axis: 1 }, 2), /tp split axis 1 is outside its 1 dimension/);
});
