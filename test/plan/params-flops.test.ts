import { test } from 'node:test';
import assert from 'node:assert/strict';
import { iterationFlops, paramCount } from '../../src/plan/params-flops.js';
import { MODEL_PRESETS } from '../../src/plan/presets.js';
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
