// Task metrics over (prediction, reference) pairs, each a score in [0, 1].
//
// Normalisation (stated, and applied by exact and accuracy): Unicode NFKC, lower case, leading
// and trailing whitespace removed, runs of whitespace collapsed to one space, and trailing
// sentence punctuation (. ! ?) removed.
//   exact:    normalised prediction equals normalised reference.
//   accuracy: for labels: the first word of the normalised prediction equals the normalised
//             reference (a classifier that goes on after its label is still right).
//   rougeL:   ROUGE-L F1 (Lin 2004) over lower-cased whitespace tokens, averaged over examples.
//   chrf:     chrF (Popovic 2015) with character n-grams n = 1..6 and beta = 2, whitespace
//             removed, n-gram statistics summed over the corpus as sacrebleu does.

export type MetricName = 'exact' | 'accuracy' | 'rougeL' | 'chrf';
export const METRICS: readonly MetricName[] = ['exact', 'accuracy', 'rougeL', 'chrf'];

export function normalise(s: string): string {
  return s.normalize('NFKC').toLowerCase().trim().replace(/\s+/g, ' ').replace(/[.!?]+$/, '');
}

function lcs(a: readonly string[], b: readonly string[]): number {
  let prev = new Array<number>(b.length + 1).fill(0);
  for (let i = 1; i <= a.length; i++) {
    const cur = new Array<number>(b.length + 1).fill(0);
    for (let j = 1; j <= b.length; j++) cur[j] = a[i - 1] === b[j - 1] ? prev[j - 1]! + 1 : Math.max(prev[j]!, cur[j - 1]!);
    prev = cur;
  }
  return prev[b.length]!;
}

export function rougeL(prediction: string, reference: string): number {
  const p = prediction.toLowerCase().split(/\s+/).filter(Boolean);
  const r = reference.toLowerCase().split(/\s+/).filter(Boolean);
  if (p.length === 0 || r.length === 0) return p.length === r.length ? 1 : 0;
  const l = lcs(p, r);
  if (l === 0) return 0;
  const prec = l / p.length;
  const rec = l / r.length;
  return (2 * prec * rec) / (prec + rec);
}

function charNgrams(s: string, n: number): Map<string, number> {
  const chars = [...s.replace(/\s+/g, '')];
  const m = new Map<string, number>();
  for (let i = 0; i + n <= chars.length; i++) {
    const g = chars.slice(i, i + n).join('');
    m.set(g, (m.get(g) ?? 0) + 1);
  }
  return m;
}

/** Corpus chrF: per order n, matches / hypothesis n-grams and matches / reference n-grams summed over all pairs. */
export function chrf(predictions: readonly string[], references: readonly string[], order = 6, beta = 2): number {
  const stats = Array.from({ length: order }, () => ({ match: 0, hyp: 0, ref: 0 }));
  predictions.forEach((p, k) => {
    for (let n = 1; n <= order; n++) {
      const h = charNgrams(p, n);
      const r = charNgrams(references[k]!, n);
      const s = stats[n - 1]!;
      for (const [g, c] of h) s.match += Math.min(c, r.get(g) ?? 0);
      for (const c of h.values()) s.hyp += c;
      for (const c of r.values()) s.ref += c;
    }
  });
  const used = stats.filter((s) => s.ref > 0);
  if (used.length === 0) return 0;
  const prec = used.reduce((a, s) => a + (s.hyp > 0 ? s.match / s.hyp : 0), 0) / used.length;
  const rec = used.reduce((a, s) => a + s.match / s.ref, 0) / used.length;
  if (prec + rec === 0) return 0;
  const b2 = beta * beta;
  return ((1 + b2) * prec * rec) / (b2 * prec + rec);
}

/** Per-example scores (chrF, a corpus metric, gives each example its own sentence score) and the corpus score. */
export function score(metric: MetricName, predictions: readonly string[], references: readonly string[]): { score: number; perExample: number[] } {
  let per: number[];
  switch (metric) {
    case 'exact':
      per = predictions.map((p, i) => (normalise(p) === normalise(references[i]!) ? 1 : 0));
      break;
    case 'accuracy':
      per = predictions.map((p, i) => ((normalise(p).split(' ')[0] ?? '') === normalise(references[i]!) ? 1 : 0));
      break;
    case 'rougeL':
      per = predictions.map((p, i) => rougeL(p, references[i]!));
      break;
    case 'chrf':
      per = predictions.map((p, i) => chrf([p], [references[i]!]));
      return { score: chrf(predictions, references), perExample: per };
    default:
      throw new Error(`unknown metric '${String(metric)}'; use one of ${METRICS.join(', ')}`);
  }
  return { score: per.length ? per.reduce((a, b) => a + b, 0) / per.length : 0, perExample: per };
}
