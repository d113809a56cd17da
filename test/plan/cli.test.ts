// The real `atscale plan` command, run as a process.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CLUSTER_PRESETS } from '../../src/plan/presets.js';

const main = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));
const plan = (...args: string[]) => spawnSync(process.execPath, [main, 'plan', ...args], { encoding: 'utf8', timeout: 60_000 });
// --calibrate times GEMMs, a training step and a loopback all-reduce: minutes on a loaded 2-core host.
const calibrate = (...args: string[]) => spawnSync(process.execPath, [main, 'plan', ...args], { encoding: 'utf8', timeout: 600_000 });

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
  // With a model shape the trainer's own programs of that shape are timed too (a tiny one here).
  const shape = ['--layers', '2', '--heads', '2', '--hidden', '32', '--vocab', '40', '--seq-len', '16'];
  const r = calibrate('--calibrate', '--out', out, ...shape, '--micro-batch', '2', '--json');
  if (!existsSync(probe)) {
    assert.equal(r.status, 1);
    assert.match(r.stderr, /the runtime is not built/);
    return;
  }
  assert.equal(r.status, 0, r.stderr);
  const spec = JSON.parse(readFileSync(out, 'utf8'));
  assert.equal(spec.kind, 'atscale-machine');
  assert.ok(spec.memBandwidthGBs > 0.5);
  // What the layout model stands on: the session run's and a handed-out output's cost, and the
  // non-GEMM rate of a large and a small step (19 and 56 MB of tensors), and the L3 where
  // sysfs names one (Linux).
  assert.ok(spec.sessionRunSeconds > 0 && spec.outputCopySecondsPerByte > 0);
  const [big, small] = spec.elementwiseAt as { workingSetBytes: number; GBs: number }[];
  assert.deepEqual([big!.workingSetBytes, small!.workingSetBytes], [56434688, 18802688]);
  assert.ok(big!.GBs > 0 && small!.GBs > 0);
  if (existsSync('/sys/devices/system/cpu/cpu0/cache/index0/size')) assert.ok(spec.cacheBytes > 0);
  const again = plan('--model', 'cpu-small', '--machine', out, '--json');
  assert.ok(JSON.parse(again.stdout).predicted_ms_per_iter > 0);
  // The programs: every one measured (positive), two ranks at once measured against one alone,
  // and local layouts of that shape predicted from them.
  const p = spec.programs;
  assert.deepEqual(p.shape, { nLayer: 2, nHead: 2, nEmbd: 32, blockSize: 16, vocab: 40, rows: 2 });
  for (const g of ['none', 'selective']) assert.ok(p.fused[g].microMs > 0, `fused ${g}: ${JSON.stringify(p.fused[g])}`);
  for (const g of ['none', 'selective', 'full']) assert.ok(p.stages[g].blockForwardMs > 0 && p.stages[g].blockBackwardMs > 0, `${g}: ${JSON.stringify(p.stages[g])}`);
  if (availableParallelism() > 1) assert.ok(p.coRun.ranks === Math.min(availableParallelism(), 4) && p.coRun.fused >= 1 && p.coRun.stages >= 1, JSON.stringify(p.coRun));
  for (const layout of [['--dp', '2'], ['--pp', '2', '--recompute', 'full'], ['--pp', '2', '--recompute', 'selective']]) {
    const q = plan('--machine', out, ...shape, '--global-batch', '8', '--micro-batch', '2', ...layout, '--json');
    assert.equal(q.status, 0, q.stderr);
    const j = JSON.parse(q.stdout.trim().split('\n').pop()!);
    assert.equal(j.basis, 'profiled programs', layout.join(' '));
    assert.ok(j.predicted_ms_per_iter > 0);
  }
  // Another shape on the same spec: the calibrated rates.
  const other = plan('--machine', out, '--layers', '2', '--heads', '2', '--hidden', '64', '--vocab', '40', '--seq-len', '16', '--global-batch', '8', '--micro-batch', '2', '--dp', '2', '--json');
  assert.equal(JSON.parse(other.stdout.trim().split('\n').pop()!).basis, 'calibrated rates');
  // A partial shape is refused before anything is measured, naming what is missing.
  const partial = calibrate('--calibrate', '--out', join(dir, 'p.json'), '--layers', '2', '--heads', '2');
  assert.equal(partial.status, 2);
  assert.match(partial.stderr, /--calibrate with a model shape .* missing --hidden --vocab --seq-len --micro-batch/);
});

