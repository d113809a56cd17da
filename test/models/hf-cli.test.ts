// The CLI on Hugging Face folders, as a user runs it (real processes): `atscale sample --model DIR
// --temperature 0` prints the greedy continuation (checked against argmax of full forwards),
// `atscale save --format hf` re-shards and converts to bf16, `atscale export --model DIR` gives an
// ONNX model that plain onnxruntime-node runs to the same logits.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as ort from 'onnxruntime-node';
import { loadModelDir } from '../../src/models/hf/folder.js';
import { FlatLayout, flatView, withParams } from '../../src/nn/flat.js';
import { buildProgram } from '../../src/tensor/program.js';
import { compile } from '../../src/runtime/execute.js';
import { hostValue } from '../../src/ir/value.js';
import { randomTensors, writeHfFolder, LLAMA_CONFIG, LLAMA_SPEC } from './hf-fixture.js';

const CLI = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));
const fixtures = fileURLToPath(new URL('../../../test/data/fixtures/hf-tokenizers/', import.meta.url));
const tmp = mkdtempSync(join(tmpdir(), 'atscale-hf-cli-'));
test.after(() => rmSync(tmp, { recursive: true, force: true }));

const dir = join(tmp, 'llama');
writeHfFolder(dir, LLAMA_CONFIG, randomTensors(LLAMA_SPEC, 9), 1, {
  'tokenizer.json': readFileSync(fixtures + 'llama3.tokenizer.json', 'utf8'),
  'tokenizer_config.json': { bos_token: '<|begin_of_text|>', eos_token: '<|eot_id|>', add_bos_token: true },
});

function atscale(...args: string[]): string {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', timeout: 120_000 });
  assert.equal(r.status, 0, `atscale ${args.join(' ')} failed: ${r.stderr}`);
  return r.stdout;
}

/** Logits [T, V] of the full forward over ids. */
async function logitsOf(folder: string, ids: number[]): Promise<Float32Array> {
  const { model, params } = loadModelDir(folder);
  const layout = new FlatLayout(model);
  const program = buildProgram((t) => {
    const p = t.input('params', [layout.size]);
    const idx = t.input('idx', [1, ids.length], 'int32');
    return withParams(layout.slots, (s) => flatView(p, s), () => ({ inputs: [p, idx], outputs: [model.forward(idx)] }));
  });
  const [out] = await (await compile(program)).run([hostValue('float32', [layout.size], params), hostValue('int32', [1, ids.length], ids)]);
  return out!.data as Float32Array;
}

/** Greedy continuation by argmax over repeated full forwards (no KV cache). */
async function greedy(folder: string, prompt: string, n: number): Promise<string> {
  const { tokenizer, model } = loadModelDir(folder);
  const ids = [700, ...tokenizer!.encode(prompt)];
  const fresh: number[] = [];
  const V = model.dims.vocabSize;
  for (let i = 0; i < n; i++) {
    const logits = await logitsOf(folder, ids);
    const last = logits.subarray((ids.length - 1) * V, ids.length * V);
    const next = last.indexOf(Math.max(...last));
    ids.push(next);
    fresh.push(next);
  }
  return prompt + tokenizer!.decode(fresh) + '\n';
}

test('atscale sample --model HF_DIR --temperature 0 prints the greedy continuation (BOS added per tokenizer_config)', async () => {
  const prompt = 'Fellow citizens, 2024 ';
  const out = atscale('sample', '--model', dir, '--prompt', prompt, '--max-new-tokens', '6', '--temperature', '0');
  assert.equal(out, await greedy(dir, prompt, 6));
});

test('atscale save --format hf --dtype bf16 --max-shard-bytes: a sharded bf16 folder that samples', () => {
  const out = join(tmp, 'bf16-sharded');
  atscale('save', '--model', dir, '--format', 'hf', '--out', out, '--dtype', 'bf16', '--max-shard-bytes', '30000');
  const files = readdirSync(out);
  assert.ok(files.includes('model.safetensors.index.json') && files.filter((f) => /^model-\d{5}-of-\d{5}\.safetensors$/.test(f)).length > 1, files.join(', '));
  assert.ok(files.includes('tokenizer.json') && files.includes('tokenizer_config.json'));
  const loaded = loadModelDir(out);
  assert.ok(Object.values(loaded.dtypes).every((d) => d === 'BF16'));
  assert.match(atscale('sample', '--model', out, '--prompt', 'Fellow', '--max-new-tokens', '3', '--temperature', '0'), /^Fellow/);
});

test('atscale export --model HF_DIR: plain onnxruntime-node gives atscale\'s logits', async () => {
  const onnx = join(tmp, 'llama.onnx');
  atscale('export', '--model', dir, '--out', onnx, '--seq', '5');
  const ids = [700, 5, 17, 300, 2];
  const session = await ort.InferenceSession.create(onnx);
  const r = await session.run({ input_ids: new ort.Tensor('int64', BigInt64Array.from(ids.map(BigInt)), [1, 5]) });
  const theirs = r['logits']!.data as Float32Array;
  const ours = await logitsOf(dir, ids);
  let err = 0;
  for (let i = 0; i < ours.length; i++) err = Math.max(err, Math.abs(ours[i]! - theirs[i]!));
  assert.ok(err < 1e-5, `max |difference| ${err}`);
});

test('atscale train --model HF_DIR fine-tunes the folder\'s weights with its tokenizer; the checkpoint samples and saves back as an HF folder', () => {
  const corpus = join(tmp, 'corpus.txt');
  writeFileSync(corpus, Array.from({ length: 200 }, (_, i) => `Fellow citizens, in the year ${1790 + i} the union grew.`).join('\n'));
  const out = join(tmp, 'ft');
  atscale('train', '--model', dir, '--data', corpus, '--max-iters', '4', '--batch-size', '2', '--block-size', '16', '--eval-interval', '4', '--eval-iters', '1', '--out', out, '--peak-gflops', '1', '--quiet', '--threads', '2');
  const losses = readFileSync(join(out, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { loss?: number }).filter((r) => r.loss !== undefined).map((r) => r.loss!);
  assert.ok(losses.length > 0 && losses.every(Number.isFinite), String(losses));
  assert.match(atscale('sample', '--model', join(out, 'ckpt'), '--prompt', 'Fellow', '--max-new-tokens', '3', '--temperature', '0'), /^Fellow/);
  const hfOut = join(tmp, 'ft-hf');
  atscale('save', '--model', join(out, 'ckpt'), '--format', 'hf', '--out', hfOut);
  const back = loadModelDir(hfOut);
  const src = loadModelDir(dir, { blockSize: 16 });
  assert.equal(back.model.family, 'llama');
  assert.deepEqual(new FlatLayout(back.model).slots.map((s) => s.name), new FlatLayout(src.model).slots.map((s) => s.name));
  assert.notDeepEqual(back.params, src.params, 'training changed the weights');
  assert.equal(back.tokenizer!.fingerprint(), src.tokenizer!.fingerprint());
});
