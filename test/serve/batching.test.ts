// Continuous batching: a request's greedy output is the same alone, in a full batch, and when
// it joins a batch whose other rows are mid-prefill or mid-decode; and it equals `atscale
// sample`'s KV-cache generator. Prompts longer than the prefill chunk are read in chunks.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Batcher, type FinishReason } from '../../src/serve/batcher.js';
import { load } from '../../src/serve/load.js';
import { Generator } from '../../src/engine/generate.js';
import { Rng } from '../../src/tensor/rng.js';
import { tinyCheckpoint } from './fixture.js';
import { Llama } from '../../src/models/llama.js';
import { FlatLayout } from '../../src/nn/flat.js';
import { WeightsFile } from '../../src/runtime/weights-file.js';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const served = load(tinyCheckpoint('batching'));
const greedy = { temperature: 0, topP: 1, topK: 0, presencePenalty: 0, frequencyPenalty: 0, topLogprobs: -1 };
const prompts = ['Hi', 'Once upon a time there was a', 'To be, or not to be: that is the question. Whether', 'abc'];
const encode = (s: string) => Array.from(served.tokenizer.encode(s));

function generate(b: Batcher, prompt: number[], maxTokens: number): Promise<{ ids: number[]; reason: FinishReason }> {
  const ids: number[] = [];
  return new Promise((resolve) =>
    b.submit({ prompt, maxTokens, sampling: greedy, rng: new Rng(0), onToken: (t) => (ids.push(t.id), true), onDone: (reason) => resolve({ ids, reason }) }),
  );
}

test('greedy output is the same alone, in a full batch, and joining mid-flight', async () => {
  const b = new Batcher(served.model, served.params, { slots: 4, prefillChunk: 8 });
  const n = 12;
  const alone: number[][] = [];
  for (const p of prompts) alone.push((await generate(b, encode(p), n)).ids);
  const together = await Promise.all(prompts.map((p) => generate(b, encode(p), n)));
  assert.deepEqual(together.map((r) => r.ids), alone);
  assert.ok(together.every((r) => r.reason === 'length'));
  // Staggered: the long prompt arrives while the others are decoding; more requests than slots.
  const first = prompts.map((p) => generate(b, encode(p), n));
  await new Promise((r) => setTimeout(r, 5));
  const late = [generate(b, encode(prompts[2]!), n), generate(b, encode(prompts[0]!), n)];
  const all = await Promise.all([...first, ...late]);
  assert.deepEqual(all.map((r) => r.ids), [...alone, alone[2], alone[0]]);
  assert.equal(b.running, 0);
  assert.equal(b.promptTokens, 3 * prompts.reduce((s, p) => s + p.length, 0) + prompts[2]!.length + prompts[0]!.length);
});

test('the cache pool holds only the live positions: its length follows the longest sequence', async () => {
  // Context 64: the pool takes 16, 32 or 64 positions. The first test's runs already cross
  // these lengths ('Hi' alone fits in 16, beside the long prompt it runs at 64) with equal output.
  const b = new Batcher(served.model, served.params, { slots: 2, prefillChunk: 8 });
  const lengths = (prompt: number[], n: number, beside?: number[]) => {
    const seen: number[] = [];
    const ids: number[] = [];
    const run = (p: number[], keep: boolean) => new Promise<void>((resolve) => b.submit({ prompt: p, maxTokens: n, sampling: greedy, rng: new Rng(0), onToken: (t) => (keep && (ids.push(t.id), seen.push(b.cacheLength)), true), onDone: () => resolve() }));
    return Promise.all([run(prompt, true), ...(beside ? [run(beside, false)] : [])]).then(() => ({ seen: [...new Set(seen)], ids }));
  };
  const short = await lengths(encode('Hi'), 12);
  assert.deepEqual(short.seen, [16]);
  const long = await lengths(encode(prompts[1]!), 20);
  assert.deepEqual(long.seen, [32, 64]);
  const beside = await lengths(encode('Hi'), 12, encode(prompts[2]!));
  // Beside a long prompt read 8 tokens a step, the pool grows under the short sequence.
  assert.deepEqual(beside.seen, [16, 32, 64]);
  assert.deepEqual(beside.ids, short.ids);
});

test('batched greedy equals atscale sample (the single-sequence KV-cache generator)', async () => {
  const b = new Batcher(served.model, served.params, { slots: 3, prefillChunk: 5 });
  const gen = new Generator(served.model, served.params);
  for (const p of prompts.slice(0, 3)) {
    const want = await gen.generate(encode(p), { maxNewTokens: 10, temperature: 0, seed: 0 });
    assert.deepEqual((await generate(b, encode(p), 10)).ids, want, `prompt ${JSON.stringify(p)}`);
  }
});