test('the issue interface: a GQA/SwiGLU model on more GPUs than the preset has, as JSON', () => {
  const r = plan(
    '--cluster', 'h100-cluster', '--layers', '80', '--hidden', '8192', '--heads', '64', '--kv-heads', '8', '--ffn', '28672', '--swiglu', '--untied',
    '--vocab', '128256', '--seq-len', '8192', '--gpus', '12288', '--tp', '8', '--pp', '8', '--dp', '192', '--global-batch', '1536', '--micro-batch', '1',
    '--recompute', 'selective', '--zero', '1', '--interleave', '2', '--sequence-parallel', '--json',
  );
  assert.equal(r.status, 0, r.stderr);
  const j = JSON.parse(r.stdout);
  for (const k of ['step_time_s', 'tflops_per_gpu_model', 'tflops_per_gpu_hardware', 'mfu']) assert.equal(typeof j[k], 'number', k);
  assert.ok(Math.abs(j.params / 70.55e9 - 1) < 0.01, `Llama 3 70B shape: ${j.params}`);
  assert.ok(j.mfu > 0.1 && j.mfu < 0.8);
  assert.match(j.cluster_note, /scaled to 1536 nodes x 8 GPUs = 12288/);
  // Uneven pipeline: BLOOM's 70 layers on 12 stages.
  const bloom = plan('--layers', '70', '--hidden', '14336', '--heads', '112', '--vocab', '250880', '--seq-len', '2048', '--gpus', '384', '--tp', '4', '--pp', '12', '--global-batch', '2048', '--micro-batch', '2', '--json');
  assert.equal(bloom.status, 0, bloom.stderr);
  assert.deepEqual(JSON.parse(bloom.stdout).layout.stage_layers, [5, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 5]);
});

