// Local truth: `atscale plan --calibrate` measures this machine, and the planner's predicted
// ms/iter of atscale's own cpu-small training step is within 25% of the step measured right
// after it. (shakespeare-char takes seconds per step; its line is in `npm run bench -- train`.)
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { timeTrainingStep } from '../../src/engine/step-timer.js';
import { PRESETS } from '../../src/models/presets.js';

const CLI = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));

test('calibrated prediction of the cpu-small training step is within 25% of the measured step', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'atscale-truth-'));
  try {
    const r = spawnSync(process.execPath, [CLI, 'plan', '--calibrate', '--json', '--threads', '2', '--out', join(dir, 'machine.json')], { encoding: 'utf8', timeout: 300_000 });
    assert.equal(r.status, 0, r.stderr);
    const predicted = (JSON.parse(r.stdout.trim().split('\n').pop()!) as { predicted_ms_per_iter: Record<string, number> }).predicted_ms_per_iter['cpu-small']!;
    const p = PRESETS['cpu-small']!;
    const measured = (await timeTrainingStep({ ...p.model, vocabSize: 65 }, p.train.batchSize, { threads: 2, iters: 15, warmup: 3 })).msPerIter;
    console.log(`# cpu-small: predicted ${predicted.toFixed(1)} ms/iter, measured ${measured.toFixed(1)} ms/iter (${((predicted / measured - 1) * 100).toFixed(0)}%)`);
    assert.ok(Math.abs(predicted / measured - 1) <= 0.25, `predicted ${predicted.toFixed(1)} ms vs measured ${measured.toFixed(1)} ms`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
