// SentencePiece-style BPE as Llama 2 (and Mistral v0.1, TinyLlama) ship it in tokenizer.json:
// spaces become "▁" (U+2581) and one "▁" is prepended (normalizer Prepend + Replace, or the
// older Metaspace pre-tokenizer without splitting), the whole text is one word merged by
// rank, and a character the vocabulary lacks falls back to its UTF-8 bytes as <0xNN> tokens.
// Decoding reverses it: "▁" -> " ", runs of byte tokens -> UTF-8 (a run that is not valid
// UTF-8 gives one U+FFFD per byte, as tokenizers' ByteFallback decoder does), one leading
// space stripped.
import { MAX_VOCAB, mergePair, pairKey } from './bpe_tokenizer.js';
import { fingerprintOf, type Tokenizer } from './tokenizer.js';

const SPACE = '\u2581';

export interface SentencePieceBpeParts {
  /** The tokenizer.json object (kept whole so toJSON round-trips it). */
  json: Record<string, any>;
}

function fail(what: string): never {
  throw new Error(`tokenizer.json: ${what}`);
}

/** Whether a tokenizer.json is the SentencePiece-BPE form (byte fallback, metaspace). */
export function isSentencePieceBpe(j: Record<string, any>): boolean {
  return j['model']?.type === 'BPE' && (j['model'].byte_fallback === true || j['pre_tokenizer']?.type === 'Metaspace' || JSON.stringify(j['normalizer'] ?? null).includes(SPACE));
}

export class SentencePieceBpe implements Tokenizer {
  readonly kind = 'bpe' as const;
  readonly vocabSize: number;
  private readonly tokens: (string | undefined)[] = [];
  private readonly idOf = new Map<string, number>();
  private readonly mergeInfo = new Map<number, { rank: number; id: number }>();
  private readonly byteIds: (number | undefined)[] = [];
  private readonly unk: number | undefined;
  private readonly fuseUnk: boolean;
  private readonly specials: { content: string; id: number }[];
  private readonly specialById = new Map<number, string>();
  private readonly specialSplit: RegExp | undefined;
  /** Prepend "▁" to each text segment (Prepend normalizer, or Metaspace prepend_scheme always/first). */
  private readonly prepend: 'always' | 'first' | 'never';

