// Loads a trained model for inference from a checkpoint directory (single-file checkpoints;
// a sharded ZeRO checkpoint is consolidated first with its index).
import { loadCheckpoint } from '../checkpoint/index.js';
import { tokenizerFromJSON, type Tokenizer } from '../data/index.js';
import { GPT } from '../models/gpt.js';
import type { GPTConfig } from '../models/config.js';
import { FlatLayout } from '../nn/flat.js';

export function loadTrainedModel(dir: string): { model: GPT; params: Float32Array; tokenizer: Tokenizer; meta: Record<string, unknown> } {
  const ck = loadCheckpoint(dir);
  const config = ck.meta.config as GPTConfig | undefined;
  if (!config) throw new Error(`checkpoint ${dir} has no model config in meta.json; it was not written by atscale train`);
  const tokJson = ck.files['tokenizer.json'];
  if (!tokJson) throw new Error(`checkpoint ${dir} has no tokenizer.json`);
  const model = new GPT(config);
  const layout = new FlatLayout(model);
  const params = new Float32Array(layout.size);
  const dict: Record<string, { shape: readonly number[]; data: ArrayLike<number> }> = {};
  for (const s of layout.slots) {
    const t = ck.tensors[s.name];
    if (t) dict[s.name] = { shape: t.shape, data: t.data as Float32Array };
  }
  layout.loadStateDict(params, dict);
  return { model, params, tokenizer: tokenizerFromJSON(JSON.parse(tokJson) as object), meta: ck.meta };
}
