// Llama-family configuration (Llama 2/3, SmolLM, Qwen2, Mistral share one shape): a typed
// record with defaults, validated up front, plus the closed forms the planner and the engine
// read (parameter count, training FLOPs) and the rotary frequencies.

/** Llama 3's frequency-dependent RoPE rescaling (HF rope_scaling with rope_type "llama3"). */
export interface Llama3RopeScaling {
  factor: number;
  lowFreqFactor: number;
  highFreqFactor: number;
  originalMaxPositionEmbeddings: number;
}

export interface LlamaConfig {
  /** Hugging Face model_type this configuration came from (written back on save). */
  modelType: 'llama' | 'qwen2' | 'mistral';
  nLayer: number;
  nHead: number;
  /** Key/value heads (grouped-query attention); nHead when there is no grouping. */
  nKvHead: number;
  nEmbd: number;
  /** Width of a head; nEmbd / nHead unless the checkpoint says otherwise. */
  headDim: number;
  /** SwiGLU hidden width (HF intermediate_size). */
  intermediateSize: number;
  vocabSize: number;
  /** Positions the RoPE tables and KV caches are built for (HF max_position_embeddings, or less). */
  blockSize: number;
  /** Positions the checkpoint supports (HF max_position_embeddings); blockSize by default. */
  maxPositionEmbeddings: number;
  rmsNormEps: number;
  ropeTheta: number;
  ropeScaling: Llama3RopeScaling | null;
  tieWordEmbeddings: boolean;
  /** Biases on q/k/v projections (Qwen2; Llama's attention_bias). */
  qkvBias: boolean;
  /** Bias on the output projection (Llama's attention_bias; Qwen2 has none). */
  oBias: boolean;
  /** Biases in the MLP (Llama's mlp_bias). */
  mlpBias: boolean;
  dropout: number;
}

export const DEFAULT_LLAMA: LlamaConfig = {
  modelType: 'llama', nLayer: 2, nHead: 4, nKvHead: 2, nEmbd: 64, headDim: 16, intermediateSize: 176, vocabSize: 256, blockSize: 64, maxPositionEmbeddings: 64,
  rmsNormEps: 1e-5, ropeTheta: 10000, ropeScaling: null, tieWordEmbeddings: false, qkvBias: false, oBias: false, mlpBias: false, dropout: 0,
};

export function llamaConfig(partial: Partial<LlamaConfig> = {}): LlamaConfig {
  const headDim = partial.headDim ?? (partial.nEmbd !== undefined && partial.nHead !== undefined ? partial.nEmbd / partial.nHead : undefined);
  const c: LlamaConfig = { ...DEFAULT_LLAMA, nKvHead: partial.nHead ?? DEFAULT_LLAMA.nKvHead, ...partial, headDim: headDim ?? DEFAULT_LLAMA.headDim };
  c.maxPositionEmbeddings = Math.max(partial.maxPositionEmbeddings ?? c.blockSize, c.blockSize);
  for (const k of ['nLayer', 'nHead', 'nKvHead', 'nEmbd', 'headDim', 'intermediateSize', 'vocabSize', 'blockSize'] as const) {
    if (!Number.isInteger(c[k]) || c[k] <= 0) throw new RangeError(`Llama config: ${k} must be a positive integer, got ${c[k]}`);
  }
  if (c.nHead % c.nKvHead !== 0) throw new RangeError(`Llama config: nHead (${c.nHead}) must be a multiple of nKvHead (${c.nKvHead}) for grouped-query attention`);
  if (c.headDim % 2 !== 0) throw new RangeError(`Llama config: headDim (${c.headDim}) must be even (rotary embeddings rotate pairs)`);
  if (!(c.rmsNormEps > 0) || !(c.ropeTheta > 0)) throw new RangeError(`Llama config: rmsNormEps and ropeTheta must be positive, got ${c.rmsNormEps} and ${c.ropeTheta}`);
  if (c.dropout !== 0) throw new RangeError(`Llama config: dropout must be 0 (the Llama family trains without dropout), got ${c.dropout}`);
  const s = c.ropeScaling;
  if (s && !(s.factor > 0 && s.lowFreqFactor > 0 && s.highFreqFactor > s.lowFreqFactor && s.originalMaxPositionEmbeddings > 0)) {
    throw new RangeError(`Llama config: ropeScaling needs factor > 0, 0 < lowFreqFactor < highFreqFactor, originalMaxPositionEmbeddings > 0; got ${JSON.stringify(s)}`);
  }
  return c;
}

/** Parameters (tied embeddings counted once). */
export function llamaParamCount(c: LlamaConfig): number {
  const C = c.nEmbd;
  const q = c.nHead * c.headDim;
  const kv = c.nKvHead * c.headDim;
  const attn = C * q + 2 * C * kv + q * C + (c.qkvBias ? q + 2 * kv : 0) + (c.oBias ? C : 0);
  const mlp = 3 * C * c.intermediateSize + (c.mlpBias ? 2 * c.intermediateSize + C : 0);
  const block = attn + mlp + 2 * C;
  const embed = c.vocabSize * C;
  return embed + c.nLayer * block + C + (c.tieWordEmbeddings ? 0 : embed);
}

/** Training FLOPs per token: 6 per parameter touched per token (the input embedding is a
 * lookup, not a product) plus attention's 12 L T (nHead headDim) at sequence length `seq`. */
export function llamaFlopsPerToken(c: LlamaConfig, seq = c.blockSize): number {
  const lookup = c.tieWordEmbeddings ? 0 : c.vocabSize * c.nEmbd;
  return 6 * (llamaParamCount(c) - lookup) + 12 * c.nLayer * seq * c.nHead * c.headDim;
}

/**
 * Rotary inverse frequencies theta^(-2i/d), i < d/2, with Llama 3's rescaling when given:
 * wavelengths longer than original/lowFreqFactor are slowed by `factor`, shorter than
 * original/highFreqFactor kept, and the band between interpolated linearly in
 * original/wavelength (Llama 3 report, section 3; HF rope_type "llama3").
 */
export function ropeInverseFrequencies(headDim: number, theta: number, scaling: Llama3RopeScaling | null): Float64Array {
  const half = headDim / 2;
  const inv = Float64Array.from({ length: half }, (_, i) => 1 / Math.pow(theta, (2 * i) / headDim));
  if (!scaling) return inv;
  const { factor, lowFreqFactor: lo, highFreqFactor: hi, originalMaxPositionEmbeddings: old } = scaling;
  return inv.map((f) => {
    const wavelen = (2 * Math.PI) / f;
    if (wavelen > old / lo) return f / factor;
    if (wavelen < old / hi) return f;
    const smooth = (old / wavelen - lo) / (hi - lo);
    return (1 - smooth) * (f / factor) + smooth * f;
  });
}