  constructor(private readonly json: Record<string, any>) {
    const model = json['model'];
    if (model?.type !== 'BPE') fail('model.type must be "BPE"');
    if (model.continuing_subword_prefix || model.end_of_word_suffix) fail('model.continuing_subword_prefix / end_of_word_suffix are not used by SentencePiece BPE');
    this.prepend = prependScheme(json);
    const vocab = model.vocab as Record<string, number>;
    if (typeof vocab !== 'object' || vocab === null) fail('model.vocab must be an object of token -> id');
    for (const [t, id] of Object.entries(vocab)) {
      if (!Number.isInteger(id) || id < 0 || id >= MAX_VOCAB) fail(`model.vocab[${JSON.stringify(t)}] = ${JSON.stringify(id)} is not a valid id`);
      this.tokens[id] = t;
      this.idOf.set(t, id);
    }
    if (model.byte_fallback === true) for (let b = 0; b < 256; b++) this.byteIds[b] = this.idOf.get(`<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`);
    this.unk = model.unk_token == null ? undefined : this.idOf.get(model.unk_token);
    if (model.unk_token != null && this.unk === undefined) fail(`model.unk_token ${JSON.stringify(model.unk_token)} is not in model.vocab`);
    this.fuseUnk = model.fuse_unk === true;
    (model.merges as unknown[]).forEach((m, rank) => {
      const pair = typeof m === 'string' ? m.split(' ') : (m as string[]);
      const a = this.idOf.get(pair[0]!);
      const b = this.idOf.get(pair[1]!);
      const merged = this.idOf.get(`${pair[0]}${pair[1]}`);
      if (pair.length !== 2 || a === undefined || b === undefined || merged === undefined) fail(`model.merges[${rank}] ${JSON.stringify(m)} names tokens not in model.vocab`);
      if (!this.mergeInfo.has(pairKey(a, b))) this.mergeInfo.set(pairKey(a, b), { rank, id: merged });
    });
    this.specials = ((json['added_tokens'] ?? []) as { id: number; content: string }[]).map((t, i) => {
      if (typeof t?.content !== 'string' || !Number.isInteger(t?.id)) fail(`added_tokens[${i}] needs a string "content" and an integer "id"`);
      return { content: t.content, id: t.id };
    });
    let size = this.tokens.length;
    for (const s of this.specials) {
      this.specialById.set(s.id, s.content);
      size = Math.max(size, s.id + 1);
    }
    this.vocabSize = size;
    if (this.specials.length) {
      const alts = [...this.specials].sort((x, y) => y.content.length - x.content.length).map((s) => s.content.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'));
      this.specialSplit = new RegExp(`(${alts.join('|')})`, 'u');
    }
  }

  encode(text: string): Uint32Array {
    const out: number[] = [];
    const segments = this.specialSplit ? text.split(this.specialSplit) : [text];
    segments.forEach((seg, s) => {
      if (this.specialSplit && s % 2 === 1) out.push(this.specials.find((t) => t.content === seg)!.id);
      else if (seg.length > 0) {
        const prepend = this.prepend === 'always' || (this.prepend === 'first' && s === 0);
        out.push(...this.encodeWord((prepend ? SPACE : '') + seg.replaceAll(' ', SPACE)));
      }
    });
    return Uint32Array.from(out);
  }

  private encodeWord(word: string): number[] {
    let ids: number[] = [];
    for (const ch of word) {
      const id = this.idOf.get(ch);
      if (id !== undefined) ids.push(id);
      else {
        const bytes = [...Buffer.from(ch, 'utf8')].map((b) => this.byteIds[b]);
        if (bytes.every((b) => b !== undefined)) ids.push(...(bytes as number[]));
        else if (this.unk === undefined) throw new Error(`tokenizer: ${JSON.stringify(ch)} is not in the vocabulary and there is no unk_token or byte fallback`);
        else if (!(this.fuseUnk && ids.at(-1) === this.unk)) ids.push(this.unk);
      }
    }
    // Lowest-rank pair first, every occurrence left to right (tokenizers' merge order).
    for (;;) {
      let best: { rank: number; id: number } | undefined;
      let bestA = 0;
      let bestB = 0;
      for (let i = 0; i + 1 < ids.length; i++) {
        const m = this.mergeInfo.get(pairKey(ids[i]!, ids[i + 1]!));
        if (m && (!best || m.rank < best.rank)) [best, bestA, bestB] = [m, ids[i]!, ids[i + 1]!];
      }
      if (!best) return ids;
      ids = mergePair(ids, bestA, bestB, best.id);
    }
  }

  decode(ids: ArrayLike<number>): string {
    let text = '';
    let run: number[] = [];
    const flush = () => {
      if (!run.length) return;
      const bytes = Buffer.from(run);
      const valid = Buffer.from(bytes.toString('utf8'), 'utf8').equals(bytes);
      text += valid ? bytes.toString('utf8') : '\ufffd'.repeat(run.length);
      run = [];
    };
    for (let i = 0; i < ids.length; i++) {
      const id = ids[i]!;
      const t = this.specialById.get(id) ?? this.tokens[id];
      if (t === undefined) throw new Error(`tokenizer: id ${id} is not in the vocabulary (size ${this.vocabSize})`);
      const byte = /^<0x[0-9A-F]{2}>$/.test(t) ? parseInt(t.slice(3, 5), 16) : undefined;
      if (byte !== undefined && this.byteIds[byte] === id) run.push(byte);
      else {
        flush();
        text += t.replaceAll(SPACE, ' ');
      }
    }
    flush();
    return text.startsWith(' ') ? text.slice(1) : text;
  }

  toJSON(): object {
    return this.json;
  }

  fingerprint(): string {
    return fingerprintOf(this.json);
  }
}

/** How "▁" is prepended, from the normalizer (Prepend) or a Metaspace pre-tokenizer. */
function prependScheme(j: Record<string, any>): 'always' | 'first' | 'never' {
  const norm = j['normalizer'];
  const list: any[] = norm?.type === 'Sequence' ? norm.normalizers : norm ? [norm] : [];
  let prepend: 'always' | 'never' = 'never';
  for (const n of list) {
    if (n.type === 'Prepend' && n.prepend === SPACE) prepend = 'always';
    else if (n.type === 'Replace' && n.pattern?.String === ' ' && n.content === SPACE) continue;
    else fail(`normalizer ${JSON.stringify(n.type)} is not supported in SentencePiece BPE (Prepend "▁" and Replace " " -> "▁" are)`);
  }
  const pre = j['pre_tokenizer'];
  if (pre === null || pre === undefined) return prepend;
  if (pre.type !== 'Metaspace') fail(`pre_tokenizer.type ${JSON.stringify(pre.type)} is not supported with byte fallback (none or Metaspace is)`);
  if (pre.split === true) fail('pre_tokenizer Metaspace with split: true is not supported (Llama 2 files have split: false)');
  if (pre.replacement !== SPACE) fail('pre_tokenizer Metaspace replacement must be "▁"');
  return pre.prepend_scheme === 'first' ? 'first' : pre.prepend_scheme === 'never' || pre.add_prefix_space === false ? 'never' : 'always';
}
