// Hugging Face config.json <-> atscale architecture records. Every key the maths depends on
// is read and checked here, with the file and key named on error; a config that asks for
// something atscale would compute differently (another activation, sliding windows, another
// rope type) is refused rather than silently approximated.
import type { Architecture } from '../registry.js';
import type { GPTConfig } from '../config.js';
import type { LlamaConfig } from '../llama-config.js';

export const HF_MODEL_TYPES = ['gpt2', 'llama', 'qwen2', 'mistral'] as const;

type Raw = Record<string, unknown>;

class ConfigReader {
  constructor(readonly raw: Raw, readonly file: string) {}

  fail(key: string, why: string): never {
    throw new Error(`${this.file}: key "${key}" ${why}`);
  }

  int(key: string, fallback?: number): number {
    const v = this.raw[key] ?? fallback;
    if (v === undefined) this.fail(key, 'is missing');
    if (!Number.isInteger(v) || (v as number) <= 0) this.fail(key, `must be a positive integer, got ${JSON.stringify(v)}`);
    return v as number;
  }

  num(key: string, fallback: number): number {
    const v = this.raw[key] ?? fallback;
    if (typeof v !== 'number' || !(v > 0)) this.fail(key, `must be a positive number, got ${JSON.stringify(v)}`);
    return v;
  }

  bool(key: string, fallback: boolean): boolean {
    const v = this.raw[key] ?? fallback;
    if (typeof v !== 'boolean') this.fail(key, `must be true or false, got ${JSON.stringify(v)}`);
    return v;
  }
}

/**
 * The architecture a config.json describes. `blockSize` caps the positions the model is built
 * for (KV caches and rope tables are that long; Llama 3's 131072 is rarely wanted on a CPU).
 */
export function architectureFromHfConfig(raw: Raw, file: string, opts: { blockSize?: number } = {}): Architecture {
  const r = new ConfigReader(raw, file);
  const type = raw['model_type'];
  if (!(HF_MODEL_TYPES as readonly unknown[]).includes(type)) {
    r.fail('model_type', `is ${JSON.stringify(type)}; atscale reads ${HF_MODEL_TYPES.join(', ')} (llama, qwen2 and mistral share the Llama decoder)`);
  }
  if (type === 'gpt2') {
    const nEmbd = r.int('n_embd');
    const act = raw['activation_function'] ?? 'gelu_new';
    if (act !== 'gelu_new') r.fail('activation_function', `is ${JSON.stringify(act)}; atscale's GPT uses gelu_new (the tanh approximation)`);
    if (raw['n_inner'] !== undefined && raw['n_inner'] !== null && raw['n_inner'] !== 4 * nEmbd) r.fail('n_inner', `is ${JSON.stringify(raw['n_inner'])}; atscale's GPT has an MLP of 4 x n_embd = ${4 * nEmbd}`);
    if (r.num('layer_norm_epsilon', 1e-5) !== 1e-5) r.fail('layer_norm_epsilon', `is ${JSON.stringify(raw['layer_norm_epsilon'])}; atscale's GPT uses 1e-5`);
    if (!r.bool('tie_word_embeddings', true)) r.fail('tie_word_embeddings', 'is false; atscale\'s GPT ties the LM head to the token embedding');
    const positions = r.int('n_positions', raw['n_ctx'] as number | undefined);
    if (opts.blockSize !== undefined && opts.blockSize !== positions) {
      throw new Error(`${file}: GPT-2 learns one embedding per position (n_positions ${positions}); its block size cannot be changed to ${opts.blockSize}`);
    }
    const c: GPTConfig = { nLayer: r.int('n_layer'), nHead: r.int('n_head'), nEmbd, blockSize: positions, vocabSize: r.int('vocab_size'), bias: true, dropout: 0 };
    if (nEmbd % c.nHead !== 0) r.fail('n_embd', `(${nEmbd}) must be divisible by n_head (${c.nHead})`);
    return { family: 'gpt2', ...c };
  }
  const act = raw['hidden_act'] ?? 'silu';
  if (act !== 'silu') r.fail('hidden_act', `is ${JSON.stringify(act)}; the Llama decoder's SwiGLU uses silu`);
  const nHead = r.int('num_attention_heads');
  const nEmbd = r.int('hidden_size');
  const nKvHead = r.int('num_key_value_heads', nHead);
  if (nHead % nKvHead !== 0) r.fail('num_key_value_heads', `(${nKvHead}) must divide num_attention_heads (${nHead})`);
  const positions = r.int('max_position_embeddings');
  // Sliding-window attention changes which positions are visible; only "no window" is exact here.
  const window = raw['sliding_window'];
  const windowOn = type === 'qwen2' ? raw['use_sliding_window'] === true : window !== undefined && window !== null;
  if (windowOn && !(typeof window === 'number' && window >= Math.min(positions, opts.blockSize ?? positions))) {
    r.fail(type === 'qwen2' ? 'use_sliding_window' : 'sliding_window', `asks for sliding-window attention (window ${JSON.stringify(window)}); atscale attends to the whole context, so it would differ`);
  }
  const blockSize = opts.blockSize ?? positions;
  if (!(Number.isInteger(blockSize) && blockSize > 0 && blockSize <= positions)) throw new Error(`${file}: block size ${blockSize} must be in 1..max_position_embeddings (${positions})`);
  const c: LlamaConfig = {
    modelType: type as LlamaConfig['modelType'],
    nLayer: r.int('num_hidden_layers'),
    nHead,
    nKvHead,
    nEmbd,
    headDim: r.int('head_dim', nEmbd / nHead),
    intermediateSize: r.int('intermediate_size'),
    vocabSize: r.int('vocab_size'),
    blockSize,
    maxPositionEmbeddings: positions,
    rmsNormEps: r.num('rms_norm_eps', 1e-6),
    ropeTheta: r.num('rope_theta', 10000),
    ropeScaling: ropeScaling(r),
    tieWordEmbeddings: r.bool('tie_word_embeddings', false),
    // Qwen2 always has q/k/v biases and never an output bias; Llama's attention_bias covers all four.
    qkvBias: type === 'qwen2' ? true : r.bool('attention_bias', false),
    oBias: type === 'qwen2' ? false : r.bool('attention_bias', false),
    mlpBias: r.bool('mlp_bias', false),
    dropout: 0,
  };
  if (!Number.isInteger(c.headDim)) r.fail('hidden_size', `(${nEmbd}) is not a multiple of num_attention_heads (${nHead}) and no head_dim is given`);
  return { family: c.modelType, ...c };
}

