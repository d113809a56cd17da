// Loads a trained model for inference: from an atscale checkpoint directory, single-file or
// sharded (ZeRO stages 1-3: each parameter is reassembled from the ranks' chunks through the
// index), or from a Hugging Face model folder (config.json + safetensors + tokenizer.json).
import { isShardedCheckpoint, loadCheckpoint, ShardedCheckpoint, type TensorEntry } from '../checkpoint/index.js';
import { tokenizerFromJSON, type Tokenizer } from '../data/index.js';
import type { LanguageModel } from '../models/model.js';
import { type Architecture, createModel } from '../models/registry.js';
import { isHfModelDir, loadModelDir, type LoadedModelDir } from '../models/hf/folder.js';
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

/** A model from either kind of directory, with what generation needs: the token to start
 * prompts with (BOS, when the HF tokenizer_config says to add it). */
export interface LoadedModel {
  model: LanguageModel;
  params: Float32Array;
  tokenizer: Tokenizer;
  /** Ids prepended to every encoded prompt. */
  promptPrefix: number[];
  /** Set when the directory is a Hugging Face folder. */
  hf?: LoadedModelDir;
}

export function loadAnyModel(dir: string, opts: { blockSize?: number } = {}): LoadedModel {
  if (!isHfModelDir(dir)) {
    const m = loadTrainedModel(dir);
    return { model: m.model, params: m.params, tokenizer: m.tokenizer, promptPrefix: [] };
  }
  const hf = loadModelDir(dir, opts);
  if (!hf.tokenizer) throw new Error(`${dir}: no tokenizer.json; text cannot be encoded for this model`);
  const bos = hf.tokenizerConfig.bosToken;
  const promptPrefix = hf.tokenizerConfig.addBosToken && bos !== undefined ? Array.from(hf.tokenizer.encode(bos)) : [];
  if (promptPrefix.length > 1) throw new Error(`${dir}/tokenizer_config.json: bos_token ${JSON.stringify(bos)} is not one token of tokenizer.json`);
  return { model: hf.model, params: hf.params, tokenizer: hf.tokenizer, promptPrefix, hf };
}
