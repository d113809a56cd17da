// Hugging Face folders in and out: exact HF names and layouts, byte-identical round trips
// (F32 and BF16), sharded folders with an index, GPT-2 files with and without the
// "transformer." prefix and their mask buffers, and bad input named by file and key.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, existsSync, unlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadModelDir, saveModelDir } from '../../src/models/hf/folder.js';
import { Llama } from '../../src/models/llama.js';
import { GPT } from '../../src/models/gpt.js';
import { FlatLayout } from '../../src/nn/flat.js';
import { bf16BitsToFloat32, readSafetensorsFile } from '../../src/checkpoint/index.js';
import { gpt2Spec, llamaSpec, randomTensors, writeHfFolder, LLAMA_CONFIG, LLAMA_SPEC } from './hf-fixture.js';

const tmp = mkdtempSync(join(tmpdir(), 'atscale-hf-'));
test.after(() => rmSync(tmp, { recursive: true, force: true }));
const fixtures = fileURLToPath(new URL('../../../test/data/fixtures/hf-tokenizers/', import.meta.url));

const shapesOf = (m: Llama | GPT) => Object.fromEntries(new FlatLayout(m).slots.map((s) => [s.name, [...s.shape]]));

test('parameter names and layouts are Hugging Face\'s: Llama [out, in] with GQA and Qwen2 biases, GPT-2 Conv1D [in, out]', () => {
  const llama = new Llama({ modelType: 'qwen2', nLayer: 2, nHead: 4, nKvHead: 2, nEmbd: 32, intermediateSize: 48, vocabSize: 50, qkvBias: true, tieWordEmbeddings: true });
  assert.deepEqual(shapesOf(llama), llamaSpec({ layers: 2, hidden: 32, heads: 4, kvHeads: 2, inter: 48, vocab: 50, qkvBias: true, tied: true }));
  const gpt = new GPT({ nLayer: 2, nHead: 2, nEmbd: 16, blockSize: 8, vocabSize: 20, bias: true });
  assert.deepEqual(shapesOf(gpt), gpt2Spec({ layers: 2, embd: 16, positions: 8, vocab: 20 }));
});

/** name -> [dtype, shape, bytes] of every tensor in a folder (one file or shards). */
function tensorsOf(dir: string): Map<string, string> {
  const files = existsSync(join(dir, 'model.safetensors')) ? ['model.safetensors'] : [...new Set(Object.values((JSON.parse(readFileSync(join(dir, 'model.safetensors.index.json'), 'utf8')) as { weight_map: Record<string, string> }).weight_map))];
  const out = new Map<string, string>();
  for (const f of files) {
    for (const [n, t] of Object.entries(readSafetensorsFile(join(dir, f)).tensors)) out.set(n, `${t.dtype} ${JSON.stringify(t.shape)} ${Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength).toString('base64')}`);
  }
  return out;
}

test('HF Llama folder -> atscale -> HF folder: tensors byte-identical (F32 and BF16 kept), config keys kept', () => {
  const src = join(tmp, 'llama-src');
  // Mixed precision: attention weights BF16 (widened exactly on load, written back as BF16).
  writeHfFolder(src, LLAMA_CONFIG, randomTensors(LLAMA_SPEC, 1, (n) => n.includes('self_attn')), 1, { 'tokenizer.json': readFileSync(fixtures + 'llama3.tokenizer.json', 'utf8'), 'tokenizer_config.json': { bos_token: '<|begin_of_text|>', chat_template: '{{ bos_token }}{% for m in messages %}{{ m.content }}{% endfor %}' } });
  const loaded = loadModelDir(src);
  assert.equal(loaded.model.family, 'llama');
  assert.equal(loaded.tokenizerConfig.chatTemplate, '{{ bos_token }}{% for m in messages %}{{ m.content }}{% endfor %}');
  assert.equal(loaded.applyChatTemplate([{ role: 'user', content: 'hi' }, { role: 'assistant', content: ' there' }]), '<|begin_of_text|>hi there');
  const out = join(tmp, 'llama-out');
  saveModelDir(out, { model: loaded.model, params: loaded.params, dtypes: loaded.dtypes, hfConfig: loaded.hfConfig, tokenizer: loaded.tokenizer, tokenizerConfig: loaded.tokenizerConfig.raw });
  assert.deepEqual(tensorsOf(out), tensorsOf(src));
  const config = JSON.parse(readFileSync(join(out, 'config.json'), 'utf8')) as Record<string, unknown>;
  for (const k of ['bos_token_id', 'eos_token_id', 'rope_scaling', 'num_key_value_heads', 'rope_theta']) assert.deepEqual(config[k], (LLAMA_CONFIG as Record<string, unknown>)[k], k);
  assert.equal(loadModelDir(out).tokenizer!.fingerprint(), loaded.tokenizer!.fingerprint());
});