test('bad input for the new options: exit 2 with the arithmetic', () => {
  const kv = plan('--layers', '4', '--hidden', '512', '--heads', '8', '--kv-heads', '3', '--vocab', '100', '--gpus', '8', '--tp', '1');
  assert.equal(kv.status, 2);
  assert.match(kv.stderr, /--kv-heads .* must divide 'heads' \(8\): 8 \/ 3 = 2\.67/);
  const cp = plan('--model', 'llama3-8b', '--cluster', 'h100-cluster', '--gpus', '64', '--tp', '8', '--cp', '3');
  assert.equal(cp.status, 2);
  assert.match(cp.stderr, /not divisible by tp x cp x pp = 8 x 3 x 1 = 24/);
  const sched = plan('--model', 'gpt3-175b', '--gpus', '1024', '--tp', '8', '--pp', '16', '--schedule', 'pipedream');
  assert.equal(sched.status, 2);
  assert.match(sched.stderr, /--schedule must be one of gpipe, 1f1b, interleaved, zero-bubble/);
  const attn = plan('--model', 'gpt3-175b', '--gpus', '1024', '--tp', '8', '--pp', '16', '--attention', 'flash-v2');
  assert.equal(attn.status, 2);
  assert.match(attn.stderr, /--attention must be one of flash, flash-v1, materialized, got 'flash-v2'/);
  const nodes = plan('--model', 'gpt3-175b', '--nodes', '4', '--gpus', '64', '--tp', '8');
  assert.equal(nodes.status, 2);
  assert.match(nodes.stderr, /--gpus 64 is more than --nodes 4 x 8 GPUs per node = 32/);
  const topk = plan('--layers', '4', '--hidden', '512', '--heads', '8', '--vocab', '100', '--top-k', '2', '--gpus', '8', '--tp', '1');
  assert.equal(topk.status, 2);
  assert.match(topk.stderr, /give --experts too/);
  const ub = plan('--model', 'gpt3-175b', '--cluster', 'h100-cluster', '--gpus', '1024', '--tp', '8', '--pp', '16', '--tp-comm-overlap');
  assert.equal(ub.status, 2);
  assert.match(ub.stderr, /--tp-comm-overlap .* add --sequence-parallel \(tp is 8\)/);
  const ubNodes = plan('--model', 'gpt3-175b', '--cluster', 'h100-cluster', '--gpus', '1024', '--tp', '16', '--pp', '8', '--sequence-parallel', '--tp-comm-overlap');
  assert.equal(ubNodes.status, 2);
  assert.match(ubNodes.stderr, /tp 16 is more than the 8 GPUs of a h100-cluster node; use tp <= 8/);
  const gather = plan('--model', 'gpt3-175b', '--cluster', 'h100-cluster', '--gpus', '1024', '--tp', '8', '--pp', '16', '--overlap-param-gather');
  assert.equal(gather.status, 2);
  assert.match(gather.stderr, /--overlap-param-gather .* needs --zero 1 \(the distributed optimizer\), got --zero 0/);
  const gather3 = plan('--model', 'gpt3-175b', '--cluster', 'h100-cluster', '--gpus', '1024', '--tp', '8', '--pp', '16', '--zero', '3', '--overlap-param-gather');
  assert.equal(gather3.status, 2);
  assert.match(gather3.stderr, /got --zero 3/);
  const ce = plan('--model', 'gpt3-175b', '--cluster', 'h100-cluster', '--gpus', '1024', '--tp', '8', '--pp', '16', '--cross-entropy', 'liger');
  assert.equal(ce.status, 2);
  assert.match(ce.stderr, /--cross-entropy must be unfused or fused, got 'liger'/);
  const both = plan('--model', 'gpt3-175b', '--cluster', 'h100-cluster', '--gpus', '1024', '--tp', '8', '--pp', '16', '--sequence-parallel', '--tp-comm-overlap', '--zero', '1', '--overlap-param-gather', '--json');
  assert.equal(both.status, 0, both.stderr);
  const j = JSON.parse(both.stdout);
  assert.equal(j.layout.tp_comm_overlap, true);
  assert.equal(j.layout.overlap_param_gather, true);
  assert.equal(j.layout.cross_entropy, 'unfused');
});

test('--machine with a layout predicts a local run: parts add up, recomputation and the bubble show, bad batch arithmetic exits 2', () => {
  const dir = mkdtempSync(join(tmpdir(), 'atscale-local-'));
  const spec = join(dir, 'm.json');
  writeFileSync(spec, JSON.stringify({ kind: 'atscale-machine', version: 1, name: 'test box', threads: 1, memoryGB: 16, gemmGflopsByN: { 64: 8, 256: 30, 1024: 40 }, memBandwidthGBs: 10, elementwiseGBs: 2, loopbackBusbwGBs: 1 }));
  const local = (...args: string[]) => {
    const r = plan('--machine', spec, '--layers', '4', '--heads', '4', '--hidden', '128', '--vocab', '65', '--seq-len', '64', '--global-batch', '32', '--micro-batch', '8', '--json', ...args);
    assert.equal(r.status, 0, r.stderr);
    return JSON.parse(r.stdout) as { predicted_ms_per_iter: number; layout: { microBatches: number }; parts_ms: Record<string, number> };
  };
  const one = local('--dp', '1');
  const full = local('--pp', '2', '--recompute', 'full');
  const none = local('--pp', '2', '--recompute', 'none');
  for (const p of [one, full, none]) assert.ok(Math.abs(Object.values(p.parts_ms).reduce((a, b) => a + b, 0) - p.predicted_ms_per_iter) < 1e-6 * p.predicted_ms_per_iter);
  assert.equal(one.parts_ms.bubble, 0);
  assert.equal(full.layout.microBatches, 4);
  // 1F1B idles (p - 1) stage-times of m: about a quarter of the compute at p 2, m 4 (the first
  // stage's forward before the last stage starts and its backward after it ends; the first
  // stage has no head, so a little less).
  const idle = full.parts_ms.bubble! / full.parts_ms.compute!;
  assert.ok(idle > 0.2 && idle <= 0.25, `bubble / compute ${idle}`);
  assert.ok(full.parts_ms.compute! > none.parts_ms.compute!, 'full recomputation redoes each block forward');
  assert.ok(local('--dp', '2', '--global-batch', '64').parts_ms.allReduce! > 0);
  const bad = plan('--machine', spec, '--model', 'cpu-small', '--global-batch', '10', '--micro-batch', '4', '--dp', '2');
  assert.equal(bad.status, 2);
  assert.match(bad.stderr, /--global-batch 10 is not a whole number of micro-batches of --micro-batch 4 rows on --dp 2 replicas/);
  // The load a local run shares the CPU with: a count of threads, and only for a local layout.
  assert.ok(local('--dp', '1', '--background-load', '64').predicted_ms_per_iter > one.predicted_ms_per_iter, '64 other threads slow the run (fair share of the cores)');
  for (const [args, why] of [
    [['--machine', spec, '--model', 'cpu-small', '--dp', '1', '--background-load', '-1'], /--background-load must be between 0 and 1024/],
    [['--machine', spec, '--model', 'cpu-small', '--dp', '1', '--background-load', '1e9'], /--background-load must be between 0 and 1024/],
    [['--machine', spec, '--model', 'cpu-small', '--background-load', '1'], /--background-load applies to a local layout/],
    [['--model', 'cpu-small', '--background-load', '1'], /--background-load needs --machine/],
  ] as [string[], RegExp][]) {
    const r = plan(...args);
    assert.equal(r.status, 2, args.join(' '));
    assert.match(r.stderr, why);
  }
});

