// The text of one choice as tokens arrive: decodes the ids so far, ends the text at the first
// stop sequence, and releases only text that cannot turn out to be the start of a stop sequence
// (or half of a multi-byte character), so a stream never sends what it must later take back.
import type { Tokenizer } from '../data/index.js';

export class ChoiceText {
  readonly ids: number[] = [];
  /** Characters of the text already released. */
  private sent = 0;
  private text = '';
  stopped = false;

  constructor(private readonly tokenizer: Tokenizer, private readonly stops: readonly string[]) {}

  /** Adds a token; returns the newly released text. */
  push(id: number): string {
    this.ids.push(id);
    const full = this.tokenizer.decode(this.ids);
    const longest = this.stops.reduce((m, s) => Math.max(m, s.length), 0);
    let cut = -1;
    for (const s of this.stops) {
      const at = full.indexOf(s, Math.max(0, this.sent - longest));
      if (at >= 0 && (cut < 0 || at < cut)) cut = at;
    }
    if (cut >= 0) {
      this.stopped = true;
      this.text = full.slice(0, cut);
      return this.release(this.text.length);
    }
    this.text = full;
    let safe = full.length;
    while (safe > this.sent && full.charCodeAt(safe - 1) === 0xfffd) safe--;
    for (const s of this.stops) {
      for (let k = Math.min(s.length - 1, full.length); k > 0; k--) {
        if (full.endsWith(s.slice(0, k))) {
          safe = Math.min(safe, full.length - k);
          break;
        }
      }
    }
    return this.release(safe);
  }

  /** Everything not yet released (the sequence is over, so nothing is held back any more). */
  flush(): string {
    return this.release(this.text.length);
  }

  get value(): string {
    return this.text;
  }

  private release(upTo: number): string {
    if (upTo <= this.sent) return '';
    const out = this.text.slice(this.sent, upTo);
    this.sent = upTo;
    return out;
  }
}
