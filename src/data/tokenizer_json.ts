// Restores any tokenizer from the JSON its toJSON() wrote (as stored in a checkpoint or in a
// prepared corpus's meta.json); a Hugging Face tokenizer.json with a BPE model is accepted too.

import { readFileSync } from 'node:fs';
import { BpeTokenizer } from './bpe_tokenizer.js';
import { CharTokenizer, type CharTokenizerJSON } from './char_tokenizer.js';
import type { Tokenizer } from './tokenizer.js';

export function tokenizerFromJSON(json: unknown): Tokenizer {
  if (typeof json !== 'object' || json === null) throw new Error('tokenizer JSON: expected an object');
  const j = json as Record<string, unknown>;
  if (j['kind'] === 'char') return CharTokenizer.fromJSON(j as unknown as CharTokenizerJSON);
  const model = j['model'] as Record<string, unknown> | undefined;
  if (model && typeof model === 'object') return BpeTokenizer.fromJSON(j);
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
  return tokenizerFromJSON(json);
}
