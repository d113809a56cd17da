// The mesh arithmetic: coordinates with tp innermost, and every inconsistent layout refused
// before any process starts, with the arithmetic in the message.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { checkLayout, coordsOf, rankOf, stageLayers, type ParallelLayout } from '../../../src/engine/mesh/layout.js';

const layout = (mesh: { dp: number; pp: number; tp: number }, more: Partial<ParallelLayout> = {}): ParallelLayout => ({ mesh, virtual: 1, sequenceParallel: false, recompute: 'full', schedule: '1f1b', ...more });
const model = { nLayer: 4, nHead: 4 };

test('coordinates: tp innermost, then dp, then pp; rankOf inverts coordsOf', () => {
  const shape = { dp: 2, pp: 2, tp: 2 };
  assert.deepEqual([0, 1, 2, 3, 4].map((r) => coordsOf(shape, r)), [
    { dp: 0, pp: 0, tp: 0 }, { dp: 0, pp: 0, tp: 1 }, { dp: 1, pp: 0, tp: 0 }, { dp: 1, pp: 0, tp: 1 }, { dp: 0, pp: 1, tp: 0 },
  ]);
  for (let r = 0; r < 8; r++) assert.equal(rankOf(shape, coordsOf(shape, r)), r);
});

test('a consistent layout gives the layers of each virtual stage', () => {
  assert.deepEqual(checkLayout(layout({ dp: 1, pp: 2, tp: 1 }), { world: 2, ...model, microBatches: 2 }), [2, 2]);
  assert.deepEqual(checkLayout(layout({ dp: 1, pp: 2, tp: 1 }, { virtual: 2 }), { world: 2, ...model, microBatches: 4 }), [1, 1, 1, 1]);
  assert.deepEqual(checkLayout(layout({ dp: 1, pp: 2, tp: 1 }, { split: [3, 1] }), { world: 2, ...model, microBatches: 2 }), [3, 1]);
});

test('bad layouts are refused with the arithmetic', () => {
  const bad: [ParallelLayout, Partial<{ world: number; nLayer: number; nHead: number; microBatches: number }>, RegExp][] = [
    [layout({ dp: 2, pp: 2, tp: 1 }), { world: 8 }, /dp 2 x pp 2 x tp 1 = 4, but the world has 8 processes/],
    [layout({ dp: 1, pp: 1, tp: 3 }), { world: 3 }, /4 attention heads do not divide by tensor-model-parallel size 3 \(4 % 3 = 1\)/],
    [layout({ dp: 1, pp: 8, tp: 1 }), { world: 8, microBatches: 8 }, /8 pipeline stages \(pp 8 x virtual 1\) but only 4 layers/],
    [layout({ dp: 1, pp: 2, tp: 1 }, { virtual: 4 }), { world: 2, nLayer: 12, microBatches: 4 }, /interleave 4 does not divide the 6 layers per pipeline stage \(12 layers \/ pp 2\)/],
    [layout({ dp: 1, pp: 2, tp: 1 }, { split: [1, 2] }), { world: 2 }, /covers 1 \+ 2 = 3 layers but the model has 4: it loses 1 layer/],
    [layout({ dp: 1, pp: 2, tp: 1 }, { split: [3, 2] }), { world: 2 }, /covers 3 \+ 2 = 5 layers but the model has 4: it repeats 1 layer/],
    [layout({ dp: 1, pp: 2, tp: 1 }, { split: [4, 0] }), { world: 2 }, /every stage at least one layer/],
    [layout({ dp: 1, pp: 4, tp: 1 }), { world: 4, microBatches: 2 }, /2 micro-batch\(es\) per step is fewer than pp 4: .* >= 4/],
    [layout({ dp: 1, pp: 1, tp: 1 }, { sequenceParallel: true }), { world: 1 }, /--sequence-parallel needs tensor-model-parallel size > 1/],
  ];
  for (const [l, c, re] of bad) assert.throws(() => checkLayout(l, { world: 1, ...model, microBatches: 4, ...c }), re);
  // GPipe has no in-flight limit: fewer micro-batches than stages is allowed.
  assert.deepEqual(checkLayout(layout({ dp: 1, pp: 4, tp: 1 }, { schedule: 'gpipe' }), { world: 4, ...model, microBatches: 1 }), [1, 1, 1, 1]);
  assert.deepEqual(stageLayers(6, 3, 1), [2, 2, 2]);
});