test('HF GPT-2 folder round trip is byte-identical; a GPT2Model file (no prefix, attn.bias/masked_bias buffers, lm_head copy) loads the same', () => {
  const spec = gpt2Spec({ layers: 2, embd: 16, positions: 8, vocab: 20 });
  const tensors = randomTensors(spec, 2);
  const config = { model_type: 'gpt2', n_layer: 2, n_head: 2, n_embd: 16, n_positions: 8, vocab_size: 20, activation_function: 'gelu_new', layer_norm_epsilon: 1e-5 };
  writeHfFolder(join(tmp, 'gpt2-src'), config, tensors);
  const a = loadModelDir(join(tmp, 'gpt2-src'));
  saveModelDir(join(tmp, 'gpt2-out'), { model: a.model, params: a.params });
  assert.deepEqual(tensorsOf(join(tmp, 'gpt2-out')), tensorsOf(join(tmp, 'gpt2-src')));

  const bare: typeof tensors = Object.fromEntries(Object.entries(tensors).map(([n, t]) => [n.replace(/^transformer\./, ''), t]));
  for (let i = 0; i < 2; i++) {
    bare[`h.${i}.attn.bias`] = { dtype: 'F32', shape: [1, 1, 8, 8], data: new Float32Array(64) };
    bare[`h.${i}.attn.masked_bias`] = { dtype: 'F32', shape: [], data: Float32Array.of(-1e4) };
  }
  bare['lm_head.weight'] = tensors['transformer.wte.weight']!;
  writeHfFolder(join(tmp, 'gpt2-bare'), config, bare);
  assert.deepEqual(loadModelDir(join(tmp, 'gpt2-bare')).params, a.params);
});

test('a sharded folder with model.safetensors.index.json loads; saving with a shard size writes shards and an index that load back', () => {
  const tensors = randomTensors(LLAMA_SPEC, 3);
  writeHfFolder(join(tmp, 'one'), LLAMA_CONFIG, tensors);
  writeHfFolder(join(tmp, 'three'), LLAMA_CONFIG, tensors, 3);
  const single = loadModelDir(join(tmp, 'one'));
  const sharded = loadModelDir(join(tmp, 'three'));
  assert.deepEqual(sharded.params, single.params);
  saveModelDir(join(tmp, 'resharded'), { model: single.model, params: single.params, maxShardBytes: 40_000 });
  const index = JSON.parse(readFileSync(join(tmp, 'resharded', 'model.safetensors.index.json'), 'utf8')) as { weight_map: Record<string, string>; metadata: { total_size: number } };
  const files = new Set(Object.values(index.weight_map));
  assert.ok(files.size > 1, `expected several shards, got ${[...files].join(', ')}`);
  for (const f of files) assert.match(f, new RegExp(`^model-\\d{5}-of-${String(files.size).padStart(5, '0')}\\.safetensors$`));
  assert.equal(index.metadata.total_size, single.params.length * 4);
  assert.deepEqual(loadModelDir(join(tmp, 'resharded')).params, single.params);
  assert.deepEqual(tensorsOf(join(tmp, 'resharded')), tensorsOf(join(tmp, 'one')));
});

