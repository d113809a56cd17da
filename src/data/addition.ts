// A corpus the project makes itself (no download): addition problems "a+b=s" one per line,
// operands zero-padded to a fixed width and the sum written least-significant digit first
// (the order in which carries are computed, also zero-padded): every digit then sits at a
// fixed offset from the '=' and '+' markers, which makes the task learnable by a small model
// in minutes. Held-out problems (never in the training text) measure exact-match accuracy.
import { Rng } from '../tensor/rng.js';

export interface AdditionProblem {
  a: number;
  b: number;
  /** "a+b=" with zero-padded operands */
  prompt: string;
  /** The digits of a+b, least significant first, padded to digits+1. */
  answer: string;
}

export function additionProblem(a: number, b: number, digits: number): AdditionProblem {
  const pad = (x: number, w: number) => String(x).padStart(w, '0');
  return { a, b, prompt: `${pad(a, digits)}+${pad(b, digits)}=`, answer: pad(a + b, digits + 1).split('').reverse().join('') };
}

/** Training text and held-out problems for operands in [0, 10^digits). */
export function additionCorpus(digits: number, trainCount: number, testCount: number, seed: number): { text: string; test: AdditionProblem[] } {
  const limit = 10 ** digits;
  if (trainCount + testCount > (limit * limit) / 2) throw new Error(`too many problems (${trainCount + testCount}) for ${digits}-digit operands`);
  const rng = new Rng(seed);
  const seen = new Set<number>();
  const draw = (): AdditionProblem => {
    for (;;) {
      const a = rng.int(limit);
      const b = rng.int(limit);
      const key = a * limit + b;
      if (!seen.has(key)) {
        seen.add(key);
        return additionProblem(a, b, digits);
      }
    }
  };
  const test = Array.from({ length: testCount }, draw);
  const lines: string[] = [];
  for (let i = 0; i < trainCount; i++) {
    const p = draw();
    lines.push(`${p.prompt}${p.answer}\n`);
  }
  return { text: lines.join(''), test };
}
