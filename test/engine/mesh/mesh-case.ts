// The mesh equivalence case shared by the pipeline, tensor-parallel and fault tests: a small
// corpus, a 4-layer 4-head GPT with dropout 0.1 trained 20 steps through the CLI, and the
// checks that a layout gives the one-process losses, checkpoint and memory. Not a test itself.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { isUniversalCheckpoint } from '../../../src/checkpoint/index.js';
import { readFullState } from '../../../src/engine/universal/state.js';
import { modelOfCheckpoint } from '../../../src/engine/universal/convert.js';

export const CLI = fileURLToPath(new URL('../../../src/cli/main.js', import.meta.url));

export interface MeshCase {
  work: string;
  corpus: string;
  /** Model and logging flags (no step count, learning rate or batch). */
  MODEL: string[];
  /** `train` with MODEL, 20 steps, 4 rows x 4 micro-batches. */
  FLAGS: string[];
}

export function meshCase(prefix: string): MeshCase {
  const work = mkdtempSync(join(tmpdir(), prefix));
  const corpus = join(work, 'corpus.txt');
  writeFileSync(corpus, Array.from({ length: 300 }, (_, i) => `${i} little pigs went to market, ${i * 7} stayed home.\n`).join(''));
  const MODEL = ['--data', corpus, '--n-layer', '4', '--n-head', '4', '--n-embd', '32', '--block-size', '16', '--dropout', '0.1', '--eval-interval', '20', '--eval-iters', '1', '--log-interval', '1', '--threads', '1', '--peak-gflops', '10', '--quiet'];
  const FLAGS = ['train', ...MODEL, '--max-iters', '20', '--lr', '0.003', '--warmup-iters', '2', '--batch-size', '4', '--grad-accum', '4'];
  return { work, corpus, MODEL, FLAGS };
}

/** Runs `atscale ARGS --out OUT`, under `atscale launch` when nproc > 1; returns stdout. */
export function runTrain(args: string[], nproc: number, out: string, timeoutMs = 180_000): string {
  const cmd = nproc === 1 ? [CLI, ...args, '--out', out] : [CLI, 'launch', '--nproc-per-node', String(nproc), '--', process.execPath, CLI, ...args, '--out', out];
  const r = spawnSync(process.execPath, cmd, { encoding: 'utf8', timeout: timeoutMs, env: { ...process.env, WORLD_SIZE: '1' } });
  assert.equal(r.status, 0, r.stdout + r.stderr);
  return r.stdout;
}

export function losses(dir: string): number[] {
  return readFileSync(join(dir, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { loss?: number }).filter((r) => r.loss !== undefined).map((r) => r.loss!);
}

/** The 20 losses of `other` equal `ref`'s within 1e-5 relative, and training moved; returns the
 * largest relative difference. */
export function sameLosses(ref: string, other: string, what: string): number {
  const a = losses(ref);
  const b = losses(other);
  assert.equal(a.length, 20);
  assert.equal(b.length, 20, what);
  a.forEach((x, i) => assert.ok(Math.abs(x - b[i]!) / x < 1e-5, `${what}, step ${i}: 1 process ${x}, mesh ${b[i]}`));
  assert.ok(a[19]! < a[0]! - 0.2, `loss fell from ${a[0]} to ${a[19]}`);
  return Math.max(...a.map((x, i) => Math.abs(x - b[i]!) / x));
}

/**
 * The mesh run's universal checkpoint against the one-process one: parameters and both AdamW
 * moments, per tensor, each within `bound`; returns the largest difference and the tensor count.
 */
export function sameCheckpoint(ref: string, other: string, what: string, bound: number): { worst: number; tensors: number } {
  const mesh = join(other, 'ckpt');
  assert.ok(isUniversalCheckpoint(mesh), `${what}: the mesh writes a universal checkpoint`);
  const { model, layout } = modelOfCheckpoint(mesh);
  const a = readFullState(join(ref, 'ckpt'), layout, model);
  const b = readFullState(mesh, layout, model);
  let overall = 0;
  for (const k of ['params', 'm', 'v'] as const) {
    for (const s of layout.slots) {
      let worst = 0;
      for (let i = s.offset; i < s.offset + s.size; i++) worst = Math.max(worst, Math.abs(a[k][i]! - b[k][i]!));
      overall = Math.max(overall, worst);
      assert.ok(worst <= bound, `${what}: ${k} of ${s.name}: max difference ${worst}`);
    }
  }
  return { worst: overall, tensors: layout.slots.length };
}

/** Every rank's `memory:` line: bytes held by the trainer equal the closed-form formula. */
export function checkMemoryLines(log: string, ranks: number): void {
  const lines = log.split('\n').filter((l) => l.includes('] memory: '));
  assert.equal(lines.length, ranks, log);
  for (const l of lines) {
    const m = /held (\{[^}]*\}), formula (\{[^}]*\})/.exec(l)!;
    assert.deepEqual(JSON.parse(m[1]!), JSON.parse(m[2]!), l);
  }
}

/** Parameters and both AdamW moments of two checkpoints (any layouts) are bitwise equal. */
export function sameStateBits(a: string, b: string, what: string): void {
  const { model, layout } = modelOfCheckpoint(a);
  const x = readFullState(a, layout, model);
  const y = readFullState(b, layout, model);
  for (const k of ['params', 'm', 'v'] as const) {
    const i = x[k].findIndex((v, j) => !Object.is(v, y[k][j]));
    assert.equal(i, -1, `${what}: ${k}[${i}] is ${x[k][i]} in ${a} but ${y[k][i]} in ${b}`);
  }
}
