// Fine-tuning records -> token ids with a loss mask, and padded batches of them.
//
// Rendering: a completion record is prompt + completion + end-of-text; a chat record goes
// through a ChatTemplate (stored with the model, so training, eval and serving render alike).
// Each rendered piece says whether its tokens are learned: by default only completions and
// assistant messages (weight 1) are, `trainOnPrompt` learns every token.
//
// Length policy (block size T; a sequence of n tokens gives n - 1 predictions, so n <= T + 1):
//   truncate: drop prompt tokens from the left, then completion tokens from the right;
//   skip:     leave the example out (counted and reported);
//   refuse:   stop with an error naming the line.
// Batches are right-padded: padding comes after every real token, so under causal attention it
// changes nothing that is learned, and its targets are -1 (ignored by the loss).
import type { Tokenizer } from './tokenizer.js';
import type { ChatMessage, FinetuneRecord, Role } from './finetune-records.js';
import { DataLineError } from './finetune-records.js';
import type { Rng, RngState } from '../tensor/rng.js';

export const END_OF_TEXT = '<|endoftext|>';

/** How chat messages become text: a prefix per role, then the content, then `suffix`. */
export interface ChatTemplate {
  name: string;
  prefix: Record<Role, string>;
  suffix: string;
}

/** A plain-text template that needs no special tokens beyond end-of-text. */
export const PLAIN_CHAT_TEMPLATE: ChatTemplate = {
  name: 'atscale-plain',
  prefix: { system: 'System: ', user: 'User: ', assistant: 'Assistant:' },
  suffix: '\n',
};

/** Text of a conversation up to the point where the assistant should answer. */
export function renderChatPrompt(messages: readonly ChatMessage[], t: ChatTemplate): string {
  return messages.map((m) => t.prefix[m.role] + m.content + t.suffix).join('') + t.prefix.assistant;
}

interface Piece {
  text: string;
  learn: boolean;
  /** Prompt pieces may be cut from the left when an example is too long. */
  prompt: boolean;
}

function pieces(r: FinetuneRecord, t: ChatTemplate, eos: string, trainOnPrompt: boolean): Piece[] {
  if (r.kind === 'completion') {
    return [
      { text: r.prompt, learn: trainOnPrompt, prompt: true },
      { text: r.completion + eos, learn: true, prompt: false },
    ];
  }
  const out: Piece[] = [];
  for (const m of r.messages) {
    const answer = m.role === 'assistant';
    out.push({ text: t.prefix[m.role], learn: trainOnPrompt, prompt: !answer });
    out.push({ text: m.content + (answer ? eos : ''), learn: answer ? m.weight !== 0 : trainOnPrompt, prompt: !answer });
    out.push({ text: t.suffix, learn: trainOnPrompt, prompt: !answer });
  }
  return out;
}

export interface EncodedExample {
  line: number;
  ids: Int32Array;
  /** 1 where the token is a learned target, else 0 (aligned with ids). */
  learn: Uint8Array;
}

export type OverflowPolicy = 'truncate' | 'skip' | 'refuse';

export interface EncodeOptions {
  blockSize: number;
  template: ChatTemplate;
  trainOnPrompt: boolean;
  overflow: OverflowPolicy;
}

export interface EncodeReport {
  examples: EncodedExample[];
  truncated: number;
  /** Skipped examples with the reason (only under the skip policy). */
  skipped: { line: number; reason: string }[];
  learnedTokens: number;
}

/** The tokenizer's end-of-text id; fine-tuning needs it so generation knows where to stop. */
export function endOfTextId(tok: Tokenizer): number {
  let ids: ArrayLike<number> = [];
  try {
    ids = tok.encode(END_OF_TEXT);
  } catch {
    // A character tokenizer cannot even spell it.
  }
  if (ids.length !== 1) {
    throw new Error(`the tokenizer has no ${END_OF_TEXT} token (it encodes to ${ids.length} ids); fine-tuning needs one to end completions. Pretrain with --tokenizer bpe (which adds it), or use a Hugging Face tokenizer that has it`);
  }
  return ids[0]!;
}

