// The Llama decoder's side of the model interface, as the engine and the parallel layers read
// it: units tile the flat layout in order, tensor-parallel splits follow Megatron (q/k/v/gate/up
// by output rows of [out, in], o/down by input columns, embeddings and the untied head by
// vocabulary), and the KV cache holds only the kv heads.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Llama } from '../../src/models/llama.js';
import { cacheShape } from '../../src/models/model.js';
import { FlatLayout } from '../../src/nn/flat.js';

for (const tied of [false, true]) {
  const model = new Llama({ modelType: 'qwen2', nLayer: 2, nHead: 8, nKvHead: 2, nEmbd: 64, intermediateSize: 96, vocabSize: 40, blockSize: 12, qkvBias: true, tieWordEmbeddings: tied });
  const layout = new FlatLayout(model);

  test(`Llama (${tied ? 'tied' : 'untied'} head): units tile the flat layout in order`, () => {
    const u = model.units();
    const order = [...u.embed, ...u.blocks, ...u.head.filter((h) => !u.embed.includes(h))];
    const names = layout.slots.map((s) => s.name);
    let at = 0;
    for (const unit of order) {
      const first = names.findIndex((n) => n.startsWith(unit + '.'));
      assert.equal(first, at, `unit ${unit} starts at slot ${first}, expected ${at}`);
      while (at < names.length && names[at]!.startsWith(unit + '.')) at++;
    }
    assert.equal(at, names.length, 'every parameter belongs to a unit');
    assert.equal(model.paramCount(), layout.size);
  });

  test(`Llama (${tied ? 'tied' : 'untied'} head): tensor-parallel splits`, () => {
    const split = (n: string) => model.tensorParallelSplit(n);
    assert.deepEqual(split('model.embed_tokens.weight'), { kind: 'vocab', axis: 0 });
    for (const p of ['q_proj', 'k_proj', 'v_proj']) {
      assert.deepEqual(split(`model.layers.1.self_attn.${p}.weight`), { kind: 'column', axis: 0 });
      assert.deepEqual(split(`model.layers.1.self_attn.${p}.bias`), { kind: 'column', axis: 0 });
    }
    assert.deepEqual(split('model.layers.0.mlp.gate_proj.weight'), { kind: 'column', axis: 0 });
    assert.deepEqual(split('model.layers.0.mlp.up_proj.weight'), { kind: 'column', axis: 0 });
    assert.deepEqual(split('model.layers.0.self_attn.o_proj.weight'), { kind: 'row', axis: 1 });
    assert.deepEqual(split('model.layers.0.mlp.down_proj.weight'), { kind: 'row', axis: 1 });
    for (const n of ['model.norm.weight', 'model.layers.0.input_layernorm.weight', 'model.layers.0.post_attention_layernorm.weight']) assert.deepEqual(split(n), { kind: 'replicated' });
    if (!tied) assert.deepEqual(split('lm_head.weight'), { kind: 'vocab', axis: 0 });
    // A split axis of a column-parallel k/v weight is whole kv heads: 2 kv heads x 8 dims.
    assert.equal(layout.byName.get('model.layers.0.self_attn.k_proj.weight')!.shape[0], 2 * 8);
  });
}

test('Llama KV caches hold only the kv heads: [B, nKvHead, blockSize, headDim]', () => {
  const model = new Llama({ nLayer: 1, nHead: 8, nKvHead: 2, nEmbd: 64, intermediateSize: 96, vocabSize: 40, blockSize: 12 });
  assert.deepEqual(cacheShape(model.dims, 3), [3, 2, 12, 8]);
});
