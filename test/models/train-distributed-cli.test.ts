// `atscale launch ... -- atscale train --deepspeed-config` end to end: two ranks with ZeRO
// stage 2 give the losses of one process with the same config, and sample from the sharded
// checkpoint works.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const CLI = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));
const work = mkdtempSync(join(tmpdir(), 'atscale-dtrain-'));
const corpus = join(work, 'corpus.txt');
writeFileSync(corpus, Array.from({ length: 300 }, (_, i) => `${i} little pigs went to market, ${i * 7} stayed home.\n`).join(''));
const config = join(work, 'ds.json');
writeFileSync(config, JSON.stringify({
  train_batch_size: 8,
  train_micro_batch_size_per_gpu: 4,
  optimizer: { type: 'AdamW', params: { lr: 0.002, betas: [0.9, 0.99], eps: 1e-8, weight_decay: 0.1 } },
  scheduler: { type: 'WarmupCosineLR', params: { total_num_steps: 12, warmup_num_steps: 3 } },
  gradient_clipping: 1.0,
  zero_optimization: { stage: 2, reduce_bucket_size: 20000 },
}));
const TRAIN = ['train', '--deepspeed-config', config, '--data', corpus, '--n-layer', '2', '--n-head', '2', '--n-embd', '32', '--block-size', '16', '--max-iters', '12', '--eval-interval', '6', '--eval-iters', '2', '--log-interval', '1', '--threads', '1', '--peak-gflops', '10', '--quiet'];

function losses(dir: string): number[] {
  return readFileSync(join(dir, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { loss?: number }).filter((r) => r.loss !== undefined).map((r) => r.loss!);
}

test('2 ranks with ZeRO stage 2 train exactly like 1 process with the same DeepSpeed config', () => {
  const one = spawnSync(process.execPath, [CLI, ...TRAIN, '--out', join(work, 'one')], { encoding: 'utf8', timeout: 240_000, env: { ...process.env, WORLD_SIZE: '1' } });
  assert.equal(one.status, 0, one.stderr);
  const two = spawnSync(process.execPath, [CLI, 'launch', '--nproc-per-node', '2', '--', process.execPath, CLI, ...TRAIN, '--out', join(work, 'two')], { encoding: 'utf8', timeout: 240_000 });
  assert.equal(two.status, 0, two.stdout + two.stderr);
  const a = losses(join(work, 'one'));
  const b = losses(join(work, 'two'));
  assert.equal(a.length, 12);
  assert.equal(b.length, 12);
  a.forEach((x, i) => assert.ok(Math.abs(x - b[i]!) / x < 1e-5, `step ${i}: 1 process ${x}, 2 ranks ${b[i]}`));
  const sample = spawnSync(process.execPath, [CLI, 'sample', '--ckpt', join(work, 'two', 'ckpt'), '--prompt', '1', '--max-new-tokens', '10'], { encoding: 'utf8', timeout: 60_000 });
  assert.equal(sample.status, 0, sample.stderr);
  assert.ok(sample.stdout.length >= 11);
});

test.after(() => rmSync(work, { recursive: true, force: true }));
