// The tensor-parallel shard map: over the ranks, every element of the full model is held
// (split ones by exactly one rank, replicated ones by all), GPT's fused c_attn gives each rank
// the same head range of q, k and v, the padded vocabulary rows map nowhere, and slicing then
// writing back reproduces the full buffer.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { GPT } from '../../../src/models/gpt.js';
import { Llama } from '../../../src/models/llama.js';
import { FlatLayout } from '../../../src/nn/flat.js';
import { TensorParallelShard } from '../../../src/engine/mesh/tp-shard.js';
import type { LanguageModel } from '../../../src/models/model.js';

function shards(model: LanguageModel, tp: number): { full: FlatLayout; maps: TensorParallelShard[]; locals: FlatLayout[] } {
  const full = new FlatLayout(model);
  const locals = Array.from({ length: tp }, (_, r) => new FlatLayout(model.tensorParallelShard!({ axis: { name: 'tp', size: tp, rank: r }, sequence: false })));
  return { full, locals, maps: locals.map((l, r) => new TensorParallelShard(model, full, l, r, tp)) };
}

for (const [name, model] of [['GPT', new GPT({ nLayer: 2, nHead: 4, nEmbd: 16, blockSize: 8, vocabSize: 31, bias: true })], ['Llama (GQA, untied)', new Llama({ nLayer: 2, nHead: 4, nKvHead: 2, nEmbd: 16, intermediateSize: 24, vocabSize: 31, blockSize: 8, tieWordEmbeddings: false })]] as const) {
  test(`${name}: tp2 shards cover the full layout once, padding maps nowhere, and slicing round-trips`, () => {
    const { full, maps } = shards(model, 2);
    const held = new Uint8Array(full.size);
    let padding = 0;
    for (const m of maps) {
      m.toFull.forEach((k, i) => {
        if (k < 0) padding++;
        else if (!m.replicated[i] || m.rank === 0) held[k]!++;
      });
    }
    assert.ok(held.every((c) => c === 1), 'every full element held once (replicated counted on rank 0)');
    // 31 tokens padded to 32: one row of 16 on the last rank (per vocabulary-split tensor).
    const vocabTensors = name === 'GPT' ? 1 : 2;
    assert.equal(padding, vocabTensors * 16);
    const values = Float32Array.from({ length: full.size }, (_, i) => i + 1);
    const back = new Float32Array(full.size);
    for (const m of maps) m.shard(values).forEach((v, i) => m.toFull[i]! >= 0 && (back[m.toFull[i]!] = v));
    assert.deepEqual(back, values);
  });
}

test('GPT c_attn: rank r takes its heads from each of the q, k and v thirds', () => {
  const model = new GPT({ nLayer: 1, nHead: 4, nEmbd: 16, blockSize: 8, vocabSize: 32 });
  const { full, locals, maps } = shards(model, 2);
  const n = 'transformer.h.0.attn.c_attn.weight';
  const f = full.byName.get(n)!; // [16, 48]
  const l = locals[1]!.byName.get(n)!; // [16, 24]
  assert.deepEqual(l.shape, [16, 24]);
  // Local columns 0..7 are q columns 8..15; 8..15 are k columns 24..31; 16..23 v columns 40..47.
  const col = (j: number) => (maps[1]!.toFull[l.offset + j]! - f.offset) % 48;
  assert.deepEqual([col(0), col(7), col(8), col(15), col(16), col(23)], [8, 15, 24, 31, 40, 47]);
});
