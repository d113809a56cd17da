// Resharding round trips through real processes (`atscale launch ... train`, loopback), shared
// by resume-*.test.ts: a run saves a universal checkpoint in one layout and another layout
// resumes from it. The state the target layout loaded is saved again before any step
// (--max-iters at the checkpoint's step) and must be bitwise the source's: params, exp_avg,
// exp_avg_sq. Two more steps in the target layout must give the losses of the same state
// continued in a reference layout (within 1e-5 relative; dropout off, so every layout draws
// the same masks).
import { after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { isUniversalCheckpoint, UniversalCheckpoint } from '../../../src/checkpoint/index.js';
import { readFullState } from '../../../src/engine/universal/state.js';
import { modelOfCheckpoint } from '../../../src/engine/universal/convert.js';

const CLI = fileURLToPath(new URL('../../../src/cli/main.js', import.meta.url));
export const work = mkdtempSync(join(tmpdir(), 'atscale-unickpt-'));
after(() => rmSync(work, { recursive: true, force: true }));
const corpus = join(work, 'corpus.txt');
writeFileSync(corpus, Array.from({ length: 200 }, (_, i) => `${i} little pigs went to market, ${i * 7} stayed home.\n`).join(''));
const MODEL = ['--data', corpus, '--n-layer', '2', '--n-head', '2', '--n-embd', '16', '--block-size', '8', '--dropout', '0', '--eval-interval', '100', '--eval-iters', '1', '--log-interval', '1', '--threads', '1', '--peak-gflops', '10', '--quiet'];
const HYPER = ['--lr', '0.01', '--warmup-iters', '1'];

export function dsConfig(name: string, micro: number, stage: number): string {
  const p = join(work, `${name}.json`);
  writeFileSync(p, JSON.stringify({ train_micro_batch_size_per_gpu: micro, gradient_accumulation_steps: 2, optimizer: { type: 'AdamW', params: { lr: 0.01, betas: [0.9, 0.99], weight_decay: 0.1 } }, gradient_clipping: 1.0, zero_optimization: { stage } }));
  return p;
}

/** `atscale train` on nproc local ranks (1: a plain process), into OUT. */
export function train(out: string, nproc: number, layout: string[], iters: number, resume?: string): void {
  // A DeepSpeed config owns batch sizes and the optimizer; a resumed run takes the checkpoint's.
  const own = resume || layout.includes('--deepspeed-config') ? [] : [...HYPER, '--batch-size', '4', '--grad-accum', '2'];
  const args = ['train', ...MODEL, ...layout, '--max-iters', String(iters), '--out', out, ...own, ...(resume ? ['--resume', resume] : [])];
  const cmd = nproc === 1 ? [CLI, ...args] : [CLI, 'launch', '--nproc-per-node', String(nproc), '--', process.execPath, CLI, ...args];
  const r = spawnSync(process.execPath, cmd, { encoding: 'utf8', timeout: 180_000, env: { ...process.env, WORLD_SIZE: '1' } });
  assert.equal(r.status, 0, `${cmd.join(' ')}\n${r.stdout}${r.stderr}`);
}

function losses(out: string): number[] {
  return readFileSync(join(out, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { loss?: number }).filter((r) => r.loss !== undefined).map((r) => r.loss!);
}

function sameState(a: string, b: string, what: string): void {
  const { model, layout } = modelOfCheckpoint(a);
  const x = readFullState(a, layout, model);
  const y = readFullState(b, layout, model);
  for (const k of ['params', 'm', 'v'] as const) assert.ok(Buffer.from(x[k].buffer).equals(Buffer.from(y[k].buffer)), `${what}: ${k} is not bitwise the source's`);
  assert.equal(y.meta.iter, x.meta.iter);
}

/** Asserts the losses agree within 1e-5 relative; returns the largest relative difference. */
function sameLosses(ref: number[], got: number[], what: string): number {
  assert.equal(got.length, ref.length, what);
  got.forEach((l, i) => assert.ok(Math.abs(l - ref[i]!) / ref[i]! < 1e-5, `${what}, step ${i + 3}: ${l} vs ${ref[i]}`));
  return Math.max(...got.map((l, i) => Math.abs(l - ref[i]!) / ref[i]!));
}

export interface Layout {
  nproc: number;
  flags: string[];
}

type Shape = { dp: number; tp: number; pp: number; zero: number };

function hasLayout(ckpt: string, shape: Shape | undefined, what: string): void {
  if (!shape) return;
  assert.ok(isUniversalCheckpoint(ckpt), `${what} is a universal checkpoint`);
  const { layout } = new UniversalCheckpoint(ckpt).manifest;
  assert.deepEqual({ dp: layout.dp, tp: layout.tp, pp: layout.pp, zero: layout.zero }, shape, what);
}

/** The source trains 2 steps (or `source` is a checkpoint path); the target loads it (bitwise)
 *  and trains steps 3-4 like the reference. Shapes: the layouts the two checkpoints record.
 *  Returns the measured largest relative loss difference (for the test's diagnostics). */
export function roundTrip(name: string, source: Layout | string, target: Layout, reference: Layout, shapes: { source?: Shape; target?: Shape } = {}): string {
  let ckpt: string;
  if (typeof source === 'string') ckpt = source;
  else {
    train(join(work, `${name}-src`), source.nproc, source.flags, 2);
    ckpt = join(work, `${name}-src`, 'ckpt');
  }
  hasLayout(ckpt, shapes.source, `${name}: the source checkpoint`);
  const loaded = join(work, `${name}-loaded`);
  train(loaded, target.nproc, target.flags, 2, ckpt);
  hasLayout(join(loaded, 'ckpt'), shapes.target, `${name}: the target's checkpoint`);
  sameState(ckpt, join(loaded, 'ckpt'), `${name}: state loaded by the target layout`);
  const cont = join(work, `${name}-target`);
  train(cont, target.nproc, target.flags, 4, ckpt);
  const ref = join(work, `${name}-ref`);
  train(ref, reference.nproc, reference.flags, 4, ckpt);
  const want = losses(ref);
  assert.equal(want.length, 2);
  return `${name}: max relative loss difference ${sameLosses(want, losses(cont), name).toExponential(2)}`;
}

export const ONE: Layout = { nproc: 1, flags: [] };
