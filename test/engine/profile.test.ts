// The profiler and MFU on real ONNX Runtime sessions: kernel times go back to the modules that
// recorded them, GEMM FLOPs per module are exact, and MFU never passes 100% even when the
// given peak is far too low.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { GPT } from '../../src/models/gpt.js';
import { MeshTrainer } from '../../src/engine/mesh-trainer.js';
import { Mesh } from '../../src/engine/mesh/mesh.js';
import { readStepProfile } from '../../src/runtime/profile.js';
import { formatProfile } from '../../src/engine/profile-report.js';

const CLI = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));
const B = 2, T = 8, C = 16;

test('a profiled step: every kernel belongs to a module of the model, the optimizer or the top level; GEMM FLOPs per module are exact', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'atscale-prof-'));
  try {
    const model = new GPT({ nLayer: 2, nHead: 2, nEmbd: C, blockSize: T, vocabSize: 11, dropout: 0.1 });
    const trainer = new MeshTrainer(model, Mesh.single(), { shape: { batch: B, seq: T }, optimizer: { lr: 1e-3, beta1: 0.9, beta2: 0.99, eps: 1e-8, weightDecay: 0.1 }, gradClip: 1, gradAccum: 1, seed: 1, threads: 1, profile: join(dir, 'p') });
    const tokens = Int32Array.from({ length: B * T }, (_, i) => i % 11);
    for (let i = 0; i < 2; i++) await trainer.step([{ x: tokens, y: tokens }], 1e-3, i);
    const { file, nodes } = trainer.endProfiling();
    assert.ok(file.startsWith(join(dir, 'p_')) && existsSync(file), file);
    const p = readStepProfile(file, nodes);
    assert.equal(p.runs, 2);
    assert.ok(p.stepUs > 0 && p.kernels.length > 50, `${p.kernels.length} kernels`);
    const modules = new Set(['', 'optimizer']);
    for (const [name] of model.namedParameters()) {
      const parts = name.split('.');
      for (let i = 1; i < parts.length; i++) modules.add(parts.slice(0, i).join('.'));
    }
    for (const k of p.kernels) assert.ok(modules.has(k.module), `kernel ${k.node} (${k.op}) names no module of the model`);
    const cAttn = p.kernels.filter((k) => k.module === 'transformer.h.1.attn.c_attn');
    assert.ok(cAttn.some((k) => !k.backward) && cAttn.some((k) => k.backward), 'c_attn has forward and backward kernels');
    assert.ok(p.kernels.some((k) => k.module === 'optimizer'));
    // c_attn: x [B*T, C] . W [C, 3C] forward; backward dx and dW are the same size each.
    const f = p.flops.get('transformer.h.1.attn.c_attn')!;
    assert.equal(f.fwd, 2 * B * T * C * 3 * C);
    assert.equal(f.bwd, 2 * f.fwd);
    const table = formatProfile(p, model);
    assert.match(table, new RegExp(`^\\s+c_attn\\s+${(C * 3 * C + 3 * C).toLocaleString('en-US')}\\s`, 'm'));
    assert.match(table, /optimizer \(grad norm, clipping, AdamW\)/);
    assert.match(table, /top operators by time:\n {2}\S+/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('atscale train --profile writes the Chrome trace and the table; MFU stays within 100% with a peak given far too low', () => {
  const dir = mkdtempSync(join(tmpdir(), 'atscale-prof-cli-'));
  try {
    const corpus = join(dir, 'corpus.txt');
    writeFileSync(corpus, 'the quick brown fox jumps over the lazy dog. '.repeat(200));
    const out = join(dir, 'run');
    const r = spawnSync(process.execPath, [CLI, 'train', '--data', corpus, '--out', out, '--n-layer', '1', '--n-head', '2', '--n-embd', '16', '--block-size', '8', '--batch-size', '2',
      '--max-iters', '3', '--eval-iters', '1', '--log-interval', '1', '--threads', '1', '--peak-gflops', '0.000001', '--profile'], { encoding: 'utf8', timeout: 120_000 });
    assert.equal(r.status, 0, r.stderr);
    const trace = /Chrome trace of every profiled step: (\S+)/.exec(r.stdout)?.[1];
    assert.ok(trace && existsSync(trace), r.stdout);
    const events = JSON.parse(readFileSync(trace, 'utf8')) as { cat?: string; name?: string }[];
    assert.equal(events.filter((e) => e.cat === 'Session' && e.name === 'model_run').length, 3);
    assert.ok(events.some((e) => e.cat === 'Node' && e.name?.startsWith('transformer.h.0.mlp.c_fc::')));
    assert.match(readFileSync(join(out, 'profile.txt'), 'utf8'), /^model\s+/m);
    const mfus = readFileSync(join(out, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { mfu?: number; mfu_peak_gflops?: number }).filter((m) => m.mfu !== undefined);
    assert.equal(mfus.length, 3);
    for (const m of mfus) assert.ok(m.mfu! > 0 && m.mfu! <= 1 && m.mfu_peak_gflops! > 0.000001, JSON.stringify(m));
    assert.match(r.stderr, /raised to [\d.]+ GFLOP\/s because this run's own model FLOP rate beat it/);
    const help = spawnSync(process.execPath, [CLI, 'train', '--help'], { encoding: 'utf8' });
    assert.match(help.stdout, /MFU \(model FLOPs utilisation\) = model FLOPs per second \/ peak GEMM FLOPs per second/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
