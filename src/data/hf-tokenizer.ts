// Any atscale tokenizer as the Hugging Face tokenizer.json that transformers.js and the
// tokenizers library load. A BPE tokenizer already is one. A char tokenizer becomes a BPE model
// whose vocabulary is the characters and which has no merges: BPE starts from single
// characters, so with nothing to merge each character is one token, with the same ids; the
// Fuse decoder joins tokens without separators.
import type { Tokenizer } from './tokenizer.js';

export function hfTokenizerJSON(t: Tokenizer): object {
  const json = t.toJSON() as Record<string, unknown>;
  if (t.kind === 'bpe') return json;
  const chars = json['chars'] as string[];
  const vocab = Object.fromEntries(chars.map((c, i) => [c, i]));
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: [],
    normalizer: null,
    pre_tokenizer: null,
    post_processor: null,
    decoder: { type: 'Fuse' },
    model: { type: 'BPE', dropout: null, unk_token: null, continuing_subword_prefix: null, end_of_word_suffix: null, fuse_unk: false, byte_fallback: false, ignore_merges: false, vocab, merges: [] },
  };
}
