// The same seed gives the same run, at the thread count training uses. The other training tests
// run at one thread, where ONNX Runtime runs every kernel serially; a kernel that races only
// when split across threads (the embedding's scatter-add once did, once a batch reached about
// 2048 tokens of 128 values) shows here as two runs that drift apart.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runTraining, type RunOptions } from '../../src/engine/train-loop.js';
import { preset } from '../../src/models/presets.js';

const work = mkdtempSync(join(tmpdir(), 'atscale-determinism-'));
const corpus = join(work, 'corpus.txt');
writeFileSync(corpus, Array.from({ length: 400 }, (_, i) => `line ${i}: the quick brown fox jumps over the lazy dog, ${(i * 7919) % 1000} times.\n`).join(''));
// 16 x 128 tokens of 128 values: above the size at which ONNX Runtime splits a kernel's work.
const hyper = { ...preset('cpu-small').train, batchSize: 16, maxIters: 4, evalInterval: 4, evalIters: 1, logInterval: 1, warmupIters: 1, decayIters: 4 };
const options = (out: string): RunOptions => ({ model: { nLayer: 1, nHead: 2, nEmbd: 128, blockSize: 128, dropout: 0.1, bias: false }, hyper, data: corpus, tokenizer: 'char', seed: 5, threads: 2, quiet: true, out });
const losses = (out: string) => readFileSync(join(out, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, number>).filter((r) => 'loss' in r || 'val_loss' in r).map((r) => [r.loss, r.grad_norm, r.val_loss]);
const sha = (p: string) => createHash('sha256').update(readFileSync(p)).digest('hex');

test('two training runs with the same seed at two threads give the same losses and the same weights', async () => {
  const a = join(work, 'a'), b = join(work, 'b');
  await runTraining(options(a));
  await runTraining(options(b));
  assert.deepEqual(losses(b), losses(a));
  assert.equal(sha(join(b, 'ckpt', 'model.safetensors')), sha(join(a, 'ckpt', 'model.safetensors')), 'the trained weights differ between two runs of the same seed');
});
