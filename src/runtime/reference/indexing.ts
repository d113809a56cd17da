// Index arithmetic for the reference interpreter: offset tables that map each output element
// to the input element it reads. Clear rather than fast: the reference is for tests.
import { type Shape, numel, stridesOf } from '../../ir/shape.js';

/** For every element of outShape (row-major), the offset of the element of inShape it reads under broadcasting. */
export function broadcastOffsets(inShape: Shape, outShape: Shape): Int32Array {
  const n = numel(outShape);
  const out = new Int32Array(n);
  const rank = outShape.length;
  const inStrides = stridesOf(inShape);
  const eff = outShape.map((_, i) => {
    const j = i - (rank - inShape.length);
    return j < 0 || inShape[j] === 1 ? 0 : inStrides[j]!;
  });
  const idx = new Array<number>(rank).fill(0);
  let off = 0;
  for (let e = 0; e < n; e++) {
    out[e] = off;
    for (let d = rank - 1; d >= 0; d--) {
      idx[d]!++;
      off += eff[d]!;
      if (idx[d]! < outShape[d]!) break;
      off -= eff[d]! * outShape[d]!;
      idx[d] = 0;
    }
  }
  return out;
}

/** Calls fn(outIndex, multiIndex) for every element of shape in row-major order. */
export function forEachIndex(shape: Shape, fn: (flat: number, idx: number[]) => void): void {
  const n = numel(shape);
  const idx = new Array<number>(shape.length).fill(0);
  for (let e = 0; e < n; e++) {
    fn(e, idx);
    for (let d = shape.length - 1; d >= 0; d--) {
      if (++idx[d]! < shape[d]!) break;
      idx[d] = 0;
    }
  }
}

export function flatIndex(idx: readonly number[], strides: readonly number[]): number {
  let o = 0;
  for (let i = 0; i < idx.length; i++) o += idx[i]! * strides[i]!;
  return o;
}
