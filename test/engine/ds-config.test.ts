// The DeepSpeed-style config: a good config parses into typed fields; each kind of bad input is
// refused with a message that names the key and says what is wanted.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseDeepSpeedConfig } from '../../src/engine/ds-config.js';

const GOOD = {
  train_batch_size: 32,
  train_micro_batch_size_per_gpu: 4,
  gradient_accumulation_steps: 4,
  optimizer: { type: 'AdamW', params: { lr: 6e-4, betas: [0.9, 0.95], eps: 1e-8, weight_decay: 0.1 } },
  scheduler: { type: 'WarmupCosineLR', params: { total_num_steps: 1000, warmup_num_steps: 50, cos_min_ratio: 0.1 } },
  gradient_clipping: 1.0,
  zero_optimization: { stage: 2, reduce_bucket_size: 50_000_000, allgather_bucket_size: 20_000_000, overlap_comm: false, contiguous_gradients: true },
  steps_per_print: 5,
};

test('a good config parses into typed fields', () => {
  const c = parseDeepSpeedConfig(JSON.stringify(GOOD), 2);
  assert.deepEqual([c.trainBatchSize, c.microBatchPerGpu, c.gradAccum, c.worldSize], [32, 4, 4, 2]);
  assert.deepEqual(c.optimizer, { lr: 6e-4, beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0.1 });
  assert.ok(Math.abs(c.schedule.minLr - 6e-5) < 1e-12);
  assert.deepEqual({ ...c.schedule, minLr: 0 }, { lr: 6e-4, minLr: 0, warmupIters: 50, decayIters: 1000 });
  assert.deepEqual(c.zero, { stage: 2, reduceBucketSize: 50_000_000, allgatherBucketSize: 20_000_000, overlapComm: false, contiguousGradients: true });
  assert.equal(c.gradClip, 1);
  assert.equal(c.stepsPerPrint, 5);
});

test('any two batch sizes give the third; defaults fill the rest', () => {
  const { train_batch_size: tb, train_micro_batch_size_per_gpu: mb, gradient_accumulation_steps: ga } = GOOD;
  assert.equal(parseDeepSpeedConfig({ train_batch_size: tb, train_micro_batch_size_per_gpu: mb }, 2).gradAccum, 4);
  assert.equal(parseDeepSpeedConfig({ train_batch_size: tb, gradient_accumulation_steps: ga }, 2).microBatchPerGpu, 4);
  assert.equal(parseDeepSpeedConfig({ train_micro_batch_size_per_gpu: mb, gradient_accumulation_steps: ga }, 2).trainBatchSize, 32);
  const d = parseDeepSpeedConfig({ train_micro_batch_size_per_gpu: 12 }, 1);
  assert.deepEqual([d.trainBatchSize, d.gradAccum, d.zero.stage, d.gradClip, d.optimizer.lr], [12, 1, 0, 0, 1e-3]);
  // Adam is DeepSpeed's Adam in its default adam_w_mode: decoupled decay, the same update.
  assert.equal(parseDeepSpeedConfig({ ...GOOD, optimizer: { type: 'Adam', params: { lr: 1e-4 } } }, 2).optimizer.lr, 1e-4);
  const wd = parseDeepSpeedConfig({ ...GOOD, scheduler: { type: 'WarmupDecayLR', params: { total_num_steps: 100, warmup_num_steps: 10, warmup_max_lr: 2e-3 } } }, 2).schedule;
  assert.deepEqual(wd, { lr: 2e-3, minLr: 0, warmupIters: 10, decayIters: 100 });
  const wl = parseDeepSpeedConfig({ ...GOOD, scheduler: { type: 'WarmupLR', params: { warmup_num_steps: 10 } } }, 2).schedule;
  assert.deepEqual(wl, { lr: 6e-4, minLr: 6e-4, warmupIters: 10, decayIters: 10 });
});

test('bad configs are refused with the key and the fix', () => {
  const bad = (cfg: unknown, world: number, re: RegExp) => assert.throws(() => parseDeepSpeedConfig(cfg, world), re);
  bad({ ...GOOD, train_batch_size: 16 }, 2, /train_batch_size 16 != train_micro_batch_size_per_gpu 4 x gradient_accumulation_steps 4 x world size 2 = 32/);
  bad({ train_batch_size: 30, train_micro_batch_size_per_gpu: 4 }, 2, /cannot derive gradient_accumulation_steps: train_batch_size 30 is not divisible by 8/);
  bad({ gradient_accumulation_steps: 2 }, 1, /needs at least two of train_batch_size/);
  bad({ ...GOOD, fp16: { enabled: true } }, 2, /"fp16": mixed precision needs a GPU device/);
  bad({ ...GOOD, fp17: { enabled: true } }, 2, /unknown key 'fp17'.*known keys: train_batch_size, /);
  bad({ ...GOOD, zero_optimization: { stage: 2, offload_optimizer: {} } }, 2, /unknown key 'zero_optimization.offload_optimizer'.*stage, reduce_bucket_size/);
  bad({ ...GOOD, zero_optimization: { stage: 4 } }, 2, /zero_optimization.stage must be 0, 1, 2 or 3, got 4/);
  bad({ ...GOOD, zero_optimization: { stage: 1, overlap_comm: 'yes' } }, 2, /zero_optimization.overlap_comm must be true or false/);
  bad({ ...GOOD, zero_optimization: { reduce_bucket_size: 0 } }, 2, /zero_optimization.reduce_bucket_size must be a positive integer, got 0/);
  bad({ ...GOOD, optimizer: { type: 'SGD' } }, 2, /optimizer.type must be "AdamW" or "Adam"/);
  bad({ ...GOOD, optimizer: { type: 'AdamW', params: { lr: -1 } } }, 2, /optimizer.params.lr must be a number > 0, got -1/);
  bad({ ...GOOD, optimizer: { type: 'AdamW', params: { betas: [0.9] } } }, 2, /optimizer.params.betas must be two numbers/);
  bad({ ...GOOD, optimizer: { type: 'AdamW', params: { momentum: 0.9 } } }, 2, /unknown key 'optimizer.params.momentum'/);
  bad({ ...GOOD, optimizer: { type: 'Adam', params: { adam_w_mode: false } } }, 2, /adam_w_mode false .* is not supported/);
  bad({ ...GOOD, scheduler: { type: 'OneCycle' } }, 2, /scheduler.type must be one of WarmupCosineLR, WarmupDecayLR, WarmupLR/);
  bad({ ...GOOD, scheduler: { type: 'WarmupCosineLR', params: { warmup_num_steps: 5 } } }, 2, /total_num_steps is required for WarmupCosineLR/);
  bad({ ...GOOD, scheduler: { type: 'WarmupLR', params: { warmup_type: 'log' } } }, 2, /warmup_type must be "linear"/);
  bad({ ...GOOD, scheduler: { type: 'WarmupLR', params: { total_num_steps: 5 } } }, 2, /unknown key 'scheduler.params.total_num_steps'/);
  bad({ ...GOOD, gradient_clipping: -1 }, 2, /gradient_clipping must be a number >= 0, got -1/);
  bad({ ...GOOD, steps_per_print: 1.5 }, 2, /steps_per_print must be a positive integer/);
  bad('{"train_batch_size": ', 1, /not valid JSON/);
  bad([1, 2], 1, /config must be a JSON object/);
  bad(GOOD, 0, /world size must be a positive integer/);
});
