// `atscale ckpt convert` and `inspect` on a real trained checkpoint: every layout round trip is
// bitwise (params, exp_avg, exp_avg_sq), tp layouts hold each rank's tp shard, a rank of a
// pipeline stage reads only its stage's shard files, bad layouts are refused with the
// arithmetic, and inspect reports layout, partitioning and checksums.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { readSafetensorsFile, UniversalCheckpoint } from '../../../src/checkpoint/index.js';
import { runTraining } from '../../../src/engine/train-loop.js';
import { convertCheckpoint, modelOfCheckpoint, parseLayout } from '../../../src/engine/universal/convert.js';
import { loadUniversal, readFullState } from '../../../src/engine/universal/state.js';
import { preset } from '../../../src/models/presets.js';

const CLI = fileURLToPath(new URL('../../../src/cli/main.js', import.meta.url));
const work = mkdtempSync(join(tmpdir(), 'atscale-convert-'));
test.after(() => rmSync(work, { recursive: true, force: true }));

async function trained(): Promise<string> {
  const corpus = join(work, 'corpus.txt');
  writeFileSync(corpus, Array.from({ length: 80 }, (_, i) => `line ${i}: the quick brown fox.\n`).join(''));
  const hyper = { ...preset('cpu-small').train, batchSize: 2, maxIters: 2, evalInterval: 2, evalIters: 1, logInterval: 1, warmupIters: 1, decayIters: 2 };
  // 4 heads and biases: c_attn (3 parts), c_fc, c_proj, a vocabulary that tp 2 pads.
  await runTraining({ model: { nLayer: 2, nHead: 4, nEmbd: 16, blockSize: 8, bias: true }, hyper, data: corpus, tokenizer: 'char', seed: 3, threads: 1, quiet: true, out: join(work, 'run') });
  return join(work, 'run', 'ckpt');
}

function sameState(a: string, b: string, what: string): void {
  const { model, layout } = modelOfCheckpoint(a);
  const x = readFullState(a, layout, model);
  const y = readFullState(b, layout, model);
  for (const k of ['params', 'm', 'v'] as const) assert.ok(Buffer.from(x[k].buffer).equals(Buffer.from(y[k].buffer)), `${what}: ${k} differs`);
  assert.ok(x.m.some((e) => e !== 0), 'the optimizer state is not trivially zero');
}

test('convert round trips are bitwise for every layout pair, tp included', async () => {
  const src = await trained();
  const layouts = ['tp=2,pp=2', 'dp=4,zero=1', 'pp=2', 'tp=2', 'dp=2,tp=2,pp=2,zero=1', 'dp=2,zero=3', 'dp=1'];
  let prev = src;
  layouts.forEach((l, i) => {
    const dst = join(work, `c${i}`);
    const r = convertCheckpoint(prev, dst, parseLayout(l));
    sameState(src, dst, `${prev} -> ${l}`);
    if (r.kind === 'universal') assert.equal(new UniversalCheckpoint(dst).manifest.layout.world, r.layout.world);
    prev = dst;
  });
  assert.equal(convertCheckpoint(prev, join(work, 'last'), parseLayout('dp=1,tp=1,pp=1,zero=0')).kind, 'plain');
  sameState(src, join(work, 'last'), 'back to the plain checkpoint');

  // tp2 x pp2: the fused c_attn bias [48] is stored as two tp shards of 24 (8 of q, k, v each).
  const tp = new UniversalCheckpoint(join(work, 'c0'));
  const bias = tp.manifest.tensors['transformer.h.1.attn.c_attn.bias']!;
  assert.deepEqual(bias.tp, { kind: 'column', axis: 0, parts: 3 });
  assert.deepEqual(bias.pieces.map((p) => [p.file, p.tpRank, p.start, p.end]), [['rank-00002.safetensors', 0, 0, 24], ['rank-00003.safetensors', 1, 0, 24]]);
  const full = tp.readFull('transformer.h.1.attn.c_attn.bias', 'param');
  assert.deepEqual([...tp.readTpShard('transformer.h.1.attn.c_attn.bias', 'param', 1).subarray(0, 8)], [...full.subarray(8, 16)]);
  // A rank of stage 1 of a tp2 layout reads only stage 1's shard files, and gets its tp shards;
  // with tp 4 it gets a quarter of the fused c_attn (2 of q, k, v each, re-split from the joined tensor).
  const { model, layout } = modelOfCheckpoint(join(work, 'c0'));
  const names = layout.slots.filter((x) => x.name.startsWith('transformer.h.1.')).map((x) => x.name);
  const u = loadUniversal(join(work, 'c0'), model, layout, { tp: 2, tpRank: 1, names });
  assert.deepEqual(u.opened.sort(), ['rank-00002.safetensors', 'rank-00003.safetensors']);
  assert.deepEqual([...u.tensors.get('transformer.h.1.attn.c_attn.bias')!.param.subarray(0, 8)], [...full.subarray(8, 16)]);
  const q = loadUniversal(join(work, 'c0'), model, layout, { tp: 4, tpRank: 3, names });
  assert.deepEqual([...q.tensors.get('transformer.h.1.attn.c_attn.bias')!.param], [...full.subarray(12, 16), ...full.subarray(28, 32), ...full.subarray(44, 48)]);

  // One safetensors state dict: the named parameters, nothing else.
  convertCheckpoint(src, join(work, 'model.safetensors'), parseLayout(''), { stateDict: true });
  const dict = readSafetensorsFile(join(work, 'model.safetensors')).tensors;
  assert.deepEqual(Object.keys(dict).sort(), layout.slots.map((s) => s.name).sort());
});

