// Dropout does not depend on the data-parallel degree on the ZeRO steps either: plain dp2 (ZeRO-0)
// and dp2 with ZeRO-3, each rank holding half of every micro-batch, draw the masks one process
// draws for the whole batch (the key carries the rank's first global row), so 20 steps with
// dropout 0.1 give the one-process losses within 1e-5 relative.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { meshCase, runTrain as run, sameLosses } from './mesh-case.js';

const { work, MODEL } = meshCase('atscale-dp-dropout-');

function config(micro: number, stage: number): string {
  const p = join(work, `ds-${micro}-${stage}.json`);
  writeFileSync(p, JSON.stringify({ train_micro_batch_size_per_gpu: micro, gradient_accumulation_steps: 4, optimizer: { type: 'AdamW', params: { lr: 0.003, betas: [0.9, 0.99], weight_decay: 0.1 } }, gradient_clipping: 1.0, zero_optimization: { stage } }));
  return p;
}

test('dp2 with ZeRO-0 and ZeRO-3 draws the dropout masks of one process', () => {
  const one = join(work, 'one');
  run(['train', ...MODEL, '--max-iters', '20', '--deepspeed-config', config(4, 0)], 1, one);
  for (const stage of [0, 3]) {
    const dir = join(work, `dp2-zero${stage}`);
    const log = run(['train', ...MODEL, '--max-iters', '20', '--deepspeed-config', config(2, stage)], 2, dir);
    assert.doesNotMatch(log, /mesh: dp 2 x pp/, 'plain data parallelism takes the ZeRO step, not the pipeline step');
    sameLosses(one, dir, `dp2 ZeRO-${stage}`);
  }
});

test.after(() => rmSync(work, { recursive: true, force: true }));
