// Loads a trained model for inference from a checkpoint directory, single-file or sharded
// (ZeRO stages 1-3: each parameter is reassembled from the ranks' chunks through the index).
// The meta's config is checked for meaning, every tensor is read as the dtype its header
// declares, tensors the model does not have are refused (not silently dropped), and the
// tokenizer must match the fingerprint the checkpoint recorded.
import { floatTensor, isShardedCheckpoint, loadCheckpoint, ShardedCheckpoint, type TensorEntry } from '../checkpoint/index.js';
import { tokenizerFromJSON, type Tokenizer } from '../data/index.js';
import { GPT } from '../models/gpt.js';
import { FlatLayout } from '../nn/flat.js';
import { checkMetaConfig } from './validate-meta.js';
import { OPT_M, OPT_V } from './local-trainer.js';

export function loadTrainedModel(dir: string): { model: GPT; params: Float32Array; tokenizer: Tokenizer; meta: Record<string, unknown> } {
  const sharded = isShardedCheckpoint(dir);
  const ck = sharded ? new ShardedCheckpoint(dir) : loadCheckpoint(dir);
  const names = sharded ? Object.keys((ck as ShardedCheckpoint).index.tensors) : Object.keys((ck as ReturnType<typeof loadCheckpoint>).tensors);
  const tensor = (name: string): TensorEntry => (sharded ? (ck as ShardedCheckpoint).readTensor(name) : (ck as ReturnType<typeof loadCheckpoint>).tensors[name]!);
  const meta = ck.meta as unknown;
  if (typeof meta !== 'object' || meta === null || Array.isArray(meta)) throw new Error(`checkpoint ${dir}: meta.json must be a JSON object, got ${JSON.stringify(meta)}`);
  if (!('config' in meta)) throw new Error(`checkpoint ${dir} has no model config in meta.json; it was not written by atscale train`);
  const config = checkMetaConfig((meta as Record<string, unknown>).config, `checkpoint ${dir}`);
  const tokJson = ck.files['tokenizer.json'];
  if (!tokJson) throw new Error(`checkpoint ${dir} has no tokenizer.json`);
  let tokenizer: Tokenizer;
  try {
    tokenizer = tokenizerFromJSON(JSON.parse(tokJson) as object);
  } catch (e) {
    throw new Error(`checkpoint ${dir}: tokenizer.json is not a valid tokenizer (${(e as Error).message})`);
  }
  const recorded = (meta as Record<string, unknown>).tokenizer;
  if (recorded !== undefined && recorded !== tokenizer.fingerprint()) {
    throw new Error(`checkpoint ${dir}: tokenizer.json does not match the fingerprint in meta.json (${String(recorded).slice(0, 12)}... vs ${tokenizer.fingerprint().slice(0, 12)}...); the tokenizer belongs to another run`);
  }
  if (tokenizer.vocabSize !== config.vocabSize) throw new Error(`checkpoint ${dir}: tokenizer.json has ${tokenizer.vocabSize} tokens but meta.json config.vocabSize is ${config.vocabSize}`);
  const model = new GPT(config);
  const layout = new FlatLayout(model);
  const params = new Float32Array(layout.size);
  const dict: Record<string, { shape: readonly number[]; data: ArrayLike<number> }> = {};
  const source = sharded ? dir : `${(ck as ReturnType<typeof loadCheckpoint>).dir}/model.safetensors`;
  for (const name of names) {
    if (name === OPT_M || name === OPT_V) continue;
    const t = tensor(name);
    dict[name] = { shape: t.shape, data: floatTensor(t, name, source) };
  }
  try {
    layout.loadStateDict(params, dict);
  } catch (e) {
    throw new Error(`${source}: ${(e as Error).message} (meta.json's config does not describe these tensors)`);
  }
  return { model, params, tokenizer, meta: meta as Record<string, unknown> };
}