test('bad layouts are refused with the arithmetic', async () => {
  const src = join(work, 'run', 'ckpt');
  const bad: [string, RegExp][] = [
    ['tp=3', /4 attention heads do not divide by tp 3 \(4 % 3 = 1\)/],
    ['pp=3', /2 layers do not divide evenly into pp 3|3 pipeline stages .* but only 2 layers/],
    ['dp=2,pp=2,zero=2', /ZeRO stages 2 and 3 are refused with pipeline parallelism/],
    ['dp=two', /--layout: dp=two must be a positive integer/],
    ['ep=2', /--layout: 'ep=2' is not one of dp=N, tp=N, pp=N, zero=N/],
  ];
  for (const [l, re] of bad) assert.throws(() => convertCheckpoint(src, join(work, 'bad'), parseLayout(l)), re, l);
  assert.throws(() => convertCheckpoint(src, src, parseLayout('dp=2')), /is the source/);
});

test('atscale ckpt convert and inspect from the command line', () => {
  const src = join(work, 'run', 'ckpt');
  const dst = join(work, 'cli-dp2pp2');
  const conv = spawnSync(process.execPath, [CLI, 'ckpt', 'convert', src, dst, '--layout', 'dp=2,tp=1,pp=2,zero=1'], { encoding: 'utf8' });
  assert.equal(conv.status, 0, conv.stderr);
  assert.match(conv.stdout, /universal checkpoint for dp 2 x tp 1 x pp 2 \(ZeRO 1, 4 shard files\)/);
  const ins = spawnSync(process.execPath, [CLI, 'ckpt', 'inspect', dst], { encoding: 'utf8' });
  assert.equal(ins.status, 0, ins.stderr);
  assert.match(ins.stdout, /layout: dp 2 x tp 1 x pp 2 = world 4, ZeRO stage 1/);
  assert.match(ins.stdout, /rank-00003\.safetensors {2}rank 3 \(dp 1, tp 0, pp 1\) .* checksum ok/);
  assert.match(ins.stdout, /transformer\.h\.0\.attn\.c_attn\.weight +\[16, 48\] +column axis 1 x3 parts +pp 0 /);
  // One flipped byte in a shard: inspect names the file and fails.
  const f = join(dst, 'rank-00002.safetensors');
  const b = readFileSync(f);
  b[b.length - 3]! ^= 1;
  writeFileSync(f, b);
  const bad = spawnSync(process.execPath, [CLI, 'ckpt', 'inspect', dst], { encoding: 'utf8' });
  assert.equal(bad.status, 1);
  assert.match(bad.stdout, /rank-00002\.safetensors: BAD SHA256/);
  const layoutErr = spawnSync(process.execPath, [CLI, 'ckpt', 'convert', src, join(work, 'x'), '--layout', 'dp=2,tp=8'], { encoding: 'utf8' });
  assert.equal(layoutErr.status, 1);
  assert.match(layoutErr.stderr, /4 attention heads do not divide by tp 8 \(4 % 8 = 4\)/);
  // inspect of the plain checkpoint a run writes.
  const plain = spawnSync(process.execPath, [CLI, 'ckpt', 'inspect', src], { encoding: 'utf8' });
  assert.equal(plain.status, 0, plain.stderr);
  assert.match(plain.stdout, /plain \(one process\), every file matches manifest\.json/);
});
