// The dropout key of a micro-step: a 32-bit mix of (seed, iteration, micro-step), so masks
// depend only on where the run is, never on how it got there (resume, recompute, ranks).

export function dropoutKey(seed: number, iter: number, micro: number): number {
  let h = (seed >>> 0) ^ 0x9e3779b9;
  for (const x of [iter, micro]) {
    h = Math.imul(h ^ (x >>> 0), 0x85ebca6b) >>> 0;
    h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35) >>> 0;
    h = (h ^ (h >>> 16)) >>> 0;
  }
  // Signed 32-bit range: the graph casts the key to int32.
  return h | 0;
}
