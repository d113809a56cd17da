// Byte-level BPE (GPT-2 style): text is split into pre-tokens by GPT-2's regex, each pre-token's
// UTF-8 bytes start as one token each, and learned merges are applied in rank order (lowest rank
// first, leftmost occurrence first), as Hugging Face `tokenizers` does. Any UTF-8 text round-trips
// exactly because every byte has a token. The JSON form is Hugging Face's tokenizer.json.

import { BYTE_TO_CHAR, bytesToChars, charsToBytes, preTokenize } from './byte_level.js';
import { compileSplitPattern, splitIsolated } from './split-pattern.js';
import { fingerprintOf, type Tokenizer } from './tokenizer.js';

/** Pair keys pack two ids into one number; ids stay below 2^21 (2M tokens) so keys stay exact. */
export const MAX_VOCAB = 1 << 21;
export const pairKey = (a: number, b: number): number => a * MAX_VOCAB + b;

export interface BpeParts {
  /** Token text (in byte characters) by id; holes (undefined) are allowed for files with gaps. */
  tokens: (string | undefined)[];
  /** Merges in rank order, as pairs of token ids; the merged token must be in `tokens`. */
  merges: [number, number][];
  /** Special tokens matched verbatim before pre-tokenization, by content. */
  specialTokens?: { content: string; id: number }[];
  /** Hugging Face ByteLevel option: prepend a space when the text does not start with one. */
  addPrefixSpace?: boolean;
  /** A Split pre-tokenizer's regex (Llama 3, Qwen2) used instead of GPT-2's built-in one. */
  splitPattern?: string;
  /** BPE ignore_merges (Llama 3): a pre-token that is itself in the vocabulary is one token. */
  ignoreMerges?: boolean;
  /** Unicode normalization applied to text between special tokens (Qwen2: NFC). */
  normalizer?: 'NFC';
}

const CACHE_LIMIT = 200_000;

export class BpeTokenizer implements Tokenizer {
  readonly kind = 'bpe' as const;
  readonly vocabSize: number;
  private readonly tokens: (string | undefined)[];
  private readonly merges: [number, number][];
  private readonly mergeInfo = new Map<number, { rank: number; id: number }>();
  private readonly byteIds = new Int32Array(256);
  private readonly specials: { content: string; id: number }[];
  private readonly specialById = new Map<number, string>();
  private readonly specialSplit: RegExp | undefined;
  private readonly addPrefixSpace: boolean;
  private readonly splitPattern: string | undefined;
  private readonly split: RegExp | undefined;
  private readonly ignoreMerges: boolean;
  private readonly normalizer: 'NFC' | undefined;
  private readonly idOf = new Map<string, number>();
  private cache = new Map<string, number[]>();

