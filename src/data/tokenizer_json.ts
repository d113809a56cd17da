// Restores any tokenizer from the JSON its toJSON() wrote (as stored in a checkpoint or in a
// prepared corpus's meta.json); a Hugging Face tokenizer.json with a BPE model is accepted too,
// in either of the forms published models use (byte-level, or SentencePiece with byte fallback).

import { readFileSync } from 'node:fs';
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

/** Reads a tokenizer file: a Hugging Face tokenizer.json (BPE) or one a checkpoint holds. */
export function loadTokenizer(path: string): Tokenizer {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new Error(`cannot read tokenizer file ${path}: ${(e as Error).message}`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new Error(`tokenizer file ${path} is not valid JSON: ${(e as Error).message}`);
  }
  const hf = typeof json === 'object' && json !== null && 'model' in json;
  return hf ? tokenizerFromHfJSON(json as Record<string, unknown>) : tokenizerFromJSON(json);
}

/** A Hugging Face tokenizer.json: byte-level BPE (GPT-2, Llama 3, Qwen2) or SentencePiece BPE (Llama 2). */
export function tokenizerFromHfJSON(json: Record<string, unknown>): Tokenizer {
  return isSentencePieceBpe(json as Record<string, any>) ? new SentencePieceBpe(json as Record<string, any>) : BpeTokenizer.fromJSON(json);
}
