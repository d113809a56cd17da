import { test } from 'node:test';
import assert from 'node:assert/strict';
import { iterationFlops, paramCount } from '../../src/plan/params-flops.js';
import { MODEL_PRESETS } from '../../src/plan/presets.js';
import { PUBLISHED_PARAMS } from '../../src/plan/model-presets.js';
import { activeParamCount } from '../../src/plan/params-flops.js';
import type { ModelSpec } from '../../src/plan/specs.js';

const close = (a: number, b: number, rel: number, what: string) => assert.ok(Math.abs(a / b - 1) <= rel, `${what}: ${a} vs ${b}`);

test('parameter counts of published models', () => {
  close(paramCount(MODEL_PRESETS['gpt2-small']!), 124.4e6, 0.005, 'GPT-2 small');
  close(paramCount(MODEL_PRESETS['gpt2-xl']!), 1.558e9, 0.005, 'GPT-2 XL');
  close(paramCount(MODEL_PRESETS['gpt3-175b']!), 175e9, 0.01, 'GPT-3');
  close(paramCount(MODEL_PRESETS['mt-nlg-530b']!), 530e9, 0.01, 'MT-NLG');
  close(paramCount(MODEL_PRESETS['turing-nlg-17b']!), 17.2e9, 0.02, 'Turing-NLG');
  // nanoGPT prints 10.65M: it leaves out position embeddings (98k) and its config has no biases.
  close(paramCount(MODEL_PRESETS['shakespeare-char']!) - 256 * 384 - 6 * 13 * 384, 10.65e6, 0.005, 'shakespeare-char');
});

test('Narayanan closed forms: P, and FLOPs with full recomputation and without', () => {
  const m: ModelSpec = { name: 'x', layers: 40, hidden: 6144, heads: 48, seqLen: 2048, vocab: 51200, ffn: 4 * 6144 };
  const { layers: l, hidden: h, vocab: V, seqLen: s } = m;
  close(paramCount(m), 12 * l * h * h * (1 + 13 / (12 * h) + (V + s) / (12 * l * h)), 1e-12, 'P');
  const B = 1024;
  const f = iterationFlops(m, B, s, 'full');
  close(f.hardware, 96 * B * s * l * h * h * (1 + s / (6 * h) + V / (16 * l * h)), 1e-12, 'F with recomputation');
  close(f.model, 72 * B * s * l * h * h * (1 + s / (6 * h) + V / (12 * l * h)), 1e-12, 'model FLOPs');
  assert.equal(iterationFlops(m, B, s, 'none').hardware, f.model);
  const sel = iterationFlops(m, B, s, 'selective').hardware;
  assert.ok(sel > f.model && sel < f.hardware);
});

test('published model sizes: every preset with a published count matches it within 1%', () => {
  assert.ok(Object.keys(PUBLISHED_PARAMS).length >= 13);
  for (const [name, published] of Object.entries(PUBLISHED_PARAMS)) {
    const m = MODEL_PRESETS[name];
    assert.ok(m, `preset ${name}`);
    close(paramCount(m), published, 0.01, name);
  }
  // The Hugging Face counts include the final norm the closed form leaves out: within 1e-5.
  close(paramCount(MODEL_PRESETS['qwen2.5-0.5b']!), 494_032_768 - 896, 1e-12, 'Qwen2.5-0.5B exactly, less its final norm');
  close(paramCount(MODEL_PRESETS['llama3-8b']!), 8_030_261_248 - 4096, 1e-12, 'Llama 3 8B exactly, less its final norm');
});

test('GQA, SwiGLU, untied heads and experts change the count as their shapes say', () => {
  const base: ModelSpec = { name: 'x', layers: 2, hidden: 1024, heads: 16, seqLen: 128, vocab: 1000, ffn: 4096, bias: 'none', norm: 'rmsnorm', positions: 'rope' };
  const dense = paramCount(base);
  // 16 -> 4 kv heads: K and V shrink from h x h to h x h/4 each.
  close(dense - paramCount({ ...base, kvHeads: 4 }), 2 * 2 * (1024 * 1024 - 1024 * 256), 1e-12, 'GQA');
  close(paramCount({ ...base, gatedMlp: true }) - dense, 2 * 1024 * 4096, 1e-12, 'SwiGLU adds one h x f matrix per layer');
  close(paramCount({ ...base, tiedEmbeddings: false }) - dense, 1000 * 1024, 1e-12, 'untied output');
  const moe = { ...base, moe: { experts: 8, topK: 2, capacityFactor: 1 } };
  close(paramCount(moe) - dense, 2 * (7 * 2 * 1024 * 4096 + 1024 * 8), 1e-12, '8 experts and a router');
  close(activeParamCount(moe), paramCount(moe) - 2 * 6 * 2 * 1024 * 4096, 1e-12, 'top-2 of 8 active');
  // Mixtral 8x7B: 12.9B active parameters.
  close(activeParamCount(MODEL_PRESETS['mixtral-8x7b']!), 12.9e9, 0.01, 'Mixtral active');
});
