// The PyTorch reference GPT (bench/peers/gpt_torch.py) is what atscale's gradients and speed are
// judged against, so it is itself checked here: float32 vs float64, finite differences, bad input,
// and the bench line. Runs real /usr/bin/python3 processes; skipped when torch is not installed.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { PYTHON, peerEnv, runTorchBench, runTorchGrads, torchAvailable, type TorchModelConfig } from '../../bench/peers/torch-peer.js';

const avail = torchAvailable();
const skip = avail.ok ? false : `PyTorch peer unavailable: ${avail.reason}`;

const fixture = [new URL('./fixtures/peer_checks.py', import.meta.url), new URL('../../../test/peers/fixtures/peer_checks.py', import.meta.url)]
  .map((u) => fileURLToPath(u))
  .find((p) => existsSync(p));

const dir = mkdtempSync(join(tmpdir(), 'atscale-torch-peer-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const TINY: TorchModelConfig = { n_layer: 2, n_head: 2, n_embd: 16, block_size: 8, vocab_size: 11, bias: true, dropout: 0.1 };

function checks(...args: string[]): Promise<Record<string, any>> {
  if (!fixture) throw new Error('test/peers/fixtures/peer_checks.py not found');
  return new Promise((resolve, reject) => {
    execFile(PYTHON, [fixture, ...args], { timeout: 60_000, encoding: 'utf8' }, (err, stdout, stderr) => {
      if (err) return reject(new Error(`peer_checks.py ${args[0]} failed: ${stderr || err.message}`));
      resolve(JSON.parse(stdout.trim().split('\n').pop()!));
    });
  });
}

/** Random weights (config in the metadata) and a [3, T] batch in a fresh folder. */
async function makeInputs(name: string, config: TorchModelConfig, std = 0.02): Promise<{ weights: string; batch: string; dir: string }> {
  const d = join(dir, name);
  mkdirSync(d, { recursive: true });
  await checks('make', d, JSON.stringify(config), String(std), '7');
  return { weights: join(d, 'weights.safetensors'), batch: join(d, 'batch.safetensors'), dir: d };
}

test('safetensors_io round-trips F32/F64/I32/I64 and refuses truncated or corrupt files', { skip }, async () => {
  const r = await checks('io', dir);
  assert.equal(r.roundtrip, true);
  assert.equal(r.aligned, true, 'tensor data should start 8-byte aligned');
  for (const [label, message] of Object.entries(r.errors as Record<string, string | null>)) {
    assert.ok(message, `${label} file was accepted`);
  }
  assert.match(r.errors.truncated, /truncated/);
});

for (const bias of [true, false]) {
  test(`grads (bias=${bias}): loss ~ ln V at init scale, float32 grads match float64 to 1e-4 relative`, { skip }, async () => {
    const config = { ...TINY, bias };
    const { weights, batch, dir: d } = await makeInputs(`grads-${bias}`, config);
    const g32 = await runTorchGrads({ weights, batch, out: join(d, 'g32.safetensors') });
    const g64 = await runTorchGrads({ weights, batch, out: join(d, 'g64.safetensors'), double: true, outDtype: 'f64' });
    assert.equal(g32.computeDtype, 'float32');
    assert.equal(g64.computeDtype, 'float64');
    assert.equal(g32.threads, 2);
    assert.ok(Math.abs(g32.loss - Math.log(config.vocab_size)) < 0.05, `loss ${g32.loss} vs ln V ${Math.log(config.vocab_size)}`);
    const cmp = await checks('compare', g32.out, g64.out);
    assert.equal(cmp.ok, true, cmp.reason);
    assert.ok(cmp.worst_rel < 1e-4, `worst ${cmp.worst_name}: ${cmp.worst_rel}`);
    assert.deepEqual(cmp.zero_grads, [], 'every parameter should receive a gradient');
    const names = Object.keys(cmp.per_tensor);
    assert.ok(names.includes('loss') && names.includes('transformer.h.1.mlp.c_fc.weight'));
    assert.equal(names.includes('transformer.h.0.attn.c_attn.bias'), bias);
    // 2 layers x (2 LN + 4 Linear) + wte, wpe, ln_f: 15 weights; bias adds 13 (not to wte, wpe); plus loss
    assert.equal(names.length, bias ? 29 : 16);
  });
}

test('grads agree with float64 central differences', { skip }, async () => {
  const { weights, batch, dir: d } = await makeInputs('fd', TINY, 0.1);
  const g = await runTorchGrads({ weights, batch, out: join(d, 'g.safetensors'), double: true, outDtype: 'f64' });
  const fd = await checks('fd', weights, batch, g.out);
  for (const e of fd.entries) assert.ok(e.rel < 1e-5, `${e.name}${JSON.stringify(e.at)}: numeric ${e.numeric} analytic ${e.analytic}`);
  assert.ok(fd.entries.some((e: { analytic: number }) => Math.abs(e.analytic) > 1e-3), 'checked entries should not all be ~0');
});

test('grads refuses mismatched weights, bad configs and bad batches with messages that name the problem', { skip }, async () => {
  const { weights, batch, dir: d } = await makeInputs('bad', { ...TINY, bias: false });
  const out = join(d, 'g.safetensors');
  await assert.rejects(runTorchGrads({ weights, batch, out, config: { ...TINY, bias: true } }), /missing weight\(s\) transformer\.h\.0\.ln_1\.bias/);
  await assert.rejects(runTorchGrads({ weights, batch, out, config: { ...TINY, bias: false, n_layer: 1 } }), /unexpected weight\(s\) transformer\.h\.1\./);
  const oneLayer = await runTorchGrads({ weights, batch, out, config: { ...TINY, bias: false, n_layer: 1 }, allowExtra: true });
  assert.ok(Number.isFinite(oneLayer.loss));
  await assert.rejects(runTorchGrads({ weights, batch, out, config: { ...TINY, bias: false, n_embd: 15 } }), /'n_embd' \(15\) must be divisible by 'n_head'/);
  await assert.rejects(runTorchGrads({ weights, batch, out, config: { ...TINY, bias: false, vocab_size: 5 } }), /shape|outside/);
  const truncated = join(d, 'truncated.safetensors');
  const bytes = readFileSync(weights);
  writeFileSync(truncated, bytes.subarray(0, bytes.length - 16));
  await assert.rejects(runTorchGrads({ weights: truncated, batch, out }), /truncated/);
  await assert.rejects(runTorchGrads({ weights, batch: weights, out }), /batch needs a tensor named 'idx'/);
});

test('bench prints a sane JSON line for a tiny config', { skip }, async () => {
  const r = await runTorchBench({ config: { ...TINY, batch_size: 4 }, iters: 3, warmup: 1, threads: 2 });
  assert.equal(r.impl, 'pytorch');
  assert.equal(r.preset, 'custom');
  assert.equal(r.threads, 2);
  assert.equal(r.omp_wait_policy, process.env['OMP_WAIT_POLICY'] ?? 'PASSIVE');
  assert.equal(r.torch_version, avail.version);
  assert.equal(r.ms_all.length, 3);
  assert.ok(r.ms_per_iter > 0, `ms_per_iter ${r.ms_per_iter}`);
  const sorted = [...r.ms_all].sort((a, b) => a - b);
  assert.equal(r.ms_per_iter, sorted[1], 'ms_per_iter is the median');
  assert.ok(Math.abs(r.tokens_per_s - (4 * 8 * 1000) / r.ms_per_iter) < 1e-6 * r.tokens_per_s);
  assert.ok(r.peak_rss_mb > 10 && r.peak_rss_mb < 4096, `peak_rss_mb ${r.peak_rss_mb}`);
  assert.equal(r.n_params, 6896);
  assert.ok(Number.isFinite(r.last_loss) && Math.abs(r.last_loss - Math.log(11)) < 0.5, `last_loss ${r.last_loss}`);
  // Without nativeBlas the peer keeps the machine's OpenBLAS pin, where it has one.
  const pin = process.env['OPENBLAS_CORETYPE'];
  assert.ok(r.blas_core.length > 0 && r.blas_core !== 'unknown', `blas_core ${r.blas_core}`);
  if (pin) assert.equal(r.blas_core.toLowerCase(), pin.toLowerCase());
  await assert.rejects(runTorchBench({ iters: 3, warmup: 1 }), /exactly one of preset or config/);
  await assert.rejects(runTorchBench({ config: { ...TINY }, iters: 1, warmup: 0 }), /batch size missing/);
});

test('a speed peer drops the OpenBLAS pins together and keeps the rest of the environment', () => {
  const native = peerEnv(true);
  assert.equal(native['OPENBLAS_CORETYPE'], undefined);
  assert.equal(native['OPENBLAS_L2_SIZE'], undefined);
  assert.equal(native['PATH'], process.env['PATH']);
  assert.deepEqual(peerEnv(false), { ...process.env });
});
