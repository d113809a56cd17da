// Learns byte-level BPE merges from a corpus. The corpus is reduced to its distinct pre-tokens
// with their frequencies; pair counts are kept incrementally, with an index from each pair to
// the words that contain it, so a merge only revisits the words it touches instead of
// rescanning the corpus. The most frequent pair comes off a max-heap whose stale entries are
// skipped when popped. Ties go to the smaller (left id, right id), as in Hugging Face.

import { BYTE_ORDER, BYTE_TO_CHAR, preTokenize } from './byte_level.js';
import { BpeTokenizer, MAX_VOCAB, pairKey } from './bpe_tokenizer.js';

export interface BpeTrainOptions {
  /** Target vocabulary size including the 256 byte tokens and the special tokens. */
  vocabSize: number;
  /** Pairs seen fewer times than this are never merged (default 2). Training stops early,
   *  with a smaller vocabulary, when no pair is frequent enough. */
  minFrequency?: number;
  /** Tokens such as "<|endoftext|>" that get their own ids after the merges. */
  specialTokens?: string[];
  /** Called after each merge with (merges done, merges wanted): the caller draws progress. */
  onProgress?: (done: number, total: number) => void;
}

/** Max-heap of (count, key), larger count first, then smaller key. */
class PairHeap {
  private counts: number[] = [];
  private keys: number[] = [];
  get size(): number {
    return this.counts.length;
  }
  private above(i: number, j: number): boolean {
    const ci = this.counts[i]!;
    const cj = this.counts[j]!;
    return ci > cj || (ci === cj && this.keys[i]! < this.keys[j]!);
  }
  private swap(i: number, j: number): void {
    [this.counts[i], this.counts[j]] = [this.counts[j]!, this.counts[i]!];
    [this.keys[i], this.keys[j]] = [this.keys[j]!, this.keys[i]!];
  }
  push(count: number, key: number): void {
    this.counts.push(count);
    this.keys.push(key);
    let i = this.counts.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!this.above(i, p)) break;
      this.swap(i, p);
      i = p;
    }
  }
  pop(): { count: number; key: number } {
    const top = { count: this.counts[0]!, key: this.keys[0]! };
    const lastCount = this.counts.pop()!;
    const lastKey = this.keys.pop()!;
    if (this.counts.length > 0) {
      this.counts[0] = lastCount;
      this.keys[0] = lastKey;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < this.counts.length && this.above(l, m)) m = l;
        if (r < this.counts.length && this.above(r, m)) m = r;
        if (m === i) break;
        this.swap(i, m);
        i = m;
      }
    }
    return top;
  }
}

export function trainBpe(corpus: string, options: BpeTrainOptions): BpeTokenizer {
  const { vocabSize } = options;
  const minFrequency = options.minFrequency ?? 2;
  const specials = options.specialTokens ?? [];
  if (!Number.isInteger(vocabSize) || vocabSize < 256 + specials.length || vocabSize > MAX_VOCAB) {
    throw new Error(`BPE training: vocabSize must be an integer in [${256 + specials.length}, ${MAX_VOCAB}] (256 bytes + ${specials.length} special tokens), got ${vocabSize}`);
  }
  if (corpus.length === 0) throw new Error('BPE training: the corpus is empty');

  const wordFreq = new Map<string, number>();
  for (const w of preTokenize(corpus)) wordFreq.set(w, (wordFreq.get(w) ?? 0) + 1);

  // Base vocabulary in GPT-2's order, so id i is GPT-2's id i for the 256 byte tokens.
  const tokens: string[] = BYTE_ORDER.map((b) => BYTE_TO_CHAR[b]!);
  const byteId = new Int32Array(256);
  BYTE_ORDER.forEach((b, i) => (byteId[b] = i));

  const words: number[][] = [];
  const freqs: number[] = [];
  for (const [w, f] of wordFreq) {
    words.push(Array.from(Buffer.from(w, 'utf8'), (b) => byteId[b]!));
    freqs.push(f);
  }

  const pairCount = new Map<number, number>();
  const pairWords = new Map<number, Set<number>>();
  const addPairs = (wi: number, sign: 1 | -1, changed: Set<number> | undefined): void => {
    const w = words[wi]!;
    const f = freqs[wi]! * sign;
    for (let i = 0; i + 1 < w.length; i++) {
      const key = pairKey(w[i]!, w[i + 1]!);
      pairCount.set(key, (pairCount.get(key) ?? 0) + f);
      changed?.add(key);
      if (sign > 0) {
        let set = pairWords.get(key);
        if (!set) pairWords.set(key, (set = new Set()));
        set.add(wi);
      }
    }
  };
  for (let wi = 0; wi < words.length; wi++) addPairs(wi, 1, undefined);
  const heap = new PairHeap();
  for (const [key, count] of pairCount) heap.push(count, key);

  const merges: [number, number][] = [];
  const targetTokens = vocabSize - specials.length;
  while (tokens.length < targetTokens && heap.size > 0) {
    const { count, key } = heap.pop();
    if (pairCount.get(key) !== count) continue; // stale entry: a fresher one is in the heap
    if (count < minFrequency) break;
    const a = Math.floor(key / MAX_VOCAB);
    const b = key - a * MAX_VOCAB;
    const newId = tokens.length;
    tokens.push(tokens[a]! + tokens[b]!);
    merges.push([a, b]);

    const changed = new Set<number>();
    for (const wi of pairWords.get(key) ?? []) {
      const w = words[wi]!;
      addPairs(wi, -1, changed);
      const merged: number[] = [];
      for (let i = 0; i < w.length; i++) {
        if (i + 1 < w.length && w[i] === a && w[i + 1] === b) {
          merged.push(newId);
          i++;
        } else merged.push(w[i]!);
      }
      words[wi] = merged;
      addPairs(wi, 1, changed);
    }
    pairWords.delete(key);
    for (const k of changed) {
      const c = pairCount.get(k)!;
      if (c <= 0) {
        pairCount.delete(k);
        pairWords.delete(k);
      } else if (k !== key) heap.push(c, k);
    }
    pairCount.delete(key);
    options.onProgress?.(merges.length, targetTokens - 256);
  }

  const specialTokens = specials.map((content, i) => ({ content, id: tokens.length + i }));
  return new BpeTokenizer({ tokens, merges, specialTokens });
}
