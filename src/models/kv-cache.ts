// KV-cache arithmetic shared by every decoder family: positions of a chunk of new tokens,
// writing their keys/values into fixed-size caches, and which cached positions each query
// sees. Caches never change shape, so one compiled graph serves every step.
import type { Tensor } from '../tensor/tensor.js';
import { constant } from '../tensor/tensor.js';
import { hostValue } from '../ir/value.js';

function iota(n: number, shape: number[], graph: Tensor['graph']): Tensor {
  return constant(hostValue('int64', shape, [...Array(n).keys()]), graph);
}

/** Positions [B, S] int64 of S new tokens per sequence that start at start [B] int64. */
export function chunkPositions(start: Tensor, s: number): Tensor {
  const b = start.shape[0]!;
  return start.reshape([b, 1]).add(iota(s, [1, s], start.graph));
}

/**
 * cache [B, h, T, d] with fresh [B, h, S, d] written at positions pos [B, S]: a one-hot
 * [B, 1, T, S] matrix places each new row, so any chunk length uses the same few ops.
 */
export function writeCache(cache: Tensor, fresh: Tensor, pos: Tensor): Tensor {
  const [b, , t] = cache.shape as [number, number, number, number];
  const s = pos.shape[1]!;
  const place = iota(t, [1, 1, t, 1], pos.graph).eq(pos.reshape([b, 1, 1, s])).cast('float32'); // (B, 1, T, S)
  const written = place.sum(-1, true); // (B, 1, T, 1): 1 where a new row lands
  return cache.mul(written.neg().add(1)).add(place.matmul(fresh));
}

/** bool [B, 1, S, T]: cached position t is visible to the query at pos[b, s] (t <= pos). */
export function visibleFrom(pos: Tensor, blockSize: number): Tensor {
  const [b, s] = pos.shape as [number, number];
  return iota(blockSize, [1, 1, 1, blockSize], pos.graph).le(pos.reshape([b, 1, s, 1]));
}
