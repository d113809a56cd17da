// How a conversation becomes text, one interface for fine-tuning, eval and generation:
//   PlainChatFormat: a prefix per role, the content, a suffix (needs no special tokens beyond
//     end-of-text; atscale's own checkpoints use it);
//   JinjaChatFormat: the model's own chat template (a Hugging Face tokenizer_config chat_template).
// render() returns pieces that say which text is an answer (an assistant message's content and
// the end-of-text that closes it), so fine-tuning puts the loss on exactly those tokens whichever
// format rendered them. The format is stored with a fine-tuned model, so eval and serving render
// as training did.
import { JinjaChatTemplate } from './chat-template.js';
import type { ChatMessage, Role } from './finetune-records.js';

/** The end-of-text token atscale's own BPE tokenizer adds (GPT-2's); HF folders name theirs. */
export const END_OF_TEXT = '<|endoftext|>';

/** A stretch of rendered text; the concatenation of a render's pieces is the whole conversation. */
export interface ChatPiece {
  text: string;
  /** Assistant content (with the end-of-text after it): what fine-tuning learns. */
  answer: boolean;
  /** For answers: the message's weight is not 0. */
  learn: boolean;
}

export interface ChatFormat {
  readonly name: string;
  /** The token that ends an answer; generation stops on it. */
  readonly endOfText: string;
  render(messages: readonly ChatMessage[]): ChatPiece[];
  /** Text of the conversation up to the point where the assistant should answer. */
  generationPrompt(messages: readonly ChatMessage[]): string;
  toJSON(): StoredChatFormat;
}

export type StoredChatFormat =
  | { kind: 'plain'; name: string; prefix: Record<Role, string>; suffix: string; endOfText: string }
  | { kind: 'jinja'; name: string; source: string; bosToken?: string; endOfText: string };

export class PlainChatFormat implements ChatFormat {
  readonly name = 'atscale-plain';

  constructor(
    readonly endOfText = END_OF_TEXT,
    readonly prefix: Record<Role, string> = { system: 'System: ', user: 'User: ', assistant: 'Assistant:' },
    readonly suffix = '\n',
  ) {}

  render(messages: readonly ChatMessage[]): ChatPiece[] {
    return messages.flatMap((m) => {
      const answer = m.role === 'assistant';
      return [
        { text: this.prefix[m.role], answer: false, learn: false },
        { text: m.content + (answer ? this.endOfText : ''), answer, learn: answer && m.weight !== 0 },
        { text: this.suffix, answer: false, learn: false },
      ];
    });
  }

  generationPrompt(messages: readonly ChatMessage[]): string {
    return messages.map((m) => this.prefix[m.role] + m.content + this.suffix).join('') + this.prefix.assistant;
  }

  toJSON(): StoredChatFormat {
    return { kind: 'plain', name: this.name, prefix: this.prefix, suffix: this.suffix, endOfText: this.endOfText };
  }
}

export class JinjaChatFormat implements ChatFormat {
  readonly name = 'jinja';
  private readonly template: JinjaChatTemplate;

  constructor(readonly source: string, readonly endOfText: string, readonly bosToken?: string) {
    this.template = new JinjaChatTemplate(source);
  }

  private text(messages: readonly ChatMessage[], addGenerationPrompt: boolean): string {
    const plain = messages.map((m) => ({ role: m.role, content: m.content }));
    return this.template.render(plain, { bos_token: this.bosToken ?? '', eos_token: this.endOfText, add_generation_prompt: addGenerationPrompt });
  }

  generationPrompt(messages: readonly ChatMessage[]): string {
    return this.text(messages, true);
  }

  /**
   * The template renders the whole conversation as one string; each assistant message's content
   * is found in it after the rendered prefix of the conversation before that message (which a
   * chat template must reproduce, or generation could not continue it). The answer runs on to
   * the end-of-text token when the template closes the turn with it, so the model learns to stop.
   */
  render(messages: readonly ChatMessage[]): ChatPiece[] {
    const full = this.text(messages, false);
    const out: ChatPiece[] = [];
    let at = 0;
    messages.forEach((m, i) => {
      if (m.role !== 'assistant') return;
      const before = [this.text(messages.slice(0, i), true), this.text(messages.slice(0, i), false)].find((p) => full.startsWith(p));
      if (before === undefined) throw new Error(`chat template: the conversation rendered up to message ${i + 1} is not a prefix of the whole conversation, so the answer cannot be located; use a template whose renders grow by appending`);
      const from = Math.max(at, before.length);
      let content = m.content;
      let start = full.indexOf(content, from);
      if (start < 0 && content.trim() !== content) start = full.indexOf((content = content.trim()), from);
      if (start < 0) throw new Error(`chat template: assistant message ${i + 1} (${JSON.stringify(m.content.slice(0, 40))}) does not appear verbatim in the rendered text, so its loss mask cannot be placed`);
      let end = start + content.length;
      const turnEnd = i + 1 < messages.length ? this.text(messages.slice(0, i + 1), false).length : full.length;
      const eos = full.slice(end, turnEnd).indexOf(this.endOfText);
      if (eos >= 0) end += eos + this.endOfText.length;
      out.push({ text: full.slice(at, start), answer: false, learn: false }, { text: full.slice(start, end), answer: true, learn: m.weight !== 0 });
      at = end;
    });
    out.push({ text: full.slice(at), answer: false, learn: false });
    return out.filter((p) => p.text !== '');
  }

  toJSON(): StoredChatFormat {
    return { kind: 'jinja', name: this.name, source: this.source, bosToken: this.bosToken, endOfText: this.endOfText };
  }
}

/**
 * A stored format back as an object. Checkpoints fine-tuned before formats had kinds stored the
 * plain template's {name, prefix, suffix}; they read as plain with `endOfText`.
 */
export function chatFormatFromJSON(x: unknown, endOfText = END_OF_TEXT): ChatFormat {
  const s = x as Partial<StoredChatFormat> & { prefix?: Record<Role, string>; suffix?: string };
  if (s?.kind === 'jinja' && typeof s.source === 'string') return new JinjaChatFormat(s.source, s.endOfText ?? endOfText, s.bosToken);
  if (s && typeof s === 'object' && s.prefix && typeof s.suffix === 'string') return new PlainChatFormat(s.endOfText ?? endOfText, s.prefix, s.suffix);
  throw new Error(`stored chat format ${JSON.stringify(x)?.slice(0, 80)} is neither {kind:"jinja", source} nor {prefix, suffix}`);
}
