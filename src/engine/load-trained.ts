// Loads a trained model for inference: from an atscale checkpoint directory, single-file or
// sharded (ZeRO stages 1-3: each parameter is reassembled from the ranks' chunks through the
// index), or from a Hugging Face model folder (config.json + safetensors + tokenizer.json).
// A checkpoint's meta is checked for meaning, every tensor is read as the dtype its header
// declares, tensors the model does not have are refused, and the tokenizer must match the
// fingerprint the checkpoint recorded.
import { floatTensor, isShardedCheckpoint, isUniversalCheckpoint, loadCheckpoint, ShardedCheckpoint, UniversalCheckpoint, type TensorEntry } from '../checkpoint/index.js';
import { tokenizerFromJSON, type Tokenizer } from '../data/index.js';
import type { LanguageModel } from '../models/model.js';
import { createModel } from '../models/registry.js';
import { isHfModelDir, loadModelDir, type LoadedModelDir } from '../models/hf/folder.js';
import { FlatLayout } from '../nn/flat.js';
import { checkArchitecture } from './validate-meta.js';
import { OPT_M, OPT_V } from './optimizer-names.js';
import { checkUniversalTensors } from './universal/state.js';

export function loadTrainedModel(dir: string): { model: LanguageModel; params: Float32Array; tokenizer: Tokenizer; meta: Record<string, unknown> } {
  // Universal checkpoints hold the parameters as tp shards in pieces; readFull joins them.
  const universal = isUniversalCheckpoint(dir);
  const sharded = universal || isShardedCheckpoint(dir);
  const ck = universal ? new UniversalCheckpoint(dir) : sharded ? new ShardedCheckpoint(dir) : loadCheckpoint(dir);
  const names = ck instanceof UniversalCheckpoint ? Object.keys(ck.manifest.tensors) : ck instanceof ShardedCheckpoint ? Object.keys(ck.index.tensors) : Object.keys(ck.tensors);
  const tensor = (name: string): TensorEntry => {
    if (ck instanceof UniversalCheckpoint) return { dtype: 'F32', shape: ck.manifest.tensors[name]!.shape, data: ck.readFull(name, 'param') };
    return ck instanceof ShardedCheckpoint ? ck.readTensor(name) : ck.tensors[name]!;
  };
  const meta = ck.meta as unknown;
  if (typeof meta !== 'object' || meta === null || Array.isArray(meta)) throw new Error(`checkpoint ${dir}: meta.json must be a JSON object, got ${JSON.stringify(meta)}`);
  const m = meta as Record<string, unknown>;
  // Checkpoints from before model families recorded a GPT-2 config under `config`.
  if (m.architecture === undefined && m.config === undefined) throw new Error(`checkpoint ${dir} has no model config in meta.json; it was not written by atscale train`);
  const arch = checkArchitecture(m.architecture ?? m.config, `checkpoint ${dir}`);
  const tokJson = ck.files['tokenizer.json'];
  if (!tokJson) throw new Error(`checkpoint ${dir} has no tokenizer.json`);
  let tokenizer: Tokenizer;
  try {
    tokenizer = tokenizerFromJSON(JSON.parse(tokJson) as object);
  } catch (e) {
    throw new Error(`checkpoint ${dir}: tokenizer.json is not a valid tokenizer (${(e as Error).message})`);
  }
  if (m.tokenizer !== undefined && m.tokenizer !== tokenizer.fingerprint()) {
    throw new Error(`checkpoint ${dir}: tokenizer.json does not match the fingerprint in meta.json (${String(m.tokenizer).slice(0, 12)}... vs ${tokenizer.fingerprint().slice(0, 12)}...); the tokenizer belongs to another run`);
  }
  const model = createModel(arch);
  // A model's embedding may have spare rows past its tokenizer's ids, never fewer.
  if (tokenizer.vocabSize > model.dims.vocabSize) throw new Error(`checkpoint ${dir}: tokenizer.json has ${tokenizer.vocabSize} tokens but the model in meta.json only ${model.dims.vocabSize}`);
  const layout = new FlatLayout(model);
  const params = new Float32Array(layout.size);
  if (ck instanceof UniversalCheckpoint) checkUniversalTensors(ck, layout, model);
  const dict: Record<string, { shape: readonly number[]; data: ArrayLike<number> }> = {};
  const source = universal ? `${ck.dir}/manifest.json` : sharded ? dir : `${(ck as ReturnType<typeof loadCheckpoint>).dir}/model.safetensors`;
  for (const name of names) {
    if (name === OPT_M || name === OPT_V) continue;
    dict[name] = { shape: tensor(name).shape, data: floatTensor(tensor(name), name, source) };
  }
  try {
    layout.loadStateDict(params, dict);
  } catch (e) {
    throw new Error(`${source}: ${(e as Error).message} (meta.json's config does not describe these tensors)`);
  }
  return { model, params, tokenizer, meta: m };
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
