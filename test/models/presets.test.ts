// Published model sizes: each preset's parameter count is within 1% of the count its authors
// publish, the closed-form count equals the model's actual parameter list, and each preset
// survives config.json and back unchanged.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MODEL_PRESETS } from '../../src/models/presets.js';
import { createModel } from '../../src/models/registry.js';
import { FlatLayout } from '../../src/nn/flat.js';
import { architectureFromHfConfig, hfConfigFromArchitecture } from '../../src/models/hf/hf-config.js';

test('presets of published sizes: GPT-2 124M..1.5B, Llama 3.2 1B/3B, Llama 3 8B/70B/405B, SmolLM2, Qwen2.5', () => {
  const expected = ['gpt2-124m', 'gpt2-355m', 'gpt2-774m', 'gpt2-1.5b', 'llama-3.2-1b', 'llama-3.2-3b', 'llama-3-8b', 'llama-3-70b', 'llama-3-405b', 'smollm2-135m', 'smollm2-360m', 'qwen2.5-0.5b', 'qwen2.5-7b'];
  assert.deepEqual(Object.keys(MODEL_PRESETS).sort(), expected.sort());
});

for (const [name, p] of Object.entries(MODEL_PRESETS)) {
  test(`${name}: parameter count within 1% of the published ${p.publishedParams / 1e9}B (${p.source})`, () => {
    const model = createModel(p.architecture);
    const n = model.paramCount();
    // The closed form and the model's parameters (tied embeddings once) are the same number.
    assert.equal(n, new FlatLayout(model).size);
    const off = Math.abs(n - p.publishedParams) / p.publishedParams;
    assert.ok(off < 0.01, `${n} parameters is ${(off * 100).toFixed(2)}% from the published ${p.publishedParams}`);
    const again = architectureFromHfConfig(hfConfigFromArchitecture(model.architecture()), `${name} config.json`);
    assert.deepEqual(createModel(again).architecture(), model.architecture());
  });
}
