// Hugging Face model folders in and out: config.json, weights (one file or shards with an
// index), tokenizer.json and tokenizer_config.json (special tokens, chat template). Loading
// checks everything that can be checked from headers and JSON before allocating the weights.
import { existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { commitDirectory, float32ToBf16Bits, float32ToF16Bits, writeFileSynced, writeSafetensorsFile, type Dtype, type TensorEntry } from '../../checkpoint/index.js';
import { JinjaChatTemplate, tokenizerFromHfJSON, type TemplateMessage, type Tokenizer } from '../../data/index.js';
import { FlatLayout } from '../../nn/flat.js';
import type { LanguageModel } from '../model.js';
import { createModel, type Architecture } from '../registry.js';
import { architectureFromHfConfig, hfConfigFromArchitecture } from './hf-config.js';
import { INDEX_FILE, SINGLE_FILE, openWeightFiles, readWeights, resolveWeights } from './hf-weights.js';
import { readTokenizerConfig, type TokenizerConfig } from './tokenizer-config.js';

export interface LoadedModelDir {
  model: LanguageModel;
  architecture: Architecture;
  params: Float32Array;
  /** Each parameter's dtype in the files (F32, BF16, F16): a save writes them back the same. */
  dtypes: Record<string, Dtype>;
  /** tokenizer.json, when the folder has one. */
  tokenizer?: Tokenizer;
  /** tokenizer_config.json: chat template, special tokens, whether to add BOS. */
  tokenizerConfig: TokenizerConfig;
  /** config.json as read (unknown keys are written back by saveModelDir). */
  hfConfig: Record<string, unknown>;
  /** The prompt text for a conversation by the folder's chat template (parsed on first use),
   * with its bos/eos tokens; throws when the folder has no template. */
  applyChatTemplate(messages: readonly TemplateMessage[], opts?: { addGenerationPrompt?: boolean }): string;
}

function readJson(path: string): Record<string, unknown> {
  let v: unknown;
  try {
    v = JSON.parse(readFileSync(path, 'utf8'));
  } catch (e) {
    throw new Error(`${path}: not valid JSON (${(e as Error).message})`);
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new Error(`${path}: must be a JSON object`);
  return v as Record<string, unknown>;
}

/** Whether dir looks like a Hugging Face model folder (has config.json with a model_type). */
export function isHfModelDir(dir: string): boolean {
  return existsSync(join(dir, 'config.json'));
}

/**
 * Loads a HF folder. `blockSize` caps the positions of a Llama-family model (KV caches and
 * rope tables; default max_position_embeddings).
 */
export function loadModelDir(dir: string, opts: { blockSize?: number } = {}): LoadedModelDir {
  const configPath = join(dir, 'config.json');
  if (!existsSync(configPath)) throw new Error(`${dir}: no config.json; not a Hugging Face model folder`);
  const hfConfig = readJson(configPath);
  const architecture = architectureFromHfConfig(hfConfig, configPath, opts);
  const model = createModel(architecture);
  const layout = new FlatLayout(model);
  const files = openWeightFiles(dir);
  const resolved = resolveWeights(dir, files, model, layout);
  let tokenizer: Tokenizer | undefined;
  const tokPath = join(dir, 'tokenizer.json');
  if (existsSync(tokPath)) {
    try {
      tokenizer = tokenizerFromHfJSON(readJson(tokPath));
    } catch (e) {
      throw new Error(`${tokPath}: ${(e as Error).message}`);
    }
    if (tokenizer.vocabSize > model.dims.vocabSize) {
      throw new Error(`${tokPath}: the tokenizer has ${tokenizer.vocabSize} ids (model.vocab and added_tokens) but config.json key "vocab_size" is ${model.dims.vocabSize}; ids past it have no embedding row`);
    }
  }
  const tokenizerConfig = readTokenizerConfig(dir);
  const { params, dtypes } = readWeights(layout, resolved);
  let template: JinjaChatTemplate | undefined;
  const applyChatTemplate = (messages: readonly TemplateMessage[], o: { addGenerationPrompt?: boolean } = {}): string => {
    if (tokenizerConfig.chatTemplate === undefined) throw new Error(`${dir}/tokenizer_config.json has no "chat_template"`);
    template ??= new JinjaChatTemplate(tokenizerConfig.chatTemplate);
    return template.render(messages, { bos_token: tokenizerConfig.bosToken, eos_token: tokenizerConfig.eosToken, add_generation_prompt: o.addGenerationPrompt ?? false });
  };
  return { model, architecture, params, dtypes, tokenizer, tokenizerConfig, hfConfig, applyChatTemplate };
}

export interface SaveModelDirOptions {
  model: LanguageModel;
  params: Float32Array;
  tokenizer?: Tokenizer;
  /** tokenizer_config.json to write as is (chat template, special tokens). */
  tokenizerConfig?: Record<string, unknown>;
  /** config.json the model came from: keys atscale does not interpret are kept. */
  hfConfig?: Record<string, unknown>;
  /** Per-parameter dtype (default F32); BF16/F16 round to nearest even. */
  dtypes?: Record<string, Dtype>;
  /** Split into model-0000x-of-0000y.safetensors shards of at most this many bytes, with an index. */
  maxShardBytes?: number;
}

/** Writes a HF folder atomically (staged beside `dir`, then renamed; an old `dir` becomes dir.prev). */
export function saveModelDir(dir: string, opts: SaveModelDirOptions): void {
  if (opts.params.length !== new FlatLayout(opts.model).size) throw new Error(`saveModelDir: ${opts.params.length} parameter values for a model of ${new FlatLayout(opts.model).size}`);
  const o = { ...opts, ...withHfBiases(opts.model, opts.params) };
  const layout = new FlatLayout(o.model);
  const tensors: [string, TensorEntry][] = layout.slots.map((s) => {
    const data = layout.view(o.params, s.name);
    const dtype = o.dtypes?.[s.name] ?? 'F32';
    const stored = dtype === 'F32' ? data : dtype === 'BF16' ? float32ToBf16Bits(data) : dtype === 'F16' ? float32ToF16Bits(data) : undefined;
    if (!stored) throw new Error(`saveModelDir: dtype ${dtype} for ${s.name}; use F32, BF16 or F16`);
    return [s.name, { dtype, shape: [...s.shape], data: stored }];
  });
  const staging = `${dir}.staging-${process.pid}`;
  rmSync(staging, { recursive: true, force: true });
  mkdirSync(staging, { recursive: true });
  const files: Record<string, { bytes: number; sha256: string }> = {};
  const write = (name: string, text: string) => (files[name] = writeFileSynced(join(staging, name), text));
  write('config.json', JSON.stringify({ ...hfConfigFromArchitecture(o.model.architecture(), o.hfConfig), torch_dtype: torchDtype(tensors) }, null, 2) + '\n');
  const meta = { format: 'pt' };
  const shards = shardTensors(tensors, o.maxShardBytes);
  if (shards.length === 1) files[SINGLE_FILE] = writeSafetensorsFile(join(staging, SINGLE_FILE), Object.fromEntries(shards[0]!), meta);
  else {
    const weightMap: Record<string, string> = {};
    let total = 0;
    shards.forEach((shard, i) => {
      const name = `model-${String(i + 1).padStart(5, '0')}-of-${String(shards.length).padStart(5, '0')}.safetensors`;
      files[name] = writeSafetensorsFile(join(staging, name), Object.fromEntries(shard), meta);
      for (const [t, e] of shard) {
        weightMap[t] = name;
        total += e.data.byteLength;
      }
    });
    write(INDEX_FILE, JSON.stringify({ metadata: { total_size: total }, weight_map: weightMap }, null, 2) + '\n');
  }
  if (o.tokenizer) write('tokenizer.json', JSON.stringify(o.tokenizer.toJSON()));
  if (o.tokenizerConfig) write('tokenizer_config.json', JSON.stringify(o.tokenizerConfig, null, 2) + '\n');
  commitDirectory(staging, dir, { format: 'atscale-hf-folder', version: 1, files });
}

/** HF's GPT-2 always has biases; a bias-free atscale GPT is the same function with zero biases. */
function withHfBiases(model: LanguageModel, params: Float32Array): { model: LanguageModel; params: Float32Array } {
  const arch = model.architecture();
  if (model.family !== 'gpt2' || arch['bias'] !== false) return { model, params };
  const biased = createModel({ ...arch, bias: true });
  const from = new FlatLayout(model);
  const to = new FlatLayout(biased);
  const out = new Float32Array(to.size);
  for (const s of from.slots) out.set(from.view(params, s.name), to.byName.get(s.name)!.offset);
  return { model: biased, params: out };
}

function torchDtype(tensors: [string, TensorEntry][]): string {
  const d = tensors[0]?.[1].dtype;
  return d === 'BF16' ? 'bfloat16' : d === 'F16' ? 'float16' : 'float32';
}

/** Tensors in layout order, cut into shards of at most maxBytes (a larger tensor gets its own). */
function shardTensors(tensors: [string, TensorEntry][], maxBytes?: number): [string, TensorEntry][][] {
  if (!maxBytes) return [tensors];
  const shards: [string, TensorEntry][][] = [[]];
  let size = 0;
  for (const t of tensors) {
    const bytes = t[1].data.byteLength;
    if (size > 0 && size + bytes > maxBytes) {
      shards.push([]);
      size = 0;
    }
    shards.at(-1)!.push(t);
    size += bytes;
  }
  return shards;
}