export function encodeExamples(file: string, records: readonly FinetuneRecord[], tok: Tokenizer, o: EncodeOptions): EncodeReport {
  endOfTextId(tok);
  const limit = o.blockSize + 1;
  const report: EncodeReport = { examples: [], truncated: 0, skipped: [], learnedTokens: 0 };
  for (const r of records) {
    const parts = pieces(r, o.template, END_OF_TEXT, o.trainOnPrompt).map((p) => ({ ...p, ids: Array.from(tok.encode(p.text)) }));
    let n = parts.reduce((a, p) => a + p.ids.length, 0);
    if (n > limit) {
      const why = `${n} tokens is longer than the block size ${o.blockSize} + 1`;
      if (o.overflow === 'refuse') throw new DataLineError(`${file}:${r.line}: ${why}; use --overflow truncate or skip, or a larger block size`);
      if (o.overflow === 'skip') {
        report.skipped.push({ line: r.line, reason: why });
        continue;
      }
      // Prompt tokens go first, from the left (the end of the prompt matters most) ...
      for (const p of parts) {
        if (n <= limit) break;
        if (!p.prompt) continue;
        const cut = Math.min(p.ids.length, n - limit);
        p.ids = p.ids.slice(cut);
        n -= cut;
      }
      // ... then the answer loses its end.
      for (let i = parts.length - 1; i >= 0 && n > limit; i--) {
        const cut = Math.min(parts[i]!.ids.length, n - limit);
        parts[i]!.ids = parts[i]!.ids.slice(0, parts[i]!.ids.length - cut);
        n -= cut;
      }
      report.truncated++;
    }
    const ids = Int32Array.from(parts.flatMap((p) => p.ids));
    const learn = Uint8Array.from(parts.flatMap((p) => p.ids.map(() => (p.learn ? 1 : 0))));
    const learned = learn.reduce((a, b, i) => a + (i > 0 ? b : 0), 0);
    if (learned === 0) {
      // Only possible when truncation removed every learned token.
      if (o.overflow === 'refuse') throw new DataLineError(`${file}:${r.line}: no learned token fits in the block size ${o.blockSize}`);
      report.skipped.push({ line: r.line, reason: `no learned token fits in the block size ${o.blockSize}` });
      continue;
    }
    report.learnedTokens += learned;
    report.examples.push({ line: r.line, ids, learn });
  }
  if (report.examples.length === 0) throw new Error(`${file}: no usable example (${report.skipped.length} skipped: ${report.skipped[0]?.reason ?? ''})`);
  return report;
}

/** One padded batch: x, y of [rows, blockSize]; y is -1 where nothing is learned. */
export function padBatch(examples: readonly EncodedExample[], blockSize: number, padId = 0): { x: Int32Array; y: Int32Array } {
  const x = new Int32Array(examples.length * blockSize).fill(padId);
  const y = new Int32Array(examples.length * blockSize).fill(-1);
  examples.forEach((e, r) => {
    for (let t = 0; t + 1 < e.ids.length && t < blockSize; t++) {
      x[r * blockSize + t] = e.ids[t]!;
      if (e.learn[t + 1]) y[r * blockSize + t] = e.ids[t + 1]!;
    }
  });
  return { x, y };
}

/** Shuffled passes over the examples (a new order each epoch), resumable through the Rng state. */
export class ExampleSampler {
  private order: number[] = [];
  private at = 0;

  constructor(private readonly examples: readonly EncodedExample[], private readonly rng: Rng) {}

  next(rows: number, blockSize: number): { x: Int32Array; y: Int32Array } {
    const picked: EncodedExample[] = [];
    while (picked.length < rows) {
      if (this.at >= this.order.length) this.reshuffle();
      picked.push(this.examples[this.order[this.at++]!]!);
    }
    return padBatch(picked, blockSize);
  }

  private reshuffle(): void {
    this.order = this.examples.map((_, i) => i);
    for (let i = this.order.length - 1; i > 0; i--) {
      const j = this.rng.int(i + 1);
      [this.order[i], this.order[j]] = [this.order[j]!, this.order[i]!];
    }
    this.at = 0;
  }

  getState(): { rng: RngState; order: number[]; at: number } {
    return { rng: this.rng.getState(), order: [...this.order], at: this.at };
  }
}