function ropeScaling(r: ConfigReader): LlamaConfig['ropeScaling'] {
  const s = r.raw['rope_scaling'];
  if (s === undefined || s === null) return null;
  if (typeof s !== 'object') r.fail('rope_scaling', `must be an object or null, got ${JSON.stringify(s)}`);
  const o = s as Raw;
  const kind = o['rope_type'] ?? o['type'];
  if (kind !== 'llama3') r.fail('rope_scaling', `has rope_type ${JSON.stringify(kind)}; atscale implements "llama3" (or none)`);
  const sub = new ConfigReader(o, `${r.file} rope_scaling`);
  return {
    factor: sub.num('factor', NaN),
    lowFreqFactor: sub.num('low_freq_factor', NaN),
    highFreqFactor: sub.num('high_freq_factor', NaN),
    originalMaxPositionEmbeddings: sub.int('original_max_position_embeddings'),
  };
}

/** config.json for an architecture; keys of `base` (the config the model came from) that
 * atscale does not interpret, such as token ids, are kept. */
export function hfConfigFromArchitecture(arch: Architecture, base: Raw = {}): Raw {
  if ((arch.family ?? 'gpt2') === 'gpt2') {
    const c = arch as unknown as GPTConfig;
    return {
      ...base, model_type: 'gpt2', architectures: ['GPT2LMHeadModel'], n_layer: c.nLayer, n_head: c.nHead, n_embd: c.nEmbd, n_positions: c.blockSize, n_ctx: c.blockSize,
      vocab_size: c.vocabSize, activation_function: 'gelu_new', layer_norm_epsilon: 1e-5, n_inner: null, tie_word_embeddings: true,
    };
  }
  const c = arch as unknown as LlamaConfig;
  const archName = { llama: 'LlamaForCausalLM', qwen2: 'Qwen2ForCausalLM', mistral: 'MistralForCausalLM' }[c.modelType];
  const s = c.ropeScaling;
  const out: Raw = {
    ...base, model_type: c.modelType, architectures: [archName], hidden_size: c.nEmbd, intermediate_size: c.intermediateSize, num_hidden_layers: c.nLayer,
    num_attention_heads: c.nHead, num_key_value_heads: c.nKvHead, head_dim: c.headDim, max_position_embeddings: c.maxPositionEmbeddings ?? c.blockSize,
    vocab_size: c.vocabSize, rms_norm_eps: c.rmsNormEps, rope_theta: c.ropeTheta, hidden_act: 'silu', tie_word_embeddings: c.tieWordEmbeddings,
    rope_scaling: s ? { rope_type: 'llama3', factor: s.factor, low_freq_factor: s.lowFreqFactor, high_freq_factor: s.highFreqFactor, original_max_position_embeddings: s.originalMaxPositionEmbeddings } : null,
  };
  if (c.modelType === 'qwen2') {
    if (!c.qkvBias || c.oBias) throw new Error('a qwen2 model has q/k/v biases and no output bias; this architecture differs, save it as llama');
  } else {
    if (c.qkvBias !== c.oBias) throw new Error(`model_type ${c.modelType} has one attention_bias flag for q/k/v/o; this architecture has q/k/v bias ${c.qkvBias} but o bias ${c.oBias} (save it as qwen2?)`);
    out['attention_bias'] = c.qkvBias;
    out['mlp_bias'] = c.mlpBias;
  }
  return out;
}
