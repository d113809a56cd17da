// Serving a LoRA adapter: `load(base, adapter)` folds W + scale * B A into the base weights
// (the same weights `atscale merge` writes), and the served model's greedy text changes with it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join, dirname } from 'node:path';
import { load } from '../../src/serve/load.js';
import { Batcher } from '../../src/serve/batcher.js';
import { saveAdapter } from '../../src/engine/adapter-dir.js';
import { LoraModel } from '../../src/models/lora-model.js';
import { DEFAULT_LORA } from '../../src/nn/lora.js';
import { FlatLayout } from '../../src/nn/flat.js';
import { Rng } from '../../src/tensor/rng.js';
import { tinyCheckpoint } from './fixture.js';

const greedy = { temperature: 0, topP: 1, topK: 0, presencePenalty: 0, frequencyPenalty: 0, topLogprobs: -1 };

async function continuation(dir: string, adapter?: string): Promise<string> {
  const s = load(dir, adapter);
  const b = new Batcher(s.model, s.params, { slots: 2, prefillChunk: 8 });
  const ids: number[] = [];
  await new Promise((resolve) => b.submit({ prompt: Array.from(s.tokenizer.encode('Hello there')), maxTokens: 16, sampling: greedy, rng: new Rng(0), onToken: (t) => (ids.push(t.id), true), onDone: resolve }));
  return s.tokenizer.decode(ids);
}

test('an adapter is folded into the served weights and changes the output', async () => {
  const base = tinyCheckpoint('tiny');
  const opened = load(base);
  const lora = new LoraModel(opened.model, opened.params, { ...DEFAULT_LORA, r: 2 });
  const rng = new Rng(9);
  const adapter = new FlatLayout(lora).initialise(4).map(() => rng.normal()); // B != 0: the adapter does something
  const adapterDir = join(dirname(base), 'my-adapter');
  saveAdapter(adapterDir, lora, adapter, base, opened.tokenizer.fingerprint());
  const served = load(base, adapterDir);
  assert.equal(served.id, 'my-adapter');
  assert.deepEqual(served.params, lora.merge(adapter));
  assert.notEqual(await continuation(base, adapterDir), await continuation(base));
});
