// How a tensor is cut across tensor-parallel ranks, as pure arithmetic on flat row-major data,
// so a universal checkpoint can move a tensor between any two tp degrees bitwise.
// A split names the stored tensor's axis; `parts` > 1 says the axis is a concatenation of
// equal blocks that are split separately (GPT-2's c_attn output is [q | k | v]: each rank
// takes the same head range from each third). A vocabulary axis that does not divide by tp is
// padded up to a multiple of tp (Megatron's padded vocab); the padding is zero and is dropped
// when the shards are joined.
import { allocFloat, floatDTypeOf, type FloatArray } from '../ir/dtype.js';

export type TpSplit = { kind: 'column' | 'row' | 'vocab'; axis: number; parts?: number } | { kind: 'replicated' };

const prod = (xs: readonly number[]): number => xs.reduce((a, b) => a * b, 1);

/** Checks a split against a full shape and a tp degree; returns the rows of one part each rank holds. */
function partRows(name: string, shape: readonly number[], split: TpSplit, tp: number): { parts: number; size: number; local: number } {
  if (split.kind === 'replicated') return { parts: 1, size: 1, local: 1 };
  const { axis } = split;
  if (!Number.isInteger(axis) || axis < 0 || axis >= shape.length) throw new Error(`tensor "${name}": tp split axis ${axis} is outside its ${shape.length} dimension(s) [${shape.join(', ')}]`);
  const parts = split.parts ?? 1;
  if (!Number.isInteger(parts) || parts < 1) throw new Error(`tensor "${name}": tp split parts must be a positive integer, got ${parts}`);
  const dim = shape[axis]!;
  if (dim % parts !== 0) throw new Error(`tensor "${name}": axis ${axis} of size ${dim} is not ${parts} equal parts (${dim} % ${parts} = ${dim % parts})`);
  const size = dim / parts;
  if (split.kind !== 'vocab' && size % tp !== 0) throw new Error(`tensor "${name}": ${split.kind}-parallel axis ${axis} of size ${size}${parts > 1 ? ` (per part, ${parts} parts)` : ''} does not divide by tp ${tp} (${size} % ${tp} = ${size % tp})`);
  return { parts, size, local: Math.ceil(size / tp) };
}

/** Shape of one tp rank's shard (replicated tensors: the full shape). */
export function tpShardShape(name: string, shape: readonly number[], split: TpSplit, tp: number): number[] {
  if (split.kind === 'replicated') return [...shape];
  const { parts, local } = partRows(name, shape, split, tp); // checked even at tp 1: the split must fit the shape
  if (tp === 1) return [...shape];
  return shape.map((d, i) => (i === split.axis ? parts * local : d));
}

/** Walks every (outer index, part, local row) of rank r's shard and the matching full row. */
function eachRow(shape: readonly number[], split: Extract<TpSplit, { axis: number }>, tp: number, r: number, rows: { parts: number; size: number; local: number }, fn: (fullAt: number, shardAt: number, n: number) => void): void {
  const inner = prod(shape.slice(split.axis + 1));
  const outer = prod(shape.slice(0, split.axis));
  const dim = shape[split.axis]!;
  const shardDim = rows.parts * rows.local;
  for (let o = 0; o < outer; o++) {
    for (let p = 0; p < rows.parts; p++) {
      for (let j = 0; j < rows.local; j++) {
        const row = r * rows.local + j;
        if (row >= rows.size) break; // padding rows stay zero
        fn((o * dim + p * rows.size + row) * inner, (o * shardDim + p * rows.local + j) * inner, inner);
      }
    }
  }
}

/** Rank r's shard of a full tensor. */
export function tpSplitTensor<A extends FloatArray>(name: string, full: A, shape: readonly number[], split: TpSplit, tp: number, r: number): A {
  if (split.kind === 'replicated' || tp === 1) return full.slice() as A;
  const rows = partRows(name, shape, split, tp);
  const out = allocFloat(floatDTypeOf(full), prod(tpShardShape(name, shape, split, tp))) as A;
  eachRow(shape, split, tp, r, rows, (f, s, n) => out.set(full.subarray(f, f + n), s));
  return out;
}

/** For each element of rank r's shard, its flat index in the full tensor (-1: a padding row);
 *  the engine's shard map (engine/mesh/tp-shard.ts) is this over every parameter. */
export function tpShardIndex(name: string, shape: readonly number[], split: TpSplit, tp: number, r: number): Int32Array {
  const out = new Int32Array(prod(tpShardShape(name, shape, split, tp))).fill(-1);
  if (split.kind === 'replicated' || tp === 1) return out.map((_, i) => i);
  eachRow(shape, split, tp, r, partRows(name, shape, split, tp), (f, s, n) => {
    for (let i = 0; i < n; i++) out[s + i] = f + i;
  });
  return out;
}

/** The full tensor from every tp rank's shard (in rank order); the inverse of tpSplitTensor. */
export function tpJoinTensor<A extends FloatArray>(name: string, shards: readonly A[], shape: readonly number[], split: TpSplit): A {
  const tp = shards.length;
  if (split.kind === 'replicated' || tp === 1) return shards[0]!.slice() as A;
  const rows = partRows(name, shape, split, tp);
  const out = allocFloat(floatDTypeOf(shards[0]!), prod(shape)) as A;
  shards.forEach((shard, r) => eachRow(shape, split, tp, r, rows, (f, s, n) => out.set(shard.subarray(s, s + n), f)));
  return out;
}

/** A split read from JSON, checked field by field (the manifest is input). */
export function parseTpSplit(x: unknown, where: string): TpSplit {
  const o = x as Record<string, unknown>;
  if (typeof o !== 'object' || o === null) throw new Error(`${where}: tp split must be an object, got ${JSON.stringify(x)}`);
  if (o.kind === 'replicated') return { kind: 'replicated' };
  if (o.kind !== 'column' && o.kind !== 'row' && o.kind !== 'vocab') throw new Error(`${where}: tp split kind must be column, row, vocab or replicated, got ${JSON.stringify(o.kind)}`);
  if (!Number.isInteger(o.axis)) throw new Error(`${where}: tp split axis must be an integer, got ${JSON.stringify(o.axis)}`);
  if (o.parts !== undefined && !(Number.isInteger(o.parts) && (o.parts as number) >= 1)) throw new Error(`${where}: tp split parts must be a positive integer, got ${JSON.stringify(o.parts)}`);
  return { kind: o.kind, axis: o.axis as number, ...(o.parts !== undefined ? { parts: o.parts as number } : {}) };
}
