// Hugging Face folders written the way HF's save_pretrained lays them out, with the generic
// safetensors writer (not atscale's saveModelDir), for the loader tests.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { float32ToBf16Bits, writeSafetensorsFile, type Dtype, type TensorEntry } from '../../src/checkpoint/index.js';
import { Rng } from '../../src/tensor/rng.js';

export type Spec = Record<string, number[]>;

/** HF names and shapes of a Llama-family model (one layer per entry of `layers`). */
export function llamaSpec(c: { layers: number; hidden: number; heads: number; kvHeads: number; inter: number; vocab: number; qkvBias?: boolean; tied?: boolean }): Spec {
  const hd = c.hidden / c.heads;
  const s: Spec = { 'model.embed_tokens.weight': [c.vocab, c.hidden], 'model.norm.weight': [c.hidden] };
  for (let i = 0; i < c.layers; i++) {
    const p = `model.layers.${i}.`;
    Object.assign(s, {
      [`${p}self_attn.q_proj.weight`]: [c.heads * hd, c.hidden], [`${p}self_attn.k_proj.weight`]: [c.kvHeads * hd, c.hidden],
      [`${p}self_attn.v_proj.weight`]: [c.kvHeads * hd, c.hidden], [`${p}self_attn.o_proj.weight`]: [c.hidden, c.heads * hd],
      [`${p}mlp.gate_proj.weight`]: [c.inter, c.hidden], [`${p}mlp.up_proj.weight`]: [c.inter, c.hidden], [`${p}mlp.down_proj.weight`]: [c.hidden, c.inter],
      [`${p}input_layernorm.weight`]: [c.hidden], [`${p}post_attention_layernorm.weight`]: [c.hidden],
    });
    if (c.qkvBias) Object.assign(s, { [`${p}self_attn.q_proj.bias`]: [c.heads * hd], [`${p}self_attn.k_proj.bias`]: [c.kvHeads * hd], [`${p}self_attn.v_proj.bias`]: [c.kvHeads * hd] });
  }
  if (!c.tied) s['lm_head.weight'] = [c.vocab, c.hidden];
  return s;
}

/** HF names and shapes of GPT2LMHeadModel (Conv1D weights [in, out]), with `prefix` "transformer." or "" (GPT2Model). */
export function gpt2Spec(c: { layers: number; embd: number; positions: number; vocab: number }, prefix = 'transformer.'): Spec {
  const C = c.embd;
  const s: Spec = { [`${prefix}wte.weight`]: [c.vocab, C], [`${prefix}wpe.weight`]: [c.positions, C], [`${prefix}ln_f.weight`]: [C], [`${prefix}ln_f.bias`]: [C] };
  for (let i = 0; i < c.layers; i++) {
    const p = `${prefix}h.${i}.`;
    Object.assign(s, {
      [`${p}ln_1.weight`]: [C], [`${p}ln_1.bias`]: [C], [`${p}attn.c_attn.weight`]: [C, 3 * C], [`${p}attn.c_attn.bias`]: [3 * C],
      [`${p}attn.c_proj.weight`]: [C, C], [`${p}attn.c_proj.bias`]: [C], [`${p}ln_2.weight`]: [C], [`${p}ln_2.bias`]: [C],
      [`${p}mlp.c_fc.weight`]: [C, 4 * C], [`${p}mlp.c_fc.bias`]: [4 * C], [`${p}mlp.c_proj.weight`]: [4 * C, C], [`${p}mlp.c_proj.bias`]: [C],
    });
  }
  return s;
}

/** Random tensors for a spec; `bf16` names are stored as BF16 bits. */
export function randomTensors(spec: Spec, seed: number, bf16: (name: string) => boolean = () => false): Record<string, TensorEntry> {
  const rng = new Rng(seed);
  const out: Record<string, TensorEntry> = {};
  for (const [name, shape] of Object.entries(spec)) {
    const values = Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => 0.1 * rng.normal());
    out[name] = bf16(name) ? { dtype: 'BF16' as Dtype, shape, data: float32ToBf16Bits(values) } : { dtype: 'F32', shape, data: values };
  }
  return out;
}

/** Writes config.json and the weights (one file, or `shards` files with an index) into dir. */
export function writeHfFolder(dir: string, config: object, tensors: Record<string, TensorEntry>, shards = 1, extra: Record<string, unknown> = {}): void {
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'config.json'), JSON.stringify(config));
  for (const [name, value] of Object.entries(extra)) writeFileSync(join(dir, name), typeof value === 'string' ? value : JSON.stringify(value));
  const names = Object.keys(tensors);
  if (shards === 1) {
    writeSafetensorsFile(join(dir, 'model.safetensors'), tensors, { format: 'pt' });
    return;
  }
  const weightMap: Record<string, string> = {};
  for (let k = 0; k < shards; k++) {
    const file = `model-${String(k + 1).padStart(5, '0')}-of-${String(shards).padStart(5, '0')}.safetensors`;
    const part = names.filter((_, i) => i % shards === k);
    writeSafetensorsFile(join(dir, file), Object.fromEntries(part.map((n) => [n, tensors[n]!])), { format: 'pt' });
    for (const n of part) weightMap[n] = file;
  }
  writeFileSync(join(dir, 'model.safetensors.index.json'), JSON.stringify({ metadata: { total_size: 0 }, weight_map: weightMap }));
}

export const LLAMA_CONFIG = {
  model_type: 'llama', architectures: ['LlamaForCausalLM'], hidden_size: 32, intermediate_size: 48, num_hidden_layers: 2, num_attention_heads: 4,
  num_key_value_heads: 2, max_position_embeddings: 32, vocab_size: 704, rms_norm_eps: 1e-5, rope_theta: 500000, hidden_act: 'silu', tie_word_embeddings: false,
  rope_scaling: { rope_type: 'llama3', factor: 8, low_freq_factor: 1, high_freq_factor: 4, original_max_position_embeddings: 16 }, bos_token_id: 700, eos_token_id: 701, torch_dtype: 'float32',
};
export const LLAMA_SPEC = llamaSpec({ layers: 2, hidden: 32, heads: 4, kvHeads: 2, inter: 48, vocab: 704 });
