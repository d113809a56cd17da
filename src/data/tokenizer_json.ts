// Restores any tokenizer from the JSON its toJSON() wrote (as stored in a checkpoint or in a
// prepared corpus's meta.json); a Hugging Face tokenizer.json with a BPE model is accepted too,
// in either of the forms published models use (byte-level, or SentencePiece with byte fallback).

import { BpeTokenizer } from './bpe_tokenizer.js';
import { CharTokenizer, type CharTokenizerJSON } from './char_tokenizer.js';
import { isSentencePieceBpe, SentencePieceBpe } from './sentencepiece-bpe.js';
import type { Tokenizer } from './tokenizer.js';

export function tokenizerFromJSON(json: unknown): Tokenizer {
  if (typeof json !== 'object' || json === null) throw new Error('tokenizer JSON: expected an object');
  const j = json as Record<string, unknown>;
  if (j['kind'] === 'char') return CharTokenizer.fromJSON(j as unknown as CharTokenizerJSON);
  const model = j['model'] as Record<string, unknown> | undefined;
  if (model && typeof model === 'object') return tokenizerFromHfJSON(j);
  throw new Error('tokenizer JSON: neither a char tokenizer ({"kind": "char", ...}) nor a tokenizer.json with a "model"');
}

/** A Hugging Face tokenizer.json: byte-level BPE (GPT-2, Llama 3, Qwen2) or SentencePiece BPE (Llama 2). */
export function tokenizerFromHfJSON(json: Record<string, unknown>): Tokenizer {
  return isSentencePieceBpe(json as Record<string, any>) ? new SentencePieceBpe(json as Record<string, any>) : BpeTokenizer.fromJSON(json);
}
