// The two pieces of GPT-2's byte-level scheme that BPE training, encoding and the Hugging Face
// file format all share:
// - every byte maps to one printable Unicode character, so any UTF-8 text becomes a string of
//   "byte characters" that BPE can merge and a tokenizer.json can store as plain JSON keys;
// - a pre-tokenization regex splits text into words (merges never cross word boundaries).

/** The 256 byte characters in GPT-2's order: printable Latin-1 bytes keep their own code point,
 *  the rest (controls, space, ...) are shifted to 256 + n so none is whitespace or invisible. */
function buildByteOrder(): number[] {
  const printable: number[] = [];
  for (let b = 0x21; b <= 0x7e; b++) printable.push(b);
  for (let b = 0xa1; b <= 0xac; b++) printable.push(b);
  for (let b = 0xae; b <= 0xff; b++) printable.push(b);
  const order = printable.slice();
  const isPrintable = new Set(printable);
  for (let b = 0; b < 256; b++) if (!isPrintable.has(b)) order.push(b);
  return order;
}

/** BYTE_ORDER[i] is the byte whose character is listed i-th (GPT-2 gives it id i). */
export const BYTE_ORDER: readonly number[] = buildByteOrder();

/** BYTE_TO_CHAR[b] is the printable character standing for byte b. */
export const BYTE_TO_CHAR: readonly string[] = (() => {
  const chars = new Array<string>(256);
  let shifted = 0;
  for (let b = 0; b < 256; b++) {
    const printable = (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
    chars[b] = String.fromCodePoint(printable ? b : 256 + shifted++);
  }
  return chars;
})();

const CHAR_TO_BYTE = new Map<string, number>(BYTE_TO_CHAR.map((c, b) => [c, b]));

/** Maps UTF-8 bytes to their byte-character string. */
export function bytesToChars(bytes: Uint8Array): string {
  let s = '';
  for (let i = 0; i < bytes.length; i++) s += BYTE_TO_CHAR[bytes[i]!];
  return s;
}

/** Inverse of bytesToChars; throws on a character that stands for no byte. */
export function charsToBytes(s: string, out: number[]): void {
  for (const ch of s) {
    const b = CHAR_TO_BYTE.get(ch);
    if (b === undefined) throw new Error(`byte-level token text contains ${JSON.stringify(ch)}, which stands for no byte`);
    out.push(b);
  }
}

/** GPT-2's pre-tokenization pattern (contractions, letters, digits, punctuation runs, whitespace),
 *  the one Hugging Face's ByteLevel pre-tokenizer applies with use_regex: true. */
export const GPT2_SPLIT_PATTERN = /'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+/gu;

/** Splits text into pre-tokens; their concatenation is the text (the pattern matches every char). */
export function preTokenize(text: string): string[] {
  const words: string[] = [];
  for (const m of text.matchAll(GPT2_SPLIT_PATTERN)) words.push(m[0]);
  return words;
}
