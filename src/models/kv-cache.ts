// KV-cache arithmetic shared by every decoder family: positions of a chunk of new tokens,
// writing their keys/values into fixed-size caches, and which cached positions each query
// sees. Caches never change shape, so one compiled graph serves every step.
import type { Tensor } from '../tensor/tensor.js';
import type { LayerCache } from './model.js';
import { constant } from '../tensor/tensor.js';
import { causalMask, concat, softmax, split, where } from '../tensor/functional.js';
import { hostValue } from '../ir/value.js';

function iota(n: number, shape: number[], graph: Tensor['graph']): Tensor {
  return constant(hostValue('int64', shape, [...Array(n).keys()]), graph);
}

/** Positions [B, S] int64 of S new tokens per sequence that start at start [B] int64. */
export function chunkPositions(start: Tensor, s: number): Tensor {
  const b = start.shape[0]!;
  return start.reshape([b, 1]).add(iota(s, [1, s], start.graph));
}

/** What a block's decode returns: its output, its updated cache and the chunk's own keys/values. */
export interface BlockDecode {
  y: Tensor;
  cache: LayerCache;
  fresh: LayerCache;
}

/**
 * cache [B, h, T, d] with fresh [B, h, S, d] written at positions pos [B, S]: a one-hot
 * [B, 1, T, S] matrix places each new row, so any chunk length uses the same few ops.
 */
export function writeCache(cache: Tensor, fresh: Tensor, pos: Tensor): Tensor {
  const [b, , t] = cache.shape as [number, number, number, number];
  const s = pos.shape[1]!;
  const place = iota(t, [1, 1, t, 1], pos.graph).eq(pos.reshape([b, 1, 1, s])).cast('float32'); // (B, 1, T, S)
  const written = place.sum(-1, true).gt(0); // (B, 1, T, 1): true where a new row lands
  // One select instead of cache * (1 - written) + new: the same values, one pass over the cache.
  return where(written, place.matmul(fresh), cache);
}

/**
 * Attention of S new queries q [B, nh, S, d] (at positions pos [B, S], consecutive from
 * pos[b, 0]) over the cache's positions before pos[b, 0] and, causally, the chunk's own keys
 * and values `fresh` [B, nkv, S, d]. The cache is only read: its rows at and past the chunk
 * may hold anything, so a caller that keeps the cache outside the graph needs only `fresh` back
 * (S rows per sequence) instead of a rewritten [B, nkv, T, d] cache per step. `expand` repeats
 * kv heads for grouped-query attention. Returns [B, nh, S, d].
 */
export function cachedAttention(q: Tensor, cache: LayerCache, fresh: LayerCache, pos: Tensor, expand: (kv: Tensor) => Tensor = (kv) => kv): Tensor {
  const [b, , s, d] = q.shape as [number, number, number, number];
  const t = cache.k.shape[2]!;
  const qs = q.mul(1 / Math.sqrt(d));
  const before = iota(t, [1, 1, 1, t], pos.graph).lt(pos.slice(null, [0, 1]).reshape([b, 1, 1, 1])); // (B, 1, 1, T)
  const past = where(before, qs.matmul(expand(cache.k).transpose(-2, -1)), -1e9); // (B, nh, S, T)
  const own = where(causalMask(s, s, pos.graph), qs.matmul(expand(fresh.k).transpose(-2, -1)), -1e9); // (B, nh, S, S)
  const [pPast, pOwn] = split(softmax(concat([past, own], -1), -1), [t, s], -1);
  return pPast!.matmul(expand(cache.v)).add(pOwn!.matmul(expand(fresh.v)));
}
