// `atscale finetune --model HF_GPT2_DIR` end to end through the real CLI: a Hugging Face GPT-2
// folder (config.json, model.safetensors, tokenizer.json, tokenizer_config.json with eos_token and
// a chat_template) is fine-tuned with LoRA on chat records rendered by its own template, on the
// family's default targets, then evaluated (prompts by the same template, stopping at eos_token)
// and sampled.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gpt2Spec, randomTensors, writeHfFolder } from '../models/hf-fixture.js';

const CLI = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));
const fixtures = fileURLToPath(new URL('../../../test/data/fixtures/hf-tokenizers/', import.meta.url));
const work = mkdtempSync(join(tmpdir(), 'atscale-hf-finetune-'));
test.after(() => rmSync(work, { recursive: true, force: true }));

// The fixture GPT-2 tokenizer has 700 merges-vocabulary ids and <|endoftext|> at 700.
const VOCAB = 701;
const hf = join(work, 'gpt2');
// A template of the shape HF chat templates take; the answer ends with eos_token, as tokenizer_config names it.
const TEMPLATE = "{% for m in messages %}{{ m['role'] }}: {{ m['content'] }}{% if m['role'] == 'assistant' %}{{ eos_token }}{% endif %}{{ '\\n' }}{% endfor %}{% if add_generation_prompt %}assistant: {% endif %}";
// Random weights, with LayerNorm gains at 1 as a trained model has them (random gains near 0
// would flatten every logit, leaving nothing for attention adapters to move).
const tensors = randomTensors(gpt2Spec({ layers: 2, embd: 64, positions: 32, vocab: VOCAB }), 5);
for (const [name, t] of Object.entries(tensors)) if (/ln_[12f]\.weight$/.test(name)) (t.data as Float32Array).fill(1);
writeHfFolder(hf, { model_type: 'gpt2', n_layer: 2, n_head: 4, n_embd: 64, n_positions: 32, vocab_size: VOCAB, activation_function: 'gelu_new', layer_norm_epsilon: 1e-5 },
  tensors, 1, {
    'tokenizer.json': readFileSync(fixtures + 'gpt2.tokenizer.json', 'utf8'),
    'tokenizer_config.json': { bos_token: '<|endoftext|>', eos_token: '<|endoftext|>', chat_template: TEMPLATE },
  });
const things = [['sky', 'blue'], ['grass', 'green'], ['snow', 'white'], ['coal', 'black'], ['blood', 'red'], ['sun', 'yellow']];
const chat = (t: string, c: string) => JSON.stringify({ messages: [{ role: 'user', content: `colour of ${t}?` }, { role: 'assistant', content: c }] });
const data = join(work, 'train.jsonl');
writeFileSync(data, Array.from({ length: 24 }, (_, i) => chat(things[i % 6]![0]!, things[i % 6]![1]!)).join('\n') + '\n');
const val = join(work, 'val.jsonl');
writeFileSync(val, things.map(([t, c]) => chat(t!, c!)).join('\n') + '\n');

function cli(args: string[]): { code: number | null; out: string; stdout: string } {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', timeout: 240_000 });
  return { code: r.status, out: r.stdout + r.stderr, stdout: r.stdout };
}

test('atscale finetune --model HF_GPT2_DIR: LoRA on the default targets, chats through the folder\'s template, eval and sample', { timeout: 300_000 }, () => {
  const out = join(work, 'lora');
  const ft = cli(['finetune', '--model', hf, '--data', data, '--out', out, '--lora-r', '8', '--lora-alpha', '32', '--lr', '2e-2', '--batch-size', '6', '--max-iters', '300', '--warmup-iters', '5', '--log-interval', '20', '--threads', '1', '--quiet']);
  assert.equal(ft.code, 0, ft.out);
  assert.match(ft.out, /LoRA r=8 alpha=32 on c_attn: [\d,]+ trainable/);
  const cfg = JSON.parse(readFileSync(join(out, 'adapter', 'adapter_config.json'), 'utf8')) as { target_modules: string[] };
  assert.deepEqual(cfg.target_modules, ['c_attn']);
  const losses = readFileSync(join(out, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { loss?: number }).flatMap((r) => (r.loss === undefined ? [] : [r.loss]));
  assert.ok(losses.at(-1)! < 0.5 * losses[0]!, `loss should fall: ${losses.join(', ')}`);

  const ev = cli(['eval', '--model', out, '--data', val, '--metric', 'exact', '--max-new-tokens', '4', '--json', '--quiet', '--threads', '1']);
  assert.equal(ev.code, 0, ev.out);
  const res = JSON.parse(ev.stdout.trim().split('\n').at(-1)!) as { score: number; n: number; predictions: string };
  assert.equal(res.n, 6);
  const rows = readFileSync(res.predictions, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { prompt: string; target: string; prediction: string });
  // Eval prompts are the template's generation prompt, the text training continued with the answer.
  assert.equal(rows[0]!.prompt, 'user: colour of sky?\nassistant: ');
  assert.ok(res.score >= 0.5, `fine-tuned answers: ${rows.map((r) => JSON.stringify(r.prediction)).join(', ')}`);
  // Generation stopped at eos_token: it never shows up as text in a prediction.
  assert.ok(rows.every((r) => !r.prediction.includes('<|endoftext|>')), JSON.stringify(rows));

  const s = cli(['sample', '--model', hf, '--adapter', out, '--prompt', 'user: colour of snow?\nassistant: ', '--max-new-tokens', '2', '--temperature', '0', '--threads', '1']);
  assert.equal(s.code, 0, s.out);
  assert.ok(s.stdout.startsWith('user: colour of snow?\nassistant: '), s.stdout);
});