  constructor(parts: BpeParts) {
    this.tokens = parts.tokens.slice();
    this.merges = parts.merges.map(([a, b]) => [a, b]);
    this.specials = (parts.specialTokens ?? []).map((s) => ({ ...s }));
    this.addPrefixSpace = parts.addPrefixSpace ?? false;
    this.splitPattern = parts.splitPattern;
    this.split = parts.splitPattern === undefined ? undefined : compileSplitPattern(parts.splitPattern);
    this.ignoreMerges = parts.ignoreMerges ?? false;
    this.normalizer = parts.normalizer;
    const idOf = this.idOf;
    this.tokens.forEach((t, id) => {
      if (t === undefined) return;
      if (idOf.has(t)) throw new Error(`BPE tokenizer: token ${JSON.stringify(t)} has two ids (${idOf.get(t)} and ${id})`);
      idOf.set(t, id);
    });
    for (let b = 0; b < 256; b++) {
      const id = idOf.get(BYTE_TO_CHAR[b]!);
      if (id === undefined) {
        throw new Error(`BPE tokenizer: the vocabulary lacks the token for byte 0x${b.toString(16)} (${JSON.stringify(BYTE_TO_CHAR[b])}); a byte-level vocabulary needs all 256`);
      }
      this.byteIds[b] = id;
    }
    this.merges.forEach(([a, b], rank) => {
      const ta = this.tokens[a];
      const tb = this.tokens[b];
      const merged = ta !== undefined && tb !== undefined ? idOf.get(ta + tb) : undefined;
      if (merged === undefined) throw new Error(`BPE tokenizer: merge ${rank} (${a}, ${b}) does not produce a token in the vocabulary`);
      const key = pairKey(a, b);
      if (!this.mergeInfo.has(key)) this.mergeInfo.set(key, { rank, id: merged });
    });
    let size = this.tokens.length;
    for (const s of this.specials) {
      if (s.content.length === 0) throw new Error('BPE tokenizer: a special token is empty');
      this.specialById.set(s.id, s.content);
      size = Math.max(size, s.id + 1);
    }
    if (size > MAX_VOCAB) throw new Error(`BPE tokenizer: vocabulary of ${size} exceeds the supported ${MAX_VOCAB}`);
    this.vocabSize = size;
    if (this.specials.length > 0) {
      // Longest first so a special token that contains another wins.
      const alts = [...this.specials].sort((x, y) => y.content.length - x.content.length).map((s) => s.content.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'));
      this.specialSplit = new RegExp(`(${alts.join('|')})`, 'u');
    }
  }

  /** Number of learned merges. */
  get mergeCount(): number {
    return this.merges.length;
  }

  /** Token text (byte characters, or the special token's content) for an id. */
  tokenText(id: number): string | undefined {
    return this.specialById.get(id) ?? this.tokens[id];
  }

  encode(text: string): Uint32Array {
    const out: number[] = [];
    if (this.addPrefixSpace && text.length > 0 && !/^\s/u.test(text)) text = ' ' + text;
    const segments = this.specialSplit ? text.split(this.specialSplit) : [text];
    for (let s = 0; s < segments.length; s++) {
      const seg = segments[s]!;
      if (this.specialSplit && s % 2 === 1) {
        out.push(this.specials.find((t) => t.content === seg)!.id);
        continue;
      }
      const text = this.normalizer ? seg.normalize(this.normalizer) : seg;
      const words = this.split ? splitIsolated(text, this.split) : preTokenize(text);
      for (const word of words) for (const id of this.encodeWord(word)) out.push(id);
    }
    return Uint32Array.from(out);
  }

  private encodeWord(word: string): number[] {
    const hit = this.cache.get(word);
    if (hit) return hit;
    const bytes = Buffer.from(word, 'utf8');
    const whole = this.ignoreMerges ? this.idOf.get(bytesToChars(bytes)) : undefined;
    if (whole !== undefined) return [whole];
    let ids: number[] = Array.from(bytes, (b) => this.byteIds[b]!);
    while (ids.length > 1) {
      let best: { rank: number; id: number } | undefined;
      let bestA = 0;
      let bestB = 0;
      for (let i = 0; i + 1 < ids.length; i++) {
        const m = this.mergeInfo.get(pairKey(ids[i]!, ids[i + 1]!));
        if (m && (!best || m.rank < best.rank)) {
          best = m;
          bestA = ids[i]!;
          bestB = ids[i + 1]!;
        }
      }
      if (!best) break;
      ids = mergePair(ids, bestA, bestB, best.id);
    }
    if (this.cache.size >= CACHE_LIMIT) this.cache = new Map();
    this.cache.set(word, ids);
    return ids;
  }

  decode(ids: ArrayLike<number>): string {
    let text = '';
    let bytes: number[] = [];
    const flush = (): void => {
      if (bytes.length) text += Buffer.from(bytes).toString('utf8');
      bytes = [];
    };
    for (let i = 0; i < ids.length; i++) {
      const id = ids[i]!;
      const special = this.specialById.get(id);
      if (special !== undefined) {
        flush();
        text += special;
        continue;
      }
      const t = this.tokens[id];
      if (t === undefined) throw new Error(`BPE tokenizer: id ${id} is not in the vocabulary (size ${this.vocabSize})`);
      charsToBytes(t, bytes);
    }
    flush();
    return text;
  }

  /** The Hugging Face tokenizers `tokenizer.json` object. */
  toJSON(): HfTokenizerJSON {
    const vocab: Record<string, number> = {};
    this.tokens.forEach((t, id) => {
      if (t !== undefined) vocab[t] = id;
    });
    const byteLevel = { type: 'ByteLevel', add_prefix_space: this.addPrefixSpace, trim_offsets: true, use_regex: this.splitPattern === undefined };
    const pre = this.splitPattern === undefined ? byteLevel : { type: 'Sequence', pretokenizers: [{ type: 'Split', pattern: { Regex: this.splitPattern }, behavior: 'Isolated', invert: false }, byteLevel] };
    return {
      version: '1.0',
      truncation: null,
      padding: null,
      added_tokens: this.specials.map((s) => ({ id: s.id, content: s.content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true })),
      normalizer: this.normalizer ? { type: this.normalizer } : null,
      pre_tokenizer: pre,
      post_processor: null,
      decoder: { ...byteLevel },
      model: {
        type: 'BPE',
        dropout: null,
        unk_token: null,
        continuing_subword_prefix: null,
        end_of_word_suffix: null,
        fuse_unk: false,
        byte_fallback: false,
        ignore_merges: this.ignoreMerges,
        vocab,
        // "a b" strings: byte-level tokens never contain a plain space, so this is unambiguous
        // and readable by every tokenizers release (newer ones also accept [a, b] arrays).
        merges: this.merges.map(([a, b]) => `${this.tokens[a]} ${this.tokens[b]}`),
      },
    };
  }

  fingerprint(): string {
    return fingerprintOf(this.toJSON());
  }

  static fromJSON(json: unknown): BpeTokenizer {
    return new BpeTokenizer(parseHfTokenizerJSON(json));
  }
}

export interface HfTokenizerJSON {
  version: string;
  truncation: null;
  padding: null;
  added_tokens: { id: number; content: string; single_word: boolean; lstrip: boolean; rstrip: boolean; normalized: boolean; special: boolean }[];
  normalizer: { type: string } | null;
  pre_tokenizer: { type: string; add_prefix_space?: boolean; trim_offsets?: boolean; use_regex?: boolean; pretokenizers?: object[] };
  post_processor: null;
  decoder: { type: string; add_prefix_space: boolean; trim_offsets: boolean; use_regex: boolean };
  model: {
    type: 'BPE';
    dropout: null;
    unk_token: null;
    continuing_subword_prefix: null;
    end_of_word_suffix: null;
    fuse_unk: boolean;
    byte_fallback: boolean;
    ignore_merges: boolean;
    vocab: Record<string, number>;
    merges: string[];
  };
}

function fail(what: string): never {
  throw new Error(`tokenizer.json: ${what}`);
}

/** Validates a tokenizer.json object and extracts what byte-level BPE needs; anything this
 *  implementation would encode differently from Hugging Face is refused, naming the key. */
export function parseHfTokenizerJSON(json: unknown): BpeParts {
  if (typeof json !== 'object' || json === null) fail('expected a JSON object');
  const j = json as Record<string, any>;
  const model = j['model'];
  if (typeof model !== 'object' || model === null) fail('missing "model"');
  if (model.type !== 'BPE') fail(`model.type is ${JSON.stringify(model.type)}; only "BPE" is supported`);
  if (model.dropout !== null && model.dropout !== undefined && model.dropout !== 0) fail('model.dropout is set; BPE dropout is not supported');
  for (const key of ['continuing_subword_prefix', 'end_of_word_suffix']) {
    if (model[key] !== null && model[key] !== undefined && model[key] !== '') fail(`model.${key} is set; byte-level BPE does not use it`);
  }
  if (model.byte_fallback === true) fail('model.byte_fallback is true; only byte-level BPE is supported');
  const norm = j['normalizer'];
  if (norm !== null && norm !== undefined && norm.type !== 'NFC') fail(`normalizer.type is ${JSON.stringify(norm.type)}; byte-level BPE supports no normalizer or NFC`);
  // GPT-2: ByteLevel with its built-in regex. Llama 3 / Qwen2: Sequence[Split(regex, Isolated), ByteLevel(use_regex false)].
  let pre = j['pre_tokenizer'];
  let splitPattern: string | undefined;
  if (pre?.type === 'Sequence') {
    const [split, byteLevel, ...rest] = pre.pretokenizers ?? [];
    if (split?.type !== 'Split' || byteLevel?.type !== 'ByteLevel' || rest.length) fail('pre_tokenizer Sequence must be [Split, ByteLevel] (the Llama 3 / Qwen2 form)');
    if (typeof split.pattern?.Regex !== 'string') fail('pre_tokenizer.pretokenizers[0].pattern must be {"Regex": "..."}');
    if (split.behavior !== 'Isolated' || split.invert === true) fail(`pre_tokenizer.pretokenizers[0]: behavior ${JSON.stringify(split.behavior)} invert ${JSON.stringify(split.invert)}; only Isolated, not inverted, is supported`);
    if (byteLevel.use_regex !== false) fail('pre_tokenizer.pretokenizers[1].use_regex must be false after a Split (two regexes would both apply)');
    splitPattern = split.pattern.Regex as string;
    pre = byteLevel;
  } else if (!pre || pre.type !== 'ByteLevel') fail(`pre_tokenizer.type must be "ByteLevel" or a [Split, ByteLevel] Sequence, got ${JSON.stringify(pre?.type)}`);
  else if (pre.use_regex === false) fail('pre_tokenizer.use_regex is false without a Split before it; nothing would split the text');
  if (j['decoder'] && j['decoder'].type !== 'ByteLevel') fail(`decoder.type must be "ByteLevel", got ${JSON.stringify(j['decoder'].type)}`);
  const vocab = model.vocab;
  if (typeof vocab !== 'object' || vocab === null) fail('model.vocab must be an object of token -> id');
  const tokens: (string | undefined)[] = [];
  for (const [tok, id] of Object.entries(vocab)) {
    if (!Number.isInteger(id) || (id as number) < 0 || (id as number) >= MAX_VOCAB) fail(`model.vocab[${JSON.stringify(tok)}] = ${JSON.stringify(id)} is not a valid id`);
    if (tokens[id as number] !== undefined) fail(`model.vocab gives id ${id} to both ${JSON.stringify(tokens[id as number])} and ${JSON.stringify(tok)}`);
    tokens[id as number] = tok;
  }
  const idOf = (t: string, i: number): number => {
    const id = vocab[t];
    if (typeof id !== 'number') fail(`model.merges[${i}] names ${JSON.stringify(t)}, which is not in model.vocab`);
    return id;
  };
  if (!Array.isArray(model.merges)) fail('model.merges must be an array');
  const merges = (model.merges as unknown[]).map((m, i): [number, number] => {
    let pair: unknown[];
    if (typeof m === 'string') pair = m.split(' ');
    else if (Array.isArray(m)) pair = m;
    else fail(`model.merges[${i}] must be "a b" or ["a", "b"]`);
    if (pair.length !== 2 || typeof pair[0] !== 'string' || typeof pair[1] !== 'string') fail(`model.merges[${i}] must name exactly two tokens`);
    return [idOf(pair[0], i), idOf(pair[1], i)];
  });
  const added = j['added_tokens'] ?? [];
  if (!Array.isArray(added)) fail('added_tokens must be an array');
  const specialTokens = added.map((t: any, i: number) => {
    if (typeof t?.content !== 'string' || !Number.isInteger(t?.id)) fail(`added_tokens[${i}] needs a string "content" and an integer "id"`);
    return { content: t.content as string, id: t.id as number };
  });
  // An added token that is also a vocab entry keeps its id; it is matched verbatim either way.
  return { tokens, merges, specialTokens, addPrefixSpace: pre.add_prefix_space === true, splitPattern, ignoreMerges: model.ignore_merges === true, normalizer: norm ? 'NFC' : undefined };
}

/** ids with every adjacent (a, b), left to right and without overlap, replaced by `merged`. */
export function mergePair(ids: readonly number[], a: number, b: number, merged: number): number[] {
  const out: number[] = [];
  for (let i = 0; i < ids.length; i++) {
    if (i + 1 < ids.length && ids[i] === a && ids[i + 1] === b) {
      out.push(merged);
      i++;
    } else out.push(ids[i]!);
  }
  return out;
}
