// Character-level tokenizer as in nanoGPT's shakespeare_char: the vocabulary is the sorted set
// of distinct characters (Unicode code points, sorted by code point like Python's sorted(set(s)))
// of the training corpus, and a character's id is its position in that list.

import { fingerprintOf, type Tokenizer } from './tokenizer.js';

export interface CharTokenizerJSON {
  kind: 'char';
  /** The vocabulary in id order; each entry is one code point. */
  chars: string[];
}

export class CharTokenizer implements Tokenizer {
  readonly kind = 'char' as const;
  readonly vocabSize: number;
  private readonly chars: string[];
  private readonly idOf = new Map<number, number>();
  private readonly asciiIds = new Int32Array(128).fill(-1); // fast path for the common case

  constructor(chars: string[]) {
    if (chars.length === 0) throw new Error('char tokenizer: the vocabulary is empty (is the corpus empty?)');
    chars.forEach((c, i) => {
      const cp = c.codePointAt(0);
      if (cp === undefined || String.fromCodePoint(cp) !== c) {
        throw new Error(`char tokenizer: vocabulary entry ${i} (${JSON.stringify(c)}) is not exactly one character`);
      }
      if (this.idOf.has(cp)) throw new Error(`char tokenizer: vocabulary has ${JSON.stringify(c)} twice`);
      this.idOf.set(cp, i);
      if (cp < 128) this.asciiIds[cp] = i;
    });
    this.chars = chars.slice();
    this.vocabSize = chars.length;
  }

  /** Builds the vocabulary from every distinct character of `corpus`. */
  static fromCorpus(corpus: string): CharTokenizer {
    if (corpus.length === 0) throw new Error('char tokenizer: cannot build a vocabulary from an empty corpus');
    const seen = new Set<number>();
    for (const ch of corpus) seen.add(ch.codePointAt(0)!);
    const sorted = [...seen].sort((a, b) => a - b);
    return new CharTokenizer(sorted.map((cp) => String.fromCodePoint(cp)));
  }

  encode(text: string): Uint32Array {
    const out = new Uint32Array(text.length); // code points <= UTF-16 units; trimmed below
    let n = 0;
    for (let i = 0; i < text.length; i++) {
      const unit = text.charCodeAt(i);
      let id = unit < 128 ? this.asciiIds[unit]! : -1;
      if (id < 0) {
        const cp = text.codePointAt(i)!;
        if (cp > 0xffff) i++;
        id = this.idOf.get(cp) ?? -1;
        if (id < 0) {
          throw new Error(
            `char tokenizer: character ${JSON.stringify(String.fromCodePoint(cp))} (U+${cp.toString(16).toUpperCase().padStart(4, '0')}) ` +
              `is not in the vocabulary of ${this.vocabSize} characters; build the tokenizer from a corpus that contains it`,
          );
        }
      }
      out[n++] = id;
    }
    return n === out.length ? out : out.slice(0, n);
  }

  decode(ids: ArrayLike<number>): string {
    let s = '';
    for (let i = 0; i < ids.length; i++) {
      const c = this.chars[ids[i]!];
      if (c === undefined) throw new Error(`char tokenizer: id ${ids[i]} is outside the vocabulary [0, ${this.vocabSize})`);
      s += c;
    }
    return s;
  }

  toJSON(): CharTokenizerJSON {
    return { kind: 'char', chars: this.chars.slice() };
  }

  fingerprint(): string {
    return fingerprintOf(this.toJSON());
  }

  static fromJSON(json: CharTokenizerJSON): CharTokenizer {
    if (!Array.isArray(json.chars) || !json.chars.every((c) => typeof c === 'string')) {
      throw new Error('char tokenizer JSON: "chars" must be an array of one-character strings');
    }
    return new CharTokenizer(json.chars);
  }
}
