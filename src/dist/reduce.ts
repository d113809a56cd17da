// Elementwise reductions on float buffers (float32, or float64 for --dtype float64 runs): tight loops, no allocation, unrolled by 4 so V8
// keeps the loop body in registers. These run on every received segment, so their speed is
// measured by `npm run bench -- collectives` (the "reduce GB/s" line).
import type { FloatArray } from '../ir/dtype.js';

export type ReduceOp = 'sum' | 'max' | 'avg';
export type ReduceFn = (dst: FloatArray, src: FloatArray) => void;

export function sumInto(dst: FloatArray, src: FloatArray): void {
  const n = dst.length;
  const n4 = n - (n % 4);
  let i = 0;
  for (; i < n4; i += 4) {
    dst[i] = dst[i]! + src[i]!;
    dst[i + 1] = dst[i + 1]! + src[i + 1]!;
    dst[i + 2] = dst[i + 2]! + src[i + 2]!;
    dst[i + 3] = dst[i + 3]! + src[i + 3]!;
  }
  for (; i < n; i++) dst[i] = dst[i]! + src[i]!;
}

/** Max that propagates NaN, like torch. */
export function maxInto(dst: FloatArray, src: FloatArray): void {
  const n = dst.length;
  for (let i = 0; i < n; i++) {
    const s = src[i]!;
    if (s > dst[i]! || s !== s) dst[i] = s;
  }
}

/** 'avg' reduces by sum; the division by the group size happens once at the end. */
export function reducerFor(op: ReduceOp): ReduceFn {
  switch (op) {
    case 'sum':
    case 'avg':
      return sumInto;
    case 'max':
      return maxInto;
    default:
      throw new RangeError(`unknown reduce op '${String(op)}': use 'sum', 'max' or 'avg'`);
  }
}
