// One way to open any model directory atscale writes, for every command that uses a model
// (finetune, eval, sample, serve, merge):
//   a Hugging Face model folder (config.json, safetensors, tokenizer.json);
//   a checkpoint directory (atscale train's OUT/ckpt, atscale finetune's OUT/model);
//   a run directory that holds one of those (OUT with ckpt/ or model/ inside);
//   a LoRA adapter directory (adapter_config.json), or a fine-tune run holding adapter/,
//   opened on the base model its config names (or `baseOverride`).
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { Tokenizer } from '../data/index.js';
import { PLAIN_CHAT_TEMPLATE, type ChatTemplate } from '../data/finetune-examples.js';
import type { LanguageModel } from '../models/model.js';
import { LoraModel } from '../models/lora-model.js';
import { loadAnyModel, loadTrainedModel } from './load-trained.js';
import { isHfModelDir, type LoadedModelDir } from '../models/hf/folder.js';
import { adapterParams, loraFromAdapterConfig, readAdapter } from './adapter-dir.js';

export interface OpenedModel {
  model: LanguageModel;
  /** The flat parameters of `model` (the adapter's, for a LoRA model). */
  params: Float32Array;
  tokenizer: Tokenizer;
  chatTemplate: ChatTemplate;
  /** The directory the weights came from (the base, for an adapter). */
  dir: string;
  adapterDir?: string;
  meta: Record<string, unknown>;
  /** Ids every prompt starts with (BOS, when a Hugging Face tokenizer_config asks for it). */
  promptPrefix?: number[];
  /** Set for a Hugging Face folder: its config, dtypes, tokenizer_config and Jinja chat template. */
  hf?: LoadedModelDir;
}

const isAdapterDir = (d: string) => existsSync(join(d, 'adapter_config.json'));

/** The checkpoint or adapter directory that `dir` denotes. */
export function resolveModelDir(dir: string): string {
  dir = resolve(dir);
  for (const inner of ['adapter', 'model', 'ckpt']) {
    const d = join(dir, inner);
    if (existsSync(d) || existsSync(`${d}.prev`)) return d;
  }
  return dir;
}

/** Opens a base model (no adapter). */
export function openBase(dir: string, opts: { blockSize?: number } = {}): OpenedModel {
  if (isHfModelDir(dir)) {
    const m = loadAnyModel(dir, opts);
    return { model: m.model, params: m.params, tokenizer: m.tokenizer, chatTemplate: PLAIN_CHAT_TEMPLATE, dir: resolve(dir), meta: {}, promptPrefix: m.promptPrefix, hf: m.hf };
  }
  const d = resolveModelDir(dir);
  if (isAdapterDir(d)) throw new Error(`${d} is a LoRA adapter, not a base model; pass it as --adapter with --model BASE`);
  const r = loadTrainedModel(d);
  // A fine-tuned checkpoint stores the chat template it was trained with; others get the plain one.
  const template = typeof r.meta.chatTemplate === 'object' && r.meta.chatTemplate ? (r.meta.chatTemplate as ChatTemplate) : PLAIN_CHAT_TEMPLATE;
  return { model: r.model, params: r.params, tokenizer: r.tokenizer, chatTemplate: template, dir: d, meta: r.meta };
}

/** Opens `dir` (a base or an adapter) with an optional separate adapter directory. */
export function openModel(dir: string, adapter?: string, opts: { blockSize?: number } = {}): OpenedModel {
  const d = resolveModelDir(dir);
  let adapterDir = adapter ? resolveModelDir(adapter) : undefined;
  let baseDir = d;
  if (isAdapterDir(d)) {
    if (adapterDir) throw new Error(`${d} is already an adapter; pass the base model as --model and the adapter as --adapter`);
    adapterDir = d;
    baseDir = readAdapter(d).config.base_model_name_or_path;
  }
  const base = openBase(baseDir, opts);
  if (!adapterDir) return base;
  if (!isAdapterDir(adapterDir)) throw new Error(`--adapter ${adapterDir} has no adapter_config.json; it is not a LoRA adapter directory`);
  const a = readAdapter(adapterDir);
  const model = new LoraModel(base.model, base.params, loraFromAdapterConfig(a.config));
  const params = adapterParams(a, model, base.tokenizer.fingerprint());
  // The adapter renders chats as its base does (the template is the base's).
  return { ...base, model, params, adapterDir: a.dir };
}
