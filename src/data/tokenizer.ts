// The tokenizer contract the trainer and sampler rely on, plus the two things a checkpoint needs
// from any tokenizer: a JSON form that restores it exactly, and a fingerprint that changes
// whenever the token <-> id mapping could change (so a resumed run detects a mismatch).

import { createHash } from 'node:crypto';

export interface Tokenizer {
  readonly kind: 'char' | 'bpe';
  /** Number of ids; every id produced by encode is in [0, vocabSize). */
  readonly vocabSize: number;
  encode(text: string): Uint32Array;
  decode(ids: ArrayLike<number>): string;
  /** A plain JSON object that `tokenizerFromJSON` turns back into an identical tokenizer. */
  toJSON(): object;
  /** sha256 (hex) of the canonical JSON form: equal fingerprints mean identical encodings. */
  fingerprint(): string;
}

/** JSON with object keys sorted at every level, so equal objects give equal text. */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value);
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  const obj = value as Record<string, unknown>;
  const keys = Object.keys(obj).filter((k) => obj[k] !== undefined).sort();
  return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson(obj[k])}`).join(',')}}`;
}

export function fingerprintOf(json: object): string {
  return createHash('sha256').update(canonicalJson(json)).digest('hex');
}

/** Thrown when a checkpoint's tokenizer differs from the one the user asked for. */
export function assertSameTokenizer(expected: Tokenizer, actual: Tokenizer, where: string): void {
  if (expected.fingerprint() !== actual.fingerprint()) {
    throw new Error(
      `tokenizer mismatch: ${where} was made with a ${expected.kind} tokenizer (vocab ${expected.vocabSize}, ` +
        `fingerprint ${expected.fingerprint().slice(0, 12)}) but the current one is ${actual.kind} ` +
        `(vocab ${actual.vocabSize}, fingerprint ${actual.fingerprint().slice(0, 12)}); ` +
        `use the tokenizer stored with it or start a fresh run`,
    );
  }
}
