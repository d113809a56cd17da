// `atscale export --format hf` read by a real consumer: @huggingface/transformers, offline,
// generates greedily exactly what `atscale sample` generates, token for token, for a GPT and for
// a Llama-family model (grouped-query attention: the caches hold only the kv heads; Llama 3
// rope scaling); the graph's dynamic dimensions and padding mask hold in plain onnxruntime-node;
// the fp16 and int8 files load and their accuracy change is measured.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { fileURLToPath } from 'node:url';
import * as ort from 'onnxruntime-node';
import { env, AutoTokenizer, AutoModelForCausalLM, type PreTrainedModel, type Tensor as HfTensor } from '@huggingface/transformers';
import { load } from '../../src/serve/load.js';
import { tinyCheckpoint, tinyLlamaCheckpoint } from './fixture.js';

const run = promisify(execFile);
const MAIN = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));
const PROMPTS = ['Hello there', 'Once upon a time', 'What is it?'];
const NEW = 12;

interface Case {
  name: string;
  modelType: string;
  /** Heads and head size the cache inputs declare (kv heads for grouped-query attention). */
  kvHeads: number;
  headDim: number;
  ckpt: string;
  out: string;
}

let root: string;
const cases: Case[] = [];

before(async () => {
  const gpt = tinyCheckpoint('tiny');
  root = dirname(gpt);
  cases.push({ name: 'GPT', modelType: 'gpt2', kvHeads: 2, headDim: 16, ckpt: gpt, out: join(root, 'hf-export') });
  cases.push({ name: 'Llama (GQA 4 on 2, llama3 rope)', modelType: 'llama', kvHeads: 2, headDim: 8, ckpt: tinyLlamaCheckpoint('tiny-llama'), out: join(root, 'hf-export-llama') });
  for (const c of cases) await run(process.execPath, [MAIN, 'export', '--model', c.ckpt, '--format', 'hf', '--out', c.out, '--variants', 'fp16,int8']);
  env.allowRemoteModels = false;
  env.localModelPath = root;
});

test('the folders have what transformers.js needs', () => {
  for (const c of cases) {
    for (const f of ['config.json', 'tokenizer.json', 'tokenizer_config.json', 'generation_config.json', 'onnx/model.onnx', 'onnx/model_fp16.onnx', 'onnx/model_quantized.onnx']) assert.ok(existsSync(join(c.out, f)), `${c.name}: ${f}`);
    const config = JSON.parse(readFileSync(join(c.out, 'config.json'), 'utf8'));
    assert.equal(config.model_type, c.modelType);
    assert.deepEqual(config['transformers.js_config'], { dtype: 'fp32' });
    if (c.modelType === 'llama') {
      assert.equal(config.num_key_value_heads, 2);
      assert.equal(config.num_attention_heads, 4);
      assert.equal(config.rope_scaling.rope_type, 'llama3');
    }
  }
});

test('inputs and outputs have the names and dynamic dimensions of a Hugging Face decoder', async () => {
  for (const c of cases) {
    const s = await ort.InferenceSession.create(join(c.out, 'onnx/model.onnx'));
    assert.deepEqual(s.inputNames, ['input_ids', 'attention_mask', 'position_ids', 'past_key_values.0.key', 'past_key_values.0.value', 'past_key_values.1.key', 'past_key_values.1.value']);
    assert.deepEqual(s.outputNames, ['present.0.key', 'present.0.value', 'present.1.key', 'present.1.value', 'logits']);
    const meta = Object.fromEntries(s.inputMetadata.map((m) => [m.name, m]));
    assert.deepEqual((meta['input_ids'] as unknown as { shape: unknown[] }).shape, ['batch_size', 'sequence_length']);
    assert.deepEqual((meta['past_key_values.0.key'] as unknown as { shape: unknown[] }).shape, ['batch_size', c.kvHeads, 'past_sequence_length', c.headDim], c.name);
    await s.release();
  }
});

