// The real `atscale plan` command, run as a process.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const main = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));
const plan = (...args: string[]) => spawnSync(process.execPath, [main, 'plan', ...args], { encoding: 'utf8', timeout: 60_000 });

test('one layout as JSON has the promised keys', () => {
  const r = plan('--model', 'gpt3-175b', '--cluster', 'selene', '--gpus', '1024', '--tp', '8', '--pp', '16', '--json');
  assert.equal(r.status, 0, r.stderr);
  const j = JSON.parse(r.stdout);
  for (const k of ['params', 'step_time_s', 'tokens_per_s', 'tflops_per_gpu_model', 'tflops_per_gpu_hardware', 'mfu', 'days', 'gpu_hours']) assert.equal(typeof j[k], 'number', k);
  for (const k of ['params', 'grads', 'optimizer', 'activations', 'total']) assert.equal(typeof j.memory_gb_per_gpu[k], 'number', k);
  assert.ok(j.reliability.goodput > 0 && j.reliability.goodput < 1);
});

test('readable output and a search with an explanation', () => {
  const one = plan('--model', 'gpt2-large', '--cluster', 'h100-cluster', '--gpus', '64', '--tp', '2');
  assert.equal(one.status, 0, one.stderr);
  assert.match(one.stdout, /memory per GPU/);
  assert.match(one.stdout, /checkpoint every \(Young, min\)/);
  const s = plan('--model', 'gpt3-175b', '--cluster', 'selene', '--gpus', '1024', '--versus', '8x16');
  assert.equal(s.status, 0, s.stderr);
  assert.match(s.stdout, /why the best wins/);
  assert.match(s.stdout, /out of memory/);
});

test('custom models and bad input: exit 2 with the arithmetic', () => {
  const ok = plan('--layers', '24', '--hidden', '2048', '--heads', '16', '--vocab', '50257', '--seq-len', '2048', '--global-batch', '512', '--gpus', '64', '--tp', '2', '--json');
  assert.equal(ok.status, 0, ok.stderr);
  const bad = plan('--model', 'gpt3-175b', '--gpus', '1024', '--tp', '8', '--pp', '16', '--dp', '4');
  assert.equal(bad.status, 2);
  assert.match(bad.stderr, /8 x 16 x 4 = 512, but --gpus is 1024/);
  const heads = plan('--model', 'gpt2-xl', '--gpus', '8', '--tp', '2');
  assert.equal(heads.status, 2);
  assert.match(heads.stderr, /heads 25 are not divisible by tp 2/);
  assert.equal(plan('--model', 'gpt2-small', '--tpp', '2').status, 2);
});

test('--calibrate measures through the runtime GEMM probe, or says the runtime is not built', () => {
  const dir = mkdtempSync(join(tmpdir(), 'atscale-cal-'));
  const out = join(dir, 'm.json');
  const probe = fileURLToPath(new URL('../../src/runtime/gemm-probe.js', import.meta.url));
  const r = plan('--calibrate', '--out', out, '--json');
  if (!existsSync(probe)) {
    assert.equal(r.status, 1);
    assert.match(r.stderr, /the runtime is not built/);
    return;
  }
  assert.equal(r.status, 0, r.stderr);
  const spec = JSON.parse(readFileSync(out, 'utf8'));
  assert.equal(spec.kind, 'atscale-machine');
  assert.ok(spec.memBandwidthGBs > 0.5);
  const again = plan('--model', 'cpu-small', '--machine', out, '--json');
  assert.ok(JSON.parse(again.stdout).predicted_ms_per_iter > 0);
});
