// Loads a trained model for inference from a checkpoint directory, single-file or sharded
// (ZeRO stages 1-3: each parameter is reassembled from the ranks' chunks through the index).
import { isShardedCheckpoint, loadCheckpoint, ShardedCheckpoint, type TensorEntry } from '../checkpoint/index.js';
import { tokenizerFromJSON, type Tokenizer } from '../data/index.js';
import type { LanguageModel } from '../models/model.js';
import { type Architecture, createModel } from '../models/registry.js';
import { FlatLayout } from '../nn/flat.js';

export function loadTrainedModel(dir: string): { model: LanguageModel; params: Float32Array; tokenizer: Tokenizer; meta: Record<string, unknown> } {
  const sharded = isShardedCheckpoint(dir);
  const ck = sharded ? new ShardedCheckpoint(dir) : loadCheckpoint(dir);
  const tensor = (name: string): TensorEntry | undefined => (sharded ? (ck as ShardedCheckpoint).readTensor(name) : (ck as ReturnType<typeof loadCheckpoint>).tensors[name]);
  // Checkpoints from before model families recorded a GPT-2 config under `config`.
  const arch = (ck.meta.architecture ?? ck.meta.config) as Architecture | undefined;
  if (!arch) throw new Error(`checkpoint ${dir} has no model config in meta.json; it was not written by atscale train`);
  const tokJson = ck.files['tokenizer.json'];
  if (!tokJson) throw new Error(`checkpoint ${dir} has no tokenizer.json`);
  const model = createModel(arch);
  const layout = new FlatLayout(model);
  const params = new Float32Array(layout.size);
  const dict: Record<string, { shape: readonly number[]; data: ArrayLike<number> }> = {};
  for (const s of layout.slots) {
    const t = tensor(s.name);
    if (t) dict[s.name] = { shape: t.shape, data: t.data as Float32Array };
  }
  layout.loadStateDict(params, dict);
  return { model, params, tokenizer: tokenizerFromJSON(JSON.parse(tokJson) as object), meta: ck.meta };
}
