// Training in float64 (`atscale train --dtype float64`), the exactness check of the mesh: in
// float32 a tensor-parallel checkpoint differs from one process by ~3e-6 by construction (split
// GEMMs round differently, AdamW's eps amplifies it on tiny first gradients); in float64 the
// same 20 steps of tp2 x pp2 with sequence parallelism give the one-process checkpoint within
// 1e-6, with selective and with full recomputation. A float64 checkpoint holds F64 tensors,
// resumes exactly (one process and the mesh), and is refused by a run with the other --dtype
// (and the reverse).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadCheckpoint, UniversalCheckpoint } from '../../../src/checkpoint/index.js';
import { rankParams } from '../../../src/engine/mesh/memory.js';
import { CLI, checkMemoryLines, losses, meshCase, runTrain as run, sameCheckpoint, sameLosses, sameStateBits } from './mesh-case.js';

const { work, FLAGS } = meshCase('atscale-f64-');
const F64 = ['--dtype', 'float64'];
const TP2PP2SP = ['--tensor-model-parallel-size', '2', '--pipeline-model-parallel-size', '2', '--sequence-parallel'];

/** `atscale ARGS` on one process, expected to fail; returns its stderr. */
function refused(args: string[]): string {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', timeout: 120_000, env: { ...process.env, WORLD_SIZE: '1' } });
  assert.notEqual(r.status, 0, r.stdout);
  return r.stderr;
}

const measured: string[] = [];
const one = join(work, 'one');

test('float64: tp2 x pp2 with sequence parallelism, selective and full recomputation, gives the one-process losses and checkpoint within 1e-6', (t) => {
  run([...FLAGS, ...F64], 1, one);
  assert.equal(loadCheckpoint(join(one, 'ckpt')).tensors['optimizer.exp_avg']!.dtype, 'F64');
  for (const g of ['selective', 'full']) {
    const dir = join(work, `tp2pp2sp-${g}`);
    const log = run([...FLAGS, ...F64, ...TP2PP2SP, '--recompute-granularity', g], 4, dir);
    sameLosses(one, dir, `float64 tp2 x pp2 sp ${g}`);
    const { worst } = sameCheckpoint(one, dir, `float64 tp2 x pp2 sp ${g}`, 1e-6);
    measured.push(`${g}: max checkpoint difference ${worst.toExponential(2)}`);
    // Held bytes are the formula's, and the formula counts 8 bytes per element here.
    checkMemoryLines(log, 4);
    const held = JSON.parse(/\[rank 0\] memory: .*held (\{[^}]*\})/.exec(log)![1]!) as { paramBytes: number; optimBytes: number };
    const spec = { name: 'gpt2', layers: 4, hidden: 32, heads: 4, seqLen: 16, vocab: 31, ffn: 128 };
    const elements = rankParams(spec, { dp: 1, pp: 2, tp: 2 }, 1, [2, 2], 0, false);
    assert.deepEqual([held.paramBytes, held.optimBytes], [8 * elements, 16 * elements]);
    const manifest = new UniversalCheckpoint(join(dir, 'ckpt')).manifest;
    assert.ok(Object.values(manifest.tensors).every((x) => x.dtype === 'F64'), 'the universal checkpoint holds F64 state');
  }
  t.diagnostic(measured.join('; '));
});

test('float64: a resumed run continues exactly; a checkpoint resumes only with its own --dtype', () => {
  // 10 steps, then 10 more from the checkpoint: the losses and the final state of the 20-step run.
  const half = join(work, 'half');
  run([...FLAGS, ...F64, '--max-iters', '10', '--decay-iters', '20'], 1, half);
  const resumed = join(work, 'resumed');
  run([...FLAGS, ...F64, '--resume', join(half, 'ckpt')], 1, resumed);
  assert.deepEqual([...losses(half), ...losses(resumed)], losses(one));
  sameStateBits(join(one, 'ckpt'), join(resumed, 'ckpt'), 'float64 resume');
  // The same on the mesh, from its universal checkpoint: tp2 x pp2 sp selective, 10 + 10 steps.
  const meshHalf = join(work, 'mesh-half');
  run([...FLAGS, ...F64, ...TP2PP2SP, '--recompute-granularity', 'selective', '--max-iters', '10', '--decay-iters', '20'], 4, meshHalf);
  const meshResumed = join(work, 'mesh-resumed');
  run([...FLAGS, ...F64, ...TP2PP2SP, '--recompute-granularity', 'selective', '--resume', join(meshHalf, 'ckpt')], 4, meshResumed);
  assert.deepEqual([...losses(meshHalf), ...losses(meshResumed)], losses(join(work, 'tp2pp2sp-selective')));
  sameStateBits(join(work, 'tp2pp2sp-selective', 'ckpt'), join(meshResumed, 'ckpt'), 'float64 tp2 x pp2 resume');
  // The other dtype is refused with the option named, before any step: plain and universal.
  const f32 = join(work, 'f32');
  assert.match(refused([...FLAGS, '--dtype', 'float32', '--resume', join(one, 'ckpt'), '--out', f32]), /trained with --dtype float64, but this run uses --dtype float32; resume it with --dtype float64/);
  assert.match(refused([...FLAGS, '--dtype', 'float32', '--resume', join(work, 'tp2pp2sp-full', 'ckpt'), '--out', f32]), /trained with --dtype float64, but this run uses --dtype float32/);
  const plain32 = join(work, 'plain32');
  run([...FLAGS, '--max-iters', '2'], 1, plain32);
  assert.match(refused([...FLAGS, ...F64, '--resume', join(plain32, 'ckpt'), '--out', f32]), /trained with --dtype float32, but this run uses --dtype float64; resume it with --dtype float32/);
  assert.match(readFileSync(join(half, 'ckpt', 'meta.json'), 'utf8'), /"dtype": "float64"/);
});

// A bad --dtype value is refused naming the flag and its values by bad-values.test.ts (its rule).
test('--dtype float64 with a combination that does not carry it is refused, naming the option and the combination', () => {
  assert.match(refused([...FLAGS, ...F64, '--device', 'webgpu', '--out', join(work, 'bad')]), /--dtype float64 is not supported with --device webgpu/);
  // ZeRO-2 over data parallelism alone runs a float32-only step: refused before the trainer.
  const ds = join(work, 'zero2.json');
  writeFileSync(ds, JSON.stringify({ train_micro_batch_size_per_gpu: 4, gradient_accumulation_steps: 4, zero_optimization: { stage: 2 } }));
  const MODEL = FLAGS.slice(1, FLAGS.indexOf('--max-iters'));
  assert.match(refused(['train', ...MODEL, ...F64, '--max-iters', '2', '--deepspeed-config', ds, '--out', join(work, 'bad')]), /--dtype float64 is not supported with ZeRO stage 2 over data parallelism alone/);
});

test.after(() => rmSync(work, { recursive: true, force: true }));
