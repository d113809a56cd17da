// The one median that atscale's timings report: these machines are noisy, so a figure is the
// median of repeated runs rather than one run or a mean that a single stall can drag.

/** The middle value; the mean of the two middle ones for an even count; NaN for none. */
export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}
