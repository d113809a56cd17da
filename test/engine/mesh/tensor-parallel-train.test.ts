// Tensor parallelism end to end through `atscale launch ... train`: 20 steps of a 4-layer,
// 4-head GPT with dropout 0.1 (vocabulary 31, padded for tp 2) give the losses of one process
// within 1e-5 relative for tp2 (no recomputation), tp2 x pp2 with sequence parallelism and
// selective recomputation, and dp2 x tp2 with ZeRO-1; the universal checkpoint (tp shards
// joined) equals the one-process checkpoint, optimizer state included.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { checkMemoryLines, meshCase, runTrain as run, sameCheckpoint as sameState, sameLosses as sameLossesOf } from './mesh-case.js';

const { work, MODEL, FLAGS } = meshCase('atscale-tp-');
const TP2 = ['--tensor-model-parallel-size', '2'];

/** Measured differences, reported as test diagnostics. */
const measured: string[] = [];

function sameLosses(ref: string, other: string, what: string): void {
  // Measured: at most 3.6e-7 relative for every layout here.
  measured.push(`${what}: max relative loss difference ${sameLossesOf(ref, other, what).toExponential(2)}`);
}

/** The mesh's universal checkpoint (each rank its tp shard) against the one-process one.
 *  Measured: at most 3.4e-6, made in step 1 on the few weights of the last MLP whose first
 *  gradient is below AdamW's eps (|g| ~ 8e-9): its update lr g/(|g| + eps) turns a 6e-11 fp32
 *  rounding difference of that gradient (partial sums per rank) into 3.3e-6. One process with per-block programs
 *  (no communication) differs from its fused graph as much; `npm run bench -- equivalence-floor`. */
function sameCheckpoint(ref: string, other: string, what: string): void {
  const { worst, tensors } = sameState(ref, other, what, 2e-5);
  assert.equal(tensors, 4 * 6 + 3);
  measured.push(`${what}: max checkpoint difference ${worst.toExponential(2)}`);
}

test('tp2, and tp2 x pp2 with sequence parallelism and selective recomputation, train like one process; the universal checkpoint is the one-process checkpoint', (t) => {
  const one = join(work, 'one');
  run(FLAGS, 1, one);
  const tp2 = join(work, 'tp2');
  const log = run([...FLAGS, ...TP2], 2, tp2);
  assert.match(log, /mesh: dp 1 x pp 1 x tp 2, /);
  assert.match(log, /vocabulary 31 does not divide by tp 2; padded to 32 \(1 zero row\(s\) on the last tp rank/);
  checkMemoryLines(log, 2);
  sameLosses(one, tp2, 'tp2');
  sameCheckpoint(one, tp2, 'tp2');
  const sp = join(work, 'tp2pp2sp');
  const logSp = run([...FLAGS, ...TP2, '--pipeline-model-parallel-size', '2', '--sequence-parallel', '--recompute-granularity', 'selective'], 4, sp);
  assert.match(logSp, /mesh: dp 1 x pp 2 x tp 2, 1f1b schedule, v 1, layers per stage \[2, 2\], ZeRO stage 0, sequence parallel/);
  checkMemoryLines(logSp, 4);
  sameLosses(one, sp, 'tp2 x pp2, sequence parallel, selective');
  sameCheckpoint(one, sp, 'tp2 x pp2, sequence parallel, selective');
  t.diagnostic(measured.join('; '));
});

test('dp2 x tp2 with ZeRO-1 (DeepSpeed config) trains like one process with the same config', (t) => {
  const cfg = (micro: number, extra: object) => {
    const p = join(work, `ds-${micro}.json`);
    writeFileSync(p, JSON.stringify({ train_micro_batch_size_per_gpu: micro, gradient_accumulation_steps: 4, optimizer: { type: 'AdamW', params: { lr: 0.003, betas: [0.9, 0.99], weight_decay: 0.1 } }, gradient_clipping: 1.0, zero_optimization: { stage: 1 }, ...extra }));
    return p;
  };
  const one = join(work, 'one-ds');
  run(['train', ...MODEL, '--max-iters', '20', '--deepspeed-config', cfg(4, {})], 1, one);
  const mesh = join(work, 'dp2tp2');
  const log = run(['train', ...MODEL, '--max-iters', '20', '--deepspeed-config', cfg(2, { tensor_parallel: { tp_size: 2 } })], 4, mesh);
  assert.match(log, /dp 2 x pp 1 x tp 2, .*ZeRO stage 1/);
  checkMemoryLines(log, 4);
  sameLosses(one, mesh, 'dp2 x tp2 ZeRO-1');
  sameCheckpoint(one, mesh, 'dp2 x tp2 ZeRO-1');
  t.diagnostic(measured.slice(-2).join('; '));
});

test.after(() => rmSync(work, { recursive: true, force: true }));
