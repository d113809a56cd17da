// Pretrain -> fine-tune (full and LoRA) -> eval -> merge -> sample, through the real CLI in real
// processes, on a task the pretraining text never states: answering "colour of X?" with X's colour.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const CLI = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));
const work = mkdtempSync(join(tmpdir(), 'atscale-finetune-'));
const things = [['sky', 'blue'], ['grass', 'green'], ['snow', 'white'], ['coal', 'black'], ['blood', 'red'], ['sun', 'yellow']];
const corpus = join(work, 'corpus.txt');
writeFileSync(corpus, Array.from({ length: 120 }, (_, i) => `the ${things[i % 6]![0]} is ${things[i % 6]![1]}. ${things[(i + 1) % 6]![0]} and ${things[(i + 3) % 6]![0]}.\n`).join(''));
const tasks = join(work, 'train.jsonl');
writeFileSync(tasks, Array.from({ length: 30 }, (_, i) => JSON.stringify({ prompt: `colour of ${things[i % 6]![0]}?`, completion: ` ${things[i % 6]![1]}` })).join('\n') + '\n');
const val = join(work, 'val.jsonl');
writeFileSync(val, things.map(([t, c]) => JSON.stringify({ prompt: `colour of ${t}?`, completion: ` ${c}` })).join('\n') + '\n');

function cli(args: string[]): { code: number | null; out: string; stdout: string } {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', timeout: 240_000 });
  return { code: r.status, out: r.stdout + r.stderr, stdout: r.stdout };
}

const base = join(work, 'base');
const FT = ['--batch-size', '6', '--max-iters', '100', '--eval-interval', '30', '--eval-iters', '1', '--threads', '1', '--quiet'];

test('pretrain, fine-tune fully and with LoRA, evaluate, merge and sample', { timeout: 600_000 }, () => {
  const pre = cli(['train', '--data', corpus, '--tokenizer', 'bpe', '--bpe-vocab', '300', '--n-layer', '2', '--n-head', '2', '--n-embd', '48', '--block-size', '24', '--batch-size', '8', '--max-iters', '250', '--eval-interval', '250', '--eval-iters', '1', '--lr', '3e-3', '--threads', '1', '--peak-gflops', '10', '--quiet', '--out', base]);
  assert.equal(pre.code, 0, pre.out);

  const full = cli(['finetune', '--model', base, '--data', tasks, '--val', val, '--out', join(work, 'full'), '--lr', '3e-3', ...FT]);
  assert.equal(full.code, 0, full.out);
  assert.match(full.out, /full fine-tune: [\d,]+ trainable of [\d,]+ parameters \(100\.00%\)/);
  assert.ok(existsSync(join(work, 'full', 'model', 'manifest.json')));

  const lora = cli(['finetune', '--model', base, '--data', tasks, '--out', join(work, 'lora'), '--lora-r', '4', '--lora-alpha', '8', '--lr', '1e-2', '--lora-targets', 'c_attn,c_fc', ...FT]);
  assert.equal(lora.code, 0, lora.out);
  assert.match(lora.out, /LoRA r=4 alpha=8 on c_attn,c_fc: [\d,]+ trainable/);
  const cfg = JSON.parse(readFileSync(join(work, 'lora', 'adapter', 'adapter_config.json'), 'utf8')) as { peft_type: string; r: number; target_modules: string[] };
  assert.deepEqual([cfg.peft_type, cfg.r, cfg.target_modules], ['LORA', 4, ['c_attn', 'c_fc']]);

  const scores: Record<string, number> = {};
  for (const [name, args] of [['base', ['--model', base]], ['full', ['--model', join(work, 'full')]], ['lora', ['--model', join(work, 'lora')]]] as const) {
    const ev = cli(['eval', ...args, '--data', val, '--metric', 'exact', '--max-new-tokens', '4', '--json', '--quiet', '--threads', '1']);
    assert.equal(ev.code, 0, ev.out);
    const last = JSON.parse(ev.stdout.trim().split('\n').at(-1)!) as { eval: string; metric: string; score: number; n: number; predictions: string };
    assert.equal(last.metric, 'exact');
    assert.equal(last.n, 6);
    assert.ok(existsSync(last.predictions));
    const rows = readFileSync(last.predictions, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { target: string; prediction: string });
    assert.equal(rows.length, 6);
    scores[name] = last.score;
  }
  // The pretrained text never pairs "colour of X?" with an answer; fine-tuning teaches it.
  assert.ok(scores.full! >= 0.5 && scores.full! > scores.base!, JSON.stringify(scores));
  assert.ok(scores.lora! >= 0.5 && scores.lora! > scores.base!, JSON.stringify(scores));

  const merged = join(work, 'merged');
  const m = cli(['merge', '--adapter', join(work, 'lora'), '--out', merged]);
  assert.equal(m.code, 0, m.out);
  const greedy = (args: string[]) => cli(['sample', ...args, '--prompt', 'colour of snow?', '--max-new-tokens', '3', '--temperature', '0', '--threads', '1']).stdout;
  const viaAdapter = greedy(['--model', base, '--adapter', join(work, 'lora')]);
  assert.equal(greedy(['--model', merged]), viaAdapter);
  assert.equal(greedy(['--model', join(work, 'lora')]), viaAdapter);
});

test('bad fine-tuning input is refused before training, naming the line or the key', () => {
  const bad = join(work, 'bad.jsonl');
  writeFileSync(bad, '{"prompt": "a", "completion": " b"}\n{"prompt": "a" "completion": " b"}\n');
  const r1 = cli(['finetune', '--model', base, '--data', bad, '--out', join(work, 'x'), ...FT]);
  assert.equal(r1.code, 1);
  assert.match(r1.out, /bad\.jsonl:2: not valid JSON/);
  const r2 = cli(['finetune', '--model', base, '--data', tasks, '--out', join(work, 'x'), '--lora-r', '100', ...FT]);
  assert.equal(r2.code, 1);
  assert.match(r2.out, /LoRA r = 100 is larger than layer transformer\.h\.0\.attn\.c_attn allows \(48 -> 144: rank at most 48\)/);
  const r3 = cli(['finetune', '--model', base, '--data', tasks, '--out', join(work, 'x'), '--overflow', 'wrap', ...FT]);
  assert.equal(r3.code, 2);
  assert.match(r3.out, /--overflow must be truncate, skip or refuse/);
});

test.after(() => process.env.KEEP || rmSync(work, { recursive: true, force: true }));
