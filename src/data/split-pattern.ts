// Pre-tokenizer split patterns as tokenizer.json stores them (Oniguruma syntax, as Hugging Face
// `tokenizers` compiles them) turned into JavaScript regular expressions. The patterns the
// published BPE tokenizers use differ from JS syntax in one construct: the scoped
// case-insensitive group `(?i:'s|'t|...)` (Llama 3, Qwen2), which JS before ES2025 lacks; it is
// rewritten with explicit [sS] classes. \p{L}, \p{N}, \s and lookahead mean the same in both.

/** `(?i:abc)` -> `(?:[aA][bB][cC])`; other syntax passes through. */
function expandCaseInsensitive(src: string): string {
  let out = '';
  let i = 0;
  while (i < src.length) {
    if (src.startsWith('(?i:', i)) {
      let depth = 1;
      let j = i + 4;
      let body = '';
      for (; j < src.length && depth > 0; j++) {
        const ch = src[j]!;
        if (ch === '\\') {
          body += ch + src[++j]!;
          continue;
        }
        if (ch === '(') depth++;
        if (ch === ')' && --depth === 0) break;
        if (ch === '[') throw new Error(`split pattern: a character class inside (?i:...) is not supported: ${src}`);
        body += /\p{L}/u.test(ch) && ch.toLowerCase() !== ch.toUpperCase() ? `[${ch.toLowerCase()}${ch.toUpperCase()}]` : ch;
      }
      if (depth !== 0) throw new Error(`split pattern: unbalanced (?i: group in ${src}`);
      out += `(?:${body})`;
      i = j + 1;
      continue;
    }
    if (src[i] === '\\') {
      out += src[i]! + (src[i + 1] ?? '');
      i += 2;
      continue;
    }
    if (src.startsWith('(?', i) && !/^\(\?(:|=|!|<=|<!)/.test(src.slice(i))) {
      throw new Error(`split pattern: group ${src.slice(i, i + 5)}... is not supported (only (?:, (?=, (?!, (?<=, (?<! and (?i:)`);
    }
    out += src[i]!;
    i++;
  }
  return out;
}

/** A global, Unicode JS RegExp equivalent to a tokenizer.json Split pattern. */
export function compileSplitPattern(source: string): RegExp {
  try {
    return new RegExp(expandCaseInsensitive(source), 'gu');
  } catch (e) {
    throw new Error(`split pattern ${JSON.stringify(source)} is not a regular expression atscale can run: ${(e as Error).message}`);
  }
}

/** Hugging Face Split with behavior "Isolated": every match is a piece, and so is every gap. */
export function splitIsolated(text: string, pattern: RegExp): string[] {
  const pieces: string[] = [];
  let at = 0;
  for (const m of text.matchAll(pattern)) {
    if (m[0].length === 0) continue;
    if (m.index! > at) pieces.push(text.slice(at, m.index));
    pieces.push(m[0]);
    at = m.index! + m[0].length;
  }
  if (at < text.length) pieces.push(text.slice(at));
  return pieces;
}
