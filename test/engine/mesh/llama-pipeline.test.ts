// The engine is model-agnostic: a Llama-family model (grouped-query attention, 4 query heads
// over 2 kv heads, SwiGLU, RMSNorm, rotary embeddings, untied head), loaded from a Hugging Face
// folder, trains under pp2, pp2 interleaved (v=2) and dp2 x pp2 with ZeRO-1 with the losses of
// one process (within 1e-5 relative), as the GPT pipeline test checks for GPT.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { llamaSpec, randomTensors, writeHfFolder, LLAMA_CONFIG } from '../../models/hf-fixture.js';

const CLI = fileURLToPath(new URL('../../../src/cli/main.js', import.meta.url));
const fixtures = fileURLToPath(new URL('../../../../test/data/fixtures/hf-tokenizers/', import.meta.url));
const work = mkdtempSync(join(tmpdir(), 'atscale-llama-pipe-'));
test.after(() => rmSync(work, { recursive: true, force: true }));

const folder = join(work, 'llama');
writeHfFolder(folder, { ...LLAMA_CONFIG, num_hidden_layers: 4 }, randomTensors(llamaSpec({ layers: 4, hidden: 32, heads: 4, kvHeads: 2, inter: 48, vocab: 704 }), 4), 1, {
  'tokenizer.json': readFileSync(fixtures + 'llama3.tokenizer.json', 'utf8'),
});
const corpus = join(work, 'corpus.txt');
writeFileSync(corpus, Array.from({ length: 200 }, (_, i) => `${i} little pigs went to market, ${i * 7} stayed home.\n`).join(''));
const COMMON = ['train', '--model', folder, '--data', corpus, '--block-size', '16', '--eval-interval', '20', '--eval-iters', '1', '--log-interval', '1', '--threads', '1', '--peak-gflops', '10', '--quiet', '--max-iters', '20'];
const FLAGS = [...COMMON, '--lr', '0.003', '--warmup-iters', '2', '--batch-size', '4', '--grad-accum', '4'];

function run(args: string[], nproc: number, name: string): number[] {
  const out = join(work, name);
  const cmd = nproc === 1 ? [CLI, ...args, '--out', out] : [CLI, 'launch', '--nproc-per-node', String(nproc), '--', process.execPath, CLI, ...args, '--out', out];
  const r = spawnSync(process.execPath, cmd, { encoding: 'utf8', timeout: 120_000, env: { ...process.env, WORLD_SIZE: '1' } });
  assert.equal(r.status, 0, r.stdout + r.stderr);
  const losses = readFileSync(join(out, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { loss?: number }).filter((x) => x.loss !== undefined).map((x) => x.loss!);
  assert.equal(losses.length, 20, `${name}: 20 logged steps`);
  return losses;
}

function same(ref: number[], got: number[], what: string): void {
  ref.forEach((x, i) => assert.ok(Math.abs(x - got[i]!) / x < 1e-5, `${what}, step ${i + 1}: 1 process ${x}, mesh ${got[i]}`));
  assert.ok(ref[19]! < ref[0]! - 0.2, `the loss fell from ${ref[0]} to ${ref[19]}`);
}

test('Llama (GQA) under pp2 and pp2 interleaved (v=2) trains like one process', () => {
  const one = run(FLAGS, 1, 'one');
  same(one, run([...FLAGS, '--pipeline-model-parallel-size', '2'], 2, 'pp2'), 'pp2');
  same(one, run([...FLAGS, '--pipeline-model-parallel-size', '2', '--virtual-pipeline-model-parallel-size', '2', '--recompute-granularity', 'selective'], 2, 'pp2v2'), 'pp2 v2 (selective)');
});

test('Llama (GQA) under dp2 x pp2 with ZeRO-1 trains like one process with the same DeepSpeed config', () => {
  const cfg = (micro: number, extra: object) => {
    const p = join(work, `ds-${micro}.json`);
    writeFileSync(p, JSON.stringify({ train_micro_batch_size_per_gpu: micro, gradient_accumulation_steps: 4, optimizer: { type: 'AdamW', params: { lr: 0.003, betas: [0.9, 0.99], weight_decay: 0.1 } }, gradient_clipping: 1.0, zero_optimization: { stage: 1 }, scheduler: { type: 'WarmupLR', params: { warmup_num_steps: 2, warmup_min_lr: 0, warmup_max_lr: 0.003 } }, ...extra }));
    return p;
  };
  const one = run([...COMMON, '--deepspeed-config', cfg(4, {})], 1, 'one-ds');
  same(one, run([...COMMON, '--deepspeed-config', cfg(2, { pipeline: { stages: 2 } }), '--recompute-granularity', 'none'], 4, 'dp2pp2'), 'dp2 x pp2 ZeRO-1 (recompute none)');
});