test('left padding is masked: a padded batch row gives the logits of the same prompt alone', async () => {
  for (const c of cases) {
    const s = await ort.InferenceSession.create(join(c.out, 'onnx/model.onnx'));
    const tok = load(c.ckpt).tokenizer;
    const a = Array.from(tok.encode('Hello there'));
    const b = Array.from(tok.encode('Hi'));
    const V = tok.vocabSize;
    const feeds = (rows: number[][], masks: number[][]) => {
      const T = rows[0]!.length;
      const i64 = (x: number[][]) => new ort.Tensor('int64', BigInt64Array.from(x.flat().map(BigInt)), [rows.length, T]);
      const pos = masks.map((m) => m.map((_, j) => Math.max(0, m.slice(0, j + 1).reduce((s, v) => s + v, 0) - 1)));
      const f: Record<string, ort.Tensor> = { input_ids: i64(rows), attention_mask: i64(masks), position_ids: i64(pos) };
      for (let i = 0; i < 2; i++) for (const kv of ['key', 'value']) f[`past_key_values.${i}.${kv}`] = new ort.Tensor('float32', new Float32Array(0), [rows.length, c.kvHeads, 0, c.headDim]);
      return f;
    };
    const pad = a.length - b.length;
    const batch = await s.run(feeds([a, [...new Array(pad).fill(0), ...b]], [a.map(() => 1), [...new Array(pad).fill(0), ...b.map(() => 1)]]));
    const alone = await s.run(feeds([b], [b.map(() => 1)]));
    const T = a.length;
    const got = (batch.logits!.data as Float32Array).slice((T + T - 1) * V, (T + T) * V);
    const lastAlone = (alone.logits!.data as Float32Array).slice((b.length - 1) * V, b.length * V);
    for (let i = 0; i < V; i++) assert.ok(Math.abs(got[i]! - lastAlone[i]!) < 1e-3, `${c.name} logit ${i}: ${got[i]} vs ${lastAlone[i]}`);
    await s.release();
  }
});

async function greedy(c: Case, dtype: 'fp32' | 'fp16' | 'q8'): Promise<number[][]> {
  const name = basename(c.out);
  const tokenizer = await AutoTokenizer.from_pretrained(name);
  const model = (await AutoModelForCausalLM.from_pretrained(name, { dtype })) as PreTrainedModel;
  const res: number[][] = [];
  for (const p of PROMPTS) {
    const enc = tokenizer(p) as { input_ids: HfTensor; attention_mask: HfTensor };
    const ids = (await model.generate({ ...enc, max_new_tokens: NEW, do_sample: false } as never)) as HfTensor;
    const all = (ids.tolist() as bigint[][])[0]!.map(Number);
    assert.deepEqual(all.slice(0, p.length), Array.from(load(c.ckpt).tokenizer.encode(p)), 'transformers.js tokenizes like atscale');
    res.push(all.slice(p.length));
  }
  await model.dispose();
  return res;
}

for (const which of ['GPT', 'Llama']) {
  test(`${which}: transformers.js greedy continuations equal atscale sample, token for token`, async (t) => {
    const c = cases.find((x) => x.name.startsWith(which))!;
    const tok = load(c.ckpt).tokenizer;
    const want: number[][] = [];
    for (const p of PROMPTS) {
      const { stdout } = await run(process.execPath, [MAIN, 'sample', '--ckpt', c.ckpt, '--prompt', p, '--max-new-tokens', String(NEW), '--temperature', '0']);
      want.push(Array.from(tok.encode(stdout.slice(p.length, -1))));
    }
    const fp32 = await greedy(c, 'fp32');
    assert.deepEqual(fp32, want);
    // The smaller files: measured, not required to match (int8 changes a random model's argmax).
    const size = (f: string) => statSync(join(c.out, 'onnx', f)).size;
    for (const [dtype, file] of [['fp16', 'model_fp16.onnx'], ['q8', 'model_quantized.onnx']] as const) {
      const got = await greedy(c, dtype);
      const same = got.flat().filter((x, i) => x === fp32.flat()[i]).length;
      t.diagnostic(`${c.name} ${file}: ${(size(file) / size('model.onnx')).toFixed(2)}x the fp32 size; ${same}/${fp32.flat().length} greedy tokens equal fp32`);
      assert.equal(got.flat().length, fp32.flat().length);
    }
  });
}
