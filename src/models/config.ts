// GPT configuration: a small typed record with defaults (nanoGPT style), validated up front
// so that a bad size is reported before anything is built.

export interface GPTConfig {
  nLayer: number;
  nHead: number;
  nEmbd: number;
  blockSize: number;
  vocabSize: number;
  /** Biases in Linear and LayerNorm layers (GPT-2 has them). */
  bias: boolean;
  dropout: number;
}

export const DEFAULT_GPT: GPTConfig = { nLayer: 4, nHead: 4, nEmbd: 128, blockSize: 64, vocabSize: 65, bias: true, dropout: 0 };

export function gptConfig(partial: Partial<GPTConfig> = {}): GPTConfig {
  const c = { ...DEFAULT_GPT, ...partial };
  const positive = ['nLayer', 'nHead', 'nEmbd', 'blockSize', 'vocabSize'] as const;
  for (const k of positive) {
    if (!Number.isInteger(c[k]) || c[k] <= 0) throw new RangeError(`GPT config: ${k} must be a positive integer, got ${c[k]}`);
  }
  if (c.nEmbd % c.nHead !== 0) {
    throw new RangeError(`GPT config: n_embd (${c.nEmbd}) must be divisible by n_head (${c.nHead}); ${c.nEmbd} / ${c.nHead} = ${(c.nEmbd / c.nHead).toFixed(2)}`);
  }
  if (!(c.dropout >= 0 && c.dropout < 1)) throw new RangeError(`GPT config: dropout must be in [0, 1), got ${c.dropout}`);
  return c;
}

/** Parameter count (tied embeddings counted once). */
export function gptParamCount(c: GPTConfig): number {
  const C = c.nEmbd;
  const b = c.bias ? 1 : 0;
  const block = 2 * C * (1 + b) + C * 3 * C + 3 * C * b + C * C + C * b + C * 4 * C + 4 * C * b + 4 * C * C + C * b;
  return c.vocabSize * C + c.blockSize * C + c.nLayer * block + C * (1 + b);
}

/** Training FLOPs per token (forward + backward), PaLM-style: 6N + 12 L T C for attention. */
export function gptFlopsPerToken(c: GPTConfig): number {
  const nonEmbedding = gptParamCount(c) - c.blockSize * c.nEmbd;
  return 6 * nonEmbedding + 12 * c.nLayer * c.blockSize * c.nEmbd;
}
