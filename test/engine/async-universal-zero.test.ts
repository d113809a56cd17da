// Asynchronous universal saves on real dp2 ZeRO-3 ranks: each rank snapshots its shard at the
// step boundary and writes it in the background, and the ranks publish the manifest together
// at a later boundary. Rank 1 is killed while a save is staged but not yet published: the
// previous complete checkpoint is the newest one and loads, the staged save never appears, and
// `--resume auto` under the launcher finishes the run with the losses and final state (weights
// and AdamW moments, bitwise) of a run never killed (async-save-case.ts).
import { test } from 'node:test';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { meshCase } from './mesh/mesh-case.js';
import { asyncSaveCase, STEPS } from './async-save-case.js';

const { work, MODEL } = meshCase('atscale-async-zero-');
const zero3 = join(work, 'zero3.json');
writeFileSync(zero3, JSON.stringify({
  train_batch_size: 16,
  train_micro_batch_size_per_gpu: 2,
  gradient_accumulation_steps: 4,
  optimizer: { type: 'AdamW', params: { lr: 0.003 } },
  scheduler: { type: 'WarmupCosineLR', params: { total_num_steps: STEPS, warmup_num_steps: 2 } },
  zero_optimization: { stage: 3 },
}));

test('dp2 ZeRO-3, async saves: rank 1 killed with a save in flight; the previous checkpoint loads and resume is bit-exact', () => asyncSaveCase(work, 'zero3', ['train', ...MODEL, '--deepspeed-config', zero3]));

test.after(() => rmSync(work, { recursive: true, force: true }));
