// Choosing the next token from one row of logits, on the host: OpenAI's presence and frequency
// penalties, temperature, top-k, top-p (nucleus) and a per-request seeded generator, plus the
// log-probabilities that `logprobs` asks for. Temperature 0 is greedy (ties go to the lowest id).
import { Rng } from '../tensor/rng.js';

export interface SamplingParams {
  temperature: number;
  topP: number;
  /** 0 = no top-k cut. */
  topK: number;
  presencePenalty: number;
  frequencyPenalty: number;
  /** How many alternatives to report per token (0 = none); -1 = no logprobs at all. */
  topLogprobs: number;
}

export interface TokenChoice {
  id: number;
  /** log p(id) under the penalised distribution (before temperature), when asked for. */
  logprob?: number;
  top?: { id: number; logprob: number }[];
}

/** Applies the penalties in place: logit -= presence * [count > 0] + frequency * count. */
function penalise(logits: Float32Array, counts: Map<number, number>, p: SamplingParams): void {
  if (p.presencePenalty === 0 && p.frequencyPenalty === 0) return;
  for (const [id, n] of counts) logits[id] = logits[id]! - p.presencePenalty - p.frequencyPenalty * n;
}

function logSoftmax(logits: Float32Array): Float64Array {
  let max = -Infinity;
  for (const x of logits) max = Math.max(max, x);
  let total = 0;
  for (const x of logits) total += Math.exp(x - max);
  const lse = max + Math.log(total);
  return Float64Array.from(logits, (x) => x - lse);
}

function argmax(x: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < x.length; i++) if (x[i]! > x[best]!) best = i;
  return best;
}

/** The next token for one sequence; `logits` is a scratch copy of the row and is modified. */
export function chooseToken(logits: Float32Array, counts: Map<number, number>, p: SamplingParams, rng: Rng): TokenChoice {
  penalise(logits, counts, p);
  let id: number;
  if (p.temperature === 0) {
    id = argmax(logits);
  } else {
    let order = Array.from({ length: logits.length }, (_, i) => i).sort((a, b) => logits[b]! - logits[a]! || a - b);
    if (p.topK > 0 && p.topK < order.length) order = order.slice(0, p.topK);
    const max = logits[order[0]!]!;
    let w = order.map((i) => Math.exp((logits[i]! - max) / p.temperature));
    if (p.topP < 1) {
      // Keep the smallest prefix of the sorted tokens whose probability reaches top_p.
      const total = w.reduce((a, b) => a + b, 0);
      let acc = 0;
      let keep = 0;
      while (keep < w.length && acc < p.topP * total) acc += w[keep++]!;
      order = order.slice(0, Math.max(1, keep));
      w = w.slice(0, Math.max(1, keep));
    }
    const total = w.reduce((a, b) => a + b, 0);
    let u = rng.uniform() * total;
    id = order[order.length - 1]!;
    for (let j = 0; j < order.length; j++) {
      u -= w[j]!;
      if (u <= 0) {
        id = order[j]!;
        break;
      }
    }
  }
  if (p.topLogprobs < 0) return { id };
  const lp = logSoftmax(logits);
  const top = p.topLogprobs > 0 ? Array.from(lp.keys()).sort((a, b) => lp[b]! - lp[a]! || a - b).slice(0, p.topLogprobs).map((i) => ({ id: i, logprob: lp[i]! })) : [];
  return { id, logprob: lp[id]!, top };
}

/** A request's generator: seeded when the client gave a seed, otherwise from fresh entropy. */
export function requestRng(seed: number | undefined): Rng {
  return new Rng(seed ?? Math.floor(Math.random() * 2 ** 32));
}
