// The one median every timing in atscale reports: these machines are noisy, so figures are
// medians of repeated runs, never means or single runs.

/** The middle value; the mean of the two middle ones for an even count; NaN for none. */
export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}