test('a search asked for the Megatron-Core overlaps applies them where allowed, its reference layout too', () => {
  const s = plan('--model', 'gpt3-175b', '--cluster', 'h100-cluster', '--gpus', '1024', '--tp-comm-overlap', '--overlap-param-gather', '--versus', '8x16', '--top', '3');
  assert.equal(s.status, 0, s.stderr);
  assert.match(s.stdout, /sequence parallel, TP comm overlap/);
  assert.match(s.stdout, /why the best wins/);
});

test('a cluster file with PCIe between the GPUs: slower tensor parallelism, no userbuffers, bad link names refused', () => {
  const dir = mkdtempSync(join(tmpdir(), 'atscale-pcie-'));
  const nvlink = CLUSTER_PRESETS['h100-cluster']!;
  // The same nodes with GPUs on PCIe Gen5 x16 (64 GB/s each way) instead of NVLink 4.
  const file = join(dir, 'pcie.json');
  writeFileSync(file, JSON.stringify({ ...nvlink, name: 'h100-pcie', node: { ...nvlink.node, intraNodeGBs: 128, intraNodeLink: 'pcie' } }));
  const args = ['--model', 'llama3-8b', '--gpus', '64', '--tp', '8', '--sequence-parallel', '--recompute', 'none', '--json'];
  const run = (cluster: string) => plan('--cluster', cluster, ...args);
  const [overPcie, overNvlink] = [run(file), run('h100-cluster')];
  assert.equal(overPcie.status, 0, overPcie.stderr);
  assert.equal(overNvlink.status, 0, overNvlink.stderr);
  const tp = (r: typeof overPcie) => JSON.parse(r.stdout).step_time_breakdown_s.tensorParallel as number;
  // 900 GB/s at 0.78 against 128 at 0.625: about 8.8 times the bandwidth.
  const ratio = tp(overPcie) / tp(overNvlink);
  assert.ok(ratio > 7 && ratio < 10, `TP traffic ${ratio.toFixed(2)}x slower over PCIe`);
  const ub = plan('--cluster', file, ...args, '--tp-comm-overlap');
  assert.equal(ub.status, 2);
  assert.match(ub.stderr, /userbuffers over NVLink; h100-pcie's GPUs are joined by PCIe/);
  const bad = join(dir, 'bad.json');
  writeFileSync(bad, JSON.stringify({ ...nvlink, node: { ...nvlink.node, intraNodeLink: 'infinity-fabric' } }));
  const refused = plan('--cluster', bad, ...args);
  assert.equal(refused.status, 2);
  assert.match(refused.stderr, /key 'intraNodeLink' must be 'nvlink' or 'pcie', got "infinity-fabric"/);
});
