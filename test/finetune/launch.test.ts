// atscale finetune under atscale launch with ZeRO-1: two ranks give the losses of one process
// with the same DeepSpeed config, for a full fine-tune and for LoRA. Every example has the same
// number of learned tokens, so the ranks' per-batch means average to the one-process mean.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { GPT } from '../../src/models/gpt.js';
import { FlatLayout } from '../../src/nn/flat.js';
import { trainBpe } from '../../src/data/bpe_train.js';
import { END_OF_TEXT } from '../../src/data/finetune-examples.js';
import { saveCheckpoint, type TensorEntry } from '../../src/checkpoint/index.js';

const CLI = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));
const work = mkdtempSync(join(tmpdir(), 'atscale-ft-launch-'));
const words = ['apple', 'river', 'stone', 'cloud', 'green', 'light', 'table', 'music'];
const tok = trainBpe(words.map((w) => `is ${w} a fruit? yes no\n`).join('').repeat(10), { vocabSize: 300, specialTokens: [END_OF_TEXT] });
const model = new GPT({ nLayer: 2, nHead: 2, nEmbd: 32, blockSize: 16, vocabSize: tok.vocabSize, bias: true });
const layout = new FlatLayout(model);
const params = layout.initialise(5);
const tensors: Record<string, TensorEntry> = {};
for (const s of layout.slots) tensors[s.name] = { dtype: 'F32', shape: [...s.shape], data: layout.view(params, s.name) };
const base = join(work, 'base');
saveCheckpoint(base, { tensors, meta: { iter: 0, config: model.config, tokenizer: tok.fingerprint() }, files: { 'tokenizer.json': JSON.stringify(tok.toJSON()) } });
const data = join(work, 'train.jsonl');
writeFileSync(data, words.map((w, i) => JSON.stringify({ prompt: `is ${w} a fruit?`, completion: i === 0 ? ' yes' : ' no' })).join('\n') + '\n');
const config = join(work, 'ds.json');
writeFileSync(config, JSON.stringify({ train_batch_size: 4, train_micro_batch_size_per_gpu: 2, optimizer: { type: 'AdamW', params: { lr: 0.003, betas: [0.9, 0.99], eps: 1e-8, weight_decay: 0 } }, gradient_clipping: 1.0, zero_optimization: { stage: 1 } }));

function losses(dir: string): number[] {
  return readFileSync(join(dir, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { loss?: number }).filter((r) => r.loss !== undefined).map((r) => r.loss!);
}

for (const [name, extra, product] of [['full fine-tune', [], 'model'], ['LoRA', ['--lora-r', '4'], 'adapter']] as const) {
  test(`${name}: 2 ranks with ZeRO-1 fine-tune exactly like 1 process`, () => {
    const FT = ['finetune', '--model', base, '--data', data, '--deepspeed-config', config, '--max-iters', '6', '--log-interval', '1', '--threads', '1', '--quiet', ...extra];
    const one = spawnSync(process.execPath, [CLI, ...FT, '--out', join(work, `${product}-one`)], { encoding: 'utf8', timeout: 240_000, env: { ...process.env, WORLD_SIZE: '1' } });
    assert.equal(one.status, 0, one.stderr);
    const two = spawnSync(process.execPath, [CLI, 'launch', '--nproc-per-node', '2', '--', process.execPath, CLI, ...FT, '--out', join(work, `${product}-two`)], { encoding: 'utf8', timeout: 240_000 });
    assert.equal(two.status, 0, two.stdout + two.stderr);
    const a = losses(join(work, `${product}-one`));
    const b = losses(join(work, `${product}-two`));
    assert.equal(a.length, 6);
    assert.equal(b.length, 6);
    a.forEach((x, i) => assert.ok(Math.abs(x - b[i]!) / x < 1e-5, `step ${i}: 1 process ${x}, 2 ranks ${b[i]}`));
    assert.ok(existsSync(join(work, `${product}-two`, product)));
  });
}

test.after(() => rmSync(work, { recursive: true, force: true }));
