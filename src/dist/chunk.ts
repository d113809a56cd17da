// How a flat buffer of n elements is split among `parts` ranks: contiguous ranges, the first
// n % parts ranges one element longer. No padding: reduce-scatter and all-gather use these
// exact ranges, so ZeRO shards of a flat parameter buffer line up with them.

/** [start, end) of part `index` when n elements are split into `parts` nearly equal ranges. */
export function chunkRange(n: number, parts: number, index: number): [number, number] {
  if (!Number.isInteger(n) || n < 0) throw new RangeError(`chunkRange: n must be a non-negative integer, got ${n}`);
  if (!Number.isInteger(parts) || parts < 1) throw new RangeError(`chunkRange: worldSize must be a positive integer, got ${parts}`);
  if (!Number.isInteger(index) || index < 0 || index >= parts) throw new RangeError(`chunkRange: rank ${index} is outside 0..${parts - 1}`);
  const base = Math.floor(n / parts);
  const extra = n % parts;
  const start = index * base + Math.min(index, extra);
  return [start, start + base + (index < extra ? 1 : 0)];
}
