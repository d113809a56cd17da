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

/**
 * The int64 key fed to a graph whose batch holds rows [row0, row0 + B) of the global batch of
 * its micro-step: the low 32 bits are the key, the bits above the row, and every dropout mask
 * then draws the element of the global tensor (runtime lowering of dropout_mask). So a
 * micro-batch split over data-parallel ranks or pipeline micro-batches draws exactly the masks
 * of one process running the whole batch.
 */
export function dropoutKeyAt(key: number, row0: number): number {
  if (!Number.isInteger(row0) || row0 < 0 || row0 >= 2 ** 20) throw new RangeError(`dropout row offset must be an integer in 0..2^20, got ${row0}`);
  return row0 * 2 ** 32 + (key >>> 0);
}