test('a bf16 folder loads widened exactly; saving as BF16 rounds to nearest, ties to even', () => {
  const tensors = randomTensors(LLAMA_SPEC, 4, () => true);
  writeHfFolder(join(tmp, 'bf16'), { ...LLAMA_CONFIG, torch_dtype: 'bfloat16' }, tensors);
  const m = loadModelDir(join(tmp, 'bf16'));
  const layout = new FlatLayout(m.model);
  for (const s of layout.slots) assert.deepEqual(layout.view(m.params, s.name), bf16BitsToFloat32(tensors[s.name]!.data as Uint16Array), s.name);
  assert.ok(Object.values(m.dtypes).every((d) => d === 'BF16'));
  // 1 + 2^-8 lies halfway between bf16 neighbours 1 and 1 + 2^-7: ties go to the even one (1);
  // 1 + 3 * 2^-8 lies halfway between 1 + 2^-7 and 1 + 2^-6: to 1 + 2^-6.
  const params = m.params.slice();
  const norm = layout.byName.get('model.norm.weight')!;
  params.set([1 + 2 ** -8, 1 + 3 * 2 ** -8, 1 + 2 ** -8 + 2 ** -20], norm.offset);
  saveModelDir(join(tmp, 'bf16-out'), { model: m.model, params, dtypes: m.dtypes });
  const back = loadModelDir(join(tmp, 'bf16-out'));
  assert.deepEqual(Array.from(back.params.subarray(norm.offset, norm.offset + 3)), [1, 1 + 2 ** -6, 1 + 2 ** -7]);
  assert.equal((JSON.parse(readFileSync(join(tmp, 'bf16-out', 'config.json'), 'utf8')) as { torch_dtype: string }).torch_dtype, 'bfloat16');
});

test('bad folders are refused naming the file and the key', () => {
  const base = join(tmp, 'bad');
  const tensors = randomTensors(LLAMA_SPEC, 5);
  const fresh = (name: string, config: object, t = tensors, shards = 1, extra = {}) => {
    const dir = join(base, name);
    writeHfFolder(dir, config, t, shards, extra);
    return dir;
  };
  const refused = (dir: string, ...parts: (string | RegExp)[]) => {
    assert.throws(() => loadModelDir(dir), (e: Error) => {
      for (const p of parts) assert.match(e.message, typeof p === 'string' ? new RegExp(p.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')) : p);
      return true;
    });
  };
  refused(fresh('type', { ...LLAMA_CONFIG, model_type: 'falcon' }), 'config.json', 'model_type', '"falcon"');
  const { ['model.layers.1.mlp.up_proj.weight']: _, ...missing } = tensors;
  refused(fresh('missing', LLAMA_CONFIG, missing), 'model.safetensors', 'model.layers.1.mlp.up_proj.weight', 'missing');
  refused(fresh('shape', { ...LLAMA_CONFIG, intermediate_size: 64 }), 'model.safetensors', 'model.layers.0.mlp.gate_proj.weight', '[48, 32]', 'intermediate_size', '[64, 32]');
  refused(fresh('kv', { ...LLAMA_CONFIG, num_key_value_heads: 4 }), 'model.layers.0.self_attn.k_proj.weight', 'num_key_value_heads');
  const shardDir = fresh('shard', LLAMA_CONFIG, tensors, 2);
  unlinkSync(join(shardDir, 'model-00002-of-00002.safetensors'));
  refused(shardDir, 'model.safetensors.index.json', 'weight_map["', 'model-00002-of-00002.safetensors');
  refused(fresh('vocab', { ...LLAMA_CONFIG, vocab_size: 500 }, randomTensors(llamaSpec({ layers: 2, hidden: 32, heads: 4, kvHeads: 2, inter: 48, vocab: 500 }), 6), 1, { 'tokenizer.json': readFileSync(fixtures + 'llama3.tokenizer.json', 'utf8') }),
    'tokenizer.json', '702 ids', 'vocab_size', '500');
  refused(fresh('extra-layer', { ...LLAMA_CONFIG, num_hidden_layers: 1 }), 'model.layers.1.', 'num_hidden_layers');
  refused(fresh('rope', { ...LLAMA_CONFIG, rope_scaling: { rope_type: 'yarn', factor: 4 } }), 'config.json', 'rope_scaling', 'yarn');
  refused(fresh('window', { ...LLAMA_CONFIG, model_type: 'mistral', sliding_window: 8 }), 'config.json', 'sliding_window');
});
