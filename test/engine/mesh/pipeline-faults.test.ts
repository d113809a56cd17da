// Pipeline faults and bad input: a bad layout fails before any process group starts, with the
// arithmetic; a rank killed mid-pipeline is named, with the micro-batch, by its peer (no hang).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync, rmSync, existsSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { freePort } from '../spawn-ranks.js';
import { CLI, meshCase } from './mesh-case.js';

const { work, FLAGS, MODEL } = meshCase('atscale-pipe-faults-');
writeFileSync(join(work, 'split.json'), JSON.stringify({ train_micro_batch_size_per_gpu: 4, gradient_accumulation_steps: 4, pipeline: { partition: [2, 1] } }));

test('bad layouts fail before the process group starts, with the arithmetic', () => {
  const cases: [string[], RegExp][] = [
    [['--pipeline-model-parallel-size', '3'], /world size 2 is not divisible by tp 1 x pp 3 = 3/],
    [['--tensor-model-parallel-size', '2', '--n-head', '3', '--n-embd', '24'], /3 attention heads do not divide by tensor-model-parallel size 2 \(3 % 2 = 1\)/],
    [['--pipeline-model-parallel-size', '2', '--n-layer', '1'], /2 pipeline stages \(pp 2 x virtual 1\) but only 1 layers/],
    [['--pipeline-model-parallel-size', '2', '--grad-accum', '1'], /1 micro-batch\(es\) per step is fewer than pp 2/],
    [['--pipeline-model-parallel-size', '2', '--recompute-granularity', 'some'], /--recompute-granularity must be one of none, selective, full, got "some"/],
  ];
  // WORLD_SIZE 2 without a peer: the check must fail before this rank would wait for a rendezvous.
  for (const [extra, re] of cases) {
    const r = spawnSync(process.execPath, [CLI, ...FLAGS, '--max-iters', '1', ...extra, '--out', join(work, 'bad')], { encoding: 'utf8', timeout: 30_000, env: { ...process.env, WORLD_SIZE: '2', RANK: '1', MASTER_ADDR: '127.0.0.1', MASTER_PORT: '1' } });
    assert.notEqual(r.status, 0);
    assert.match(r.stderr, re);
    assert.ok(!existsSync(join(work, 'bad', 'metrics.jsonl')));
  }
  // Under the launcher every rank reports it.
  const r = spawnSync(process.execPath, [CLI, 'launch', '--nproc-per-node', '2', '--', process.execPath, CLI, 'train', ...MODEL, '--max-iters', '1', '--pipeline-model-parallel-size', '2', '--deepspeed-config', join(work, 'split.json'), '--out', join(work, 'bad')], { encoding: 'utf8', timeout: 60_000 });
  assert.notEqual(r.status, 0);
  assert.match(r.stdout + r.stderr, /covers 2 \+ 1 = 3 layers but the model has 4: it loses 1 layer/);
});

test('--max-memory-gb: one process and pp2 are refused before allocating; tp2 x pp2 trains with every rank under the cap', () => {
  // Model state (params + grads + AdamW) of this model: about 0.00078 GB whole, 0.00039 GB on
  // the larger pp2 stage, 0.0002 GB per tp2 x pp2 rank.
  const cap = 0.0003;
  const small = [...FLAGS, '--max-iters', '1', '--grad-accum', '2', '--max-memory-gb', String(cap)];
  const one = spawnSync(process.execPath, [CLI, ...small, '--out', join(work, 'cap1')], { encoding: 'utf8', timeout: 30_000, env: { ...process.env, WORLD_SIZE: '1' } });
  assert.notEqual(one.status, 0);
  assert.match(one.stderr, /training would need about 0\.\d+ GiB per process \(params .* \+ grads .* \+ optimizer .*\), more than --max-memory-gb 0\.0003 allows/);
  assert.ok(!existsSync(join(work, 'cap1', 'metrics.jsonl')));
  const launch = (extra: string[], nproc: number, out: string) =>
    spawnSync(process.execPath, [CLI, 'launch', '--nproc-per-node', String(nproc), '--', process.execPath, CLI, ...small, ...extra, '--out', join(work, out)], { encoding: 'utf8', timeout: 90_000 });
  const pp = launch(['--pipeline-model-parallel-size', '2'], 2, 'cap2');
  assert.notEqual(pp.status, 0);
  assert.match(pp.stdout + pp.stderr, /pipeline stage \d needs 0\.000\d+ GB of model state .* at dp 1 x pp 2 x tp 1, above --max-memory-gb 0\.0003/);
  assert.ok(!existsSync(join(work, 'cap2', 'metrics.jsonl')));
  const tp = launch(['--pipeline-model-parallel-size', '2', '--tensor-model-parallel-size', '2'], 4, 'cap4');
  assert.equal(tp.status, 0, tp.stdout + tp.stderr);
  assert.ok(existsSync(join(work, 'cap4', 'metrics.jsonl')));
  const held = [...(tp.stdout + tp.stderr).matchAll(/\] memory: rank (\d) of 4: .* held (\{[^}]*\})/g)];
  assert.equal(held.length, 4, tp.stdout);
  for (const [, rank, json] of held) {
    const b = JSON.parse(json!) as { paramBytes: number; gradBytes: number; optimBytes: number };
    const total = b.paramBytes + b.gradBytes + b.optimBytes;
    assert.ok(total > 0 && total <= cap * 2 ** 30, `rank ${rank} holds ${total} bytes, cap ${cap * 2 ** 30}`);
  }
});

test('a pipeline rank killed mid-run is named by its peer, with the micro-batch or collective it waited for', async () => {
  const port = await freePort();
  const secret = randomBytes(32).toString('hex');
  const out = join(work, 'fault');
  const args = [CLI, ...FLAGS, '--max-iters', '100000', '--eval-interval', '100000', '--pipeline-model-parallel-size', '2', '--out', out];
  const procs = [0, 1].map((rank) => {
    const child = spawn(process.execPath, args, { env: { ...process.env, RANK: String(rank), WORLD_SIZE: '2', MASTER_ADDR: '127.0.0.1', MASTER_PORT: String(port), ATSCALE_JOB_SECRET: secret, ATSCALE_TIMEOUT_MS: '20000' }, stdio: ['ignore', 'pipe', 'pipe'] });
    let err = '';
    child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
    const done = new Promise<{ code: number | null; err: string }>((resolve) => child.on('close', (code) => resolve({ code, err })));
    return { child, done };
  });
  // Wait until training runs (rank 0 logs steps), then kill the last stage.
  for (let i = 0; i < 600 && !(existsSync(join(out, 'metrics.jsonl')) && readFileSync(join(out, 'metrics.jsonl'), 'utf8').split('\n').length > 3); i++) await new Promise((r) => setTimeout(r, 100));
  procs[1]!.child.kill('SIGKILL');
  const guard = setTimeout(() => procs[0]!.child.kill('SIGKILL'), 60_000);
  const r0 = await procs[0]!.done;
  clearTimeout(guard);
  assert.notEqual(r0.code, null, 'rank 0 hung and was killed by the guard');
  assert.notEqual(r0.code, 0);
  // The kill lands either in a micro-batch exchange or in the step's closing collectives.
  assert.match(r0.err, /pipeline rank 0 \(stage 0\): (receiving|sending) the (gradient|activation) of micro-batch \d+ (from|to) pipeline rank 1 \(global rank 1\)|pipeline rank 0: (reducing the gradients|applying the update) after the last micro-batch: .*rank 1/);
  assert.match(r0.err, /rank 1/);
});

test.after(() => rmSync(work, { recursive: true, force: true }));