test('the graphs read the weights from one file: packed or not, greedy output equals atscale sample, and the file is gone once they are built', async () => {
  const gen = new Generator(served.model, served.params);
  const want = await gen.generate(encode(prompts[1]!), { maxNewTokens: 10, temperature: 0, seed: 0 });
  assert.throws(() => new Batcher(served.model, served.params, { slots: 1, prefillChunk: 8, packWeights: 'maybe' as never }), /packWeights must be true, false or 'auto', got "maybe"/);
  const before = new Set(readdirSync(tmpdir()).filter((f) => f.startsWith('atscale-weights-')));
  for (const packWeights of [true, false]) {
    const b = new Batcher(served.model, served.params, { slots: 2, prefillChunk: 8, packWeights });
    await b.compile();
    assert.equal(b.packed, packWeights);
    assert.deepEqual(readdirSync(tmpdir()).filter((f) => f.startsWith('atscale-weights-') && !before.has(f)), []);
    assert.deepEqual((await generate(b, encode(prompts[1]!), 10)).ids, want, `packWeights ${packWeights}`);
  }
});

test('where no weights file can be written, each graph keeps its own copy, says why, and generates the same', async () => {
  const want = await new Generator(served.model, served.params).generate(encode(prompts[0]!), { maxNewTokens: 8, temperature: 0, seed: 0 });
  const saved = process.env['TMPDIR'];
  process.env['TMPDIR'] = '/proc/version'; // a file, not a folder: mkdtemp under it fails
  try {
    const b = new Batcher(served.model, served.params, { slots: 1, prefillChunk: 8, packWeights: false });
    await b.compile();
    assert.match(b.weightsFileError ?? '', /ENOTDIR|EACCES|ENOENT/);
    assert.equal(b.packed, true);
    assert.deepEqual((await generate(b, encode(prompts[0]!), 8)).ids, want);
  } finally {
    if (saved === undefined) delete process.env['TMPDIR'];
    else process.env['TMPDIR'] = saved;
  }
});

test('a weights file writes each tensor once, at 64 KiB boundaries, and finds the memory a view covers', () => {
  const a = new Float32Array(10), other = new Float32Array(4);
  const w = new WeightsFile([a.subarray(0, 4), other, a.subarray(0, 4), a.subarray(4, 10)]);
  try {
    assert.equal(w.locate(a.subarray(0, 4)), 0);
    assert.equal(w.locate(other), 65536);
    assert.equal(w.locate(a.subarray(4, 10)), 2 * 65536);
    assert.equal(w.locate(a.subarray(4, 8)), undefined);
    assert.equal(w.locate(new Float32Array(4)), undefined);
    assert.equal(statSync(join(w.folder, w.name)).size, 2 * 65536 + 24);
  } finally {
    w.remove();
  }
  assert.ok(!existsSync(w.folder));
});

test('a cancelled sequence leaves its slot before the next step', async () => {
  const b = new Batcher(served.model, served.params, { slots: 2, prefillChunk: 8 });
  let seen = 0;
  const reason = await new Promise<FinishReason>((resolve) => {
    const seq = { prompt: encode('Hello'), maxTokens: 50, sampling: greedy, rng: new Rng(0), cancelled: false, onToken: () => (++seen === 3 && (seq.cancelled = true), true), onDone: (r: FinishReason) => resolve(r) };
    b.submit(seq);
  });
  assert.equal(reason, 'cancelled');
  assert.equal(seen, 3);
  assert.equal(b.running, 0);
  assert.throws(() => b.submit({ prompt: encode('x'.repeat(60)), maxTokens: 10, sampling: greedy, rng: new Rng(0), onToken: () => true, onDone: () => {} }), /exceeds the context of 64 tokens/);
});

test('a Llama-family model (GQA) batches the same way: alone = together', async () => {
  const model = new Llama({ nLayer: 2, nHead: 4, nKvHead: 2, nEmbd: 32, intermediateSize: 40, blockSize: 32, vocabSize: 13, tieWordEmbeddings: true });
  const params = new FlatLayout(model).initialise(5).map((x) => x * 8);
  const b = new Batcher(model, params, { slots: 4, prefillChunk: 4 });
  const seqs = [[1, 2, 3], [4, 5, 6, 7, 8, 9, 10, 11, 12], [3], [7, 7, 7, 7, 7]];
  const alone: number[][] = [];
  for (const p of seqs) alone.push((await generate(b, p, 10)).ids);
  const together = await Promise.all(seqs.map((p) => generate(b, p, 10)));
  assert.deepEqual(together.map((r) => r.ids), alone);
});

test('no sequence starves: under a steady stream of short requests every one finishes', async () => {
  // Four clients, each sending its next 2-token request as soon as the last one ends, keep all
  // slots busy and one prompt waiting per step. The first request of the client in the highest
  // slot must finish long before the stream ends (reading the shortest prompt first never
  // served it: new requests kept taking the lower slots).
  const b = new Batcher(served.model, served.params, { slots: 4, prefillChunk: 8, prefillRows: 1 });
  let finished = 0;
  const finishedAt: number[] = [];
  await Promise.all([0, 1, 2, 3].map(async (client) => {
    for (let i = 0; finished < 200; i++) {
      await generate(b, encode('Hi'), 2);
      if (i === 0) finishedAt[client] = finished;
      finished++;
    }
  }));
  assert.equal(finishedAt.length, 4);
  for (const at of finishedAt) assert.ok(at < 20, `a client's first request finished after ${at} others`);
  assert.equal(b.running, 0);
});
