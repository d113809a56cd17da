// Hugging Face weight files: model.safetensors, or shards named by model.safetensors.index.json.
// Names and layouts are HF's own (GPT-2's Conv1D weights [in, out], Llama's [out, in]), which
// are also atscale's parameter names, so mapping is identity apart from GPT-2 files saved
// without the "transformer." prefix and the buffers and tied copies HF writes beside weights.
// Everything is checked against the model from headers alone, before any weight is read.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { FLOAT_DTYPES, readSafetensorsHeader, readTensorFloat32, type Dtype, type HeaderEntry, type SafetensorsHeader } from '../../checkpoint/index.js';
import type { FlatLayout } from '../../nn/flat.js';
import type { LanguageModel } from '../model.js';

export const SINGLE_FILE = 'model.safetensors';
export const INDEX_FILE = 'model.safetensors.index.json';

/** Where each tensor of a folder lives. */
export interface WeightFiles {
  tensors: Map<string, { header: SafetensorsHeader; entry: HeaderEntry }>;
  /** The files read, for error messages ("model.safetensors", or the shard names). */
  files: string[];
}

export function openWeightFiles(dir: string): WeightFiles {
  const single = join(dir, SINGLE_FILE);
  const index = join(dir, INDEX_FILE);
  const tensors: WeightFiles['tensors'] = new Map();
  if (existsSync(index)) {
    let map: Record<string, unknown>;
    try {
      map = (JSON.parse(readFileSync(index, 'utf8')) as { weight_map?: Record<string, unknown> }).weight_map ?? {};
    } catch (e) {
      throw new Error(`${index}: not valid JSON (${(e as Error).message})`);
    }
    if (typeof map !== 'object' || Object.keys(map).length === 0) throw new Error(`${index}: key "weight_map" is missing or empty; it must map each tensor name to its shard file`);
    const headers = new Map<string, SafetensorsHeader>();
    for (const [name, shard] of Object.entries(map)) {
      if (typeof shard !== 'string' || !/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(shard)) throw new Error(`${index}: weight_map["${name}"] must be a file name in the folder, got ${JSON.stringify(shard)}`);
      if (!headers.has(shard)) {
        const path = join(dir, shard);
        if (!existsSync(path)) throw new Error(`${index}: weight_map["${name}"] names shard ${shard}, which is not in ${dir}`);
        headers.set(shard, readSafetensorsHeader(path));
      }
      const header = headers.get(shard)!;
      const entry = header.entries.get(name);
      if (!entry) throw new Error(`${index}: weight_map["${name}"] says the tensor is in ${shard}, but that file has no tensor of that name`);
      tensors.set(name, { header, entry });
    }
    return { tensors, files: [...headers.keys()] };
  }
  if (!existsSync(single)) throw new Error(`${dir}: no ${SINGLE_FILE} and no ${INDEX_FILE}; a Hugging Face model folder holds its weights in one of them`);
  const header = readSafetensorsHeader(single);
  for (const entry of header.entries.values()) tensors.set(entry.name, { header, entry });
  return { tensors, files: [SINGLE_FILE] };
}

/** Tensors HF writes that are not parameters: GPT-2's causal-mask buffers, old Llama rope
 * buffers, and the LM head when it is a tied copy of the embedding. */
function ignorable(model: LanguageModel, name: string): boolean {
  if (/(^|\.)attn\.(bias|masked_bias)$/.test(name) || /rotary_emb\.inv_freq$/.test(name)) return true;
  const tied = model.units().head.some((u) => model.units().embed.includes(u));
  return tied && name === 'lm_head.weight';
}

/** The file's name for a parameter: as named, or (GPT-2 files saved from GPT2Model) without "transformer.". */
function fileName(files: WeightFiles, model: LanguageModel, param: string): string | undefined {
  if (files.tensors.has(param)) return param;
  const bare = model.family === 'gpt2' && param.startsWith('transformer.') ? param.slice('transformer.'.length) : undefined;
  return bare !== undefined && files.tensors.has(bare) ? bare : undefined;
}

/** Which config.json keys decide a parameter's shape, for errors. */
function shapeKeys(family: string, name: string): string {
  if (family === 'gpt2') return /wpe/.test(name) ? 'n_positions, n_embd' : /wte/.test(name) ? 'vocab_size, n_embd' : 'n_embd';
  if (/embed_tokens|lm_head/.test(name)) return 'vocab_size, hidden_size';
  if (/[kv]_proj/.test(name)) return 'num_key_value_heads, head_dim, hidden_size';
  if (/[qo]_proj/.test(name)) return 'num_attention_heads, head_dim, hidden_size';
  if (/mlp/.test(name)) return 'intermediate_size, hidden_size';
  return 'hidden_size';
}

/**
 * Matches every parameter of the layout to a tensor of the files (names, shapes, float
 * dtypes) and refuses tensors the model has no place for. Returns the resolved entries and
 * each parameter's stored dtype (so a save can write the same).
 */
export function resolveWeights(dir: string, files: WeightFiles, model: LanguageModel, layout: FlatLayout): { name: string; at: { header: SafetensorsHeader; entry: HeaderEntry } }[] {
  const where = (n: string) => `${dir}/${files.tensors.get(n)?.header.path.split('/').pop() ?? files.files.join(', ')}`;
  const used = new Set<string>();
  const out = layout.slots.map((s) => {
    const name = fileName(files, model, s.name);
    if (name === undefined) throw new Error(`${dir}/${files.files.join(', ')}: tensor "${s.name}" is missing; config.json describes a model that has it (shape [${s.shape.join(', ')}])`);
    const at = files.tensors.get(name)!;
    used.add(name);
    const shape = at.entry.shape;
    if (shape.length !== s.shape.length || shape.some((d, i) => d !== s.shape[i])) {
      throw new Error(`${where(name)}: tensor "${name}" has shape [${shape.join(', ')}] but config.json (${shapeKeys(model.family, s.name)}) gives [${s.shape.join(', ')}]`);
    }
    if (!FLOAT_DTYPES.includes(at.entry.dtype)) throw new Error(`${where(name)}: tensor "${name}" is ${at.entry.dtype}; weights must be F32, F16 or BF16`);
    return { name: s.name, at };
  });
  const extra = [...files.tensors.keys()].filter((n) => !used.has(n) && !ignorable(model, n));
  if (extra.length) {
    throw new Error(`${where(extra[0]!)}: tensor "${extra[0]}"${extra.length > 1 ? ` (and ${extra.length - 1} more)` : ''} has no place in the model config.json describes (check num_hidden_layers / n_layer, tie_word_embeddings and the bias flags)`);
  }
  return out;
}

/** Reads resolved weights into one flat float32 buffer (F16/BF16 widen exactly). */
export function readWeights(layout: FlatLayout, resolved: ReturnType<typeof resolveWeights>): { params: Float32Array; dtypes: Record<string, Dtype> } {
  const params = new Float32Array(layout.size);
  const dtypes: Record<string, Dtype> = {};
  for (const r of resolved) {
    readTensorFloat32(r.at.header, r.at.entry, layout.view(params, r.name));
    dtypes[r.name] = r.at.entry.dtype;
  }
  return { params, dtypes };
}
