// Concrete host values: what goes into and comes out of a compiled graph.
import { type DType, checkDType, halfBitsToFloat as halfToNumber, floatToHalfBits, roundTo } from './dtype.js';
import { type Shape, numel, shapeStr } from './shape.js';

export type HostArray = Float32Array | Float64Array | Uint16Array | Int32Array | BigInt64Array | Uint8Array;

export interface HostValue {
  dtype: DType;
  shape: number[];
  data: HostArray;
}

/** The typed array each dtype travels in. bfloat16 travels as float32 (see dtype.ts). */
export function allocHost(dtype: DType, n: number): HostArray {
  switch (dtype) {
    case 'float32':
    case 'bfloat16':
      return new Float32Array(n);
    case 'float64':
      return new Float64Array(n);
    case 'float16':
      return new Uint16Array(n);
    case 'int32':
      return new Int32Array(n);
    case 'int64':
      return new BigInt64Array(n);
    case 'bool':
      return new Uint8Array(n);
  }
}

/** A view of a training-dtype buffer as a host value (its dtype read from the array type). */
export function floatValue(data: Float32Array | Float64Array, shape: number[] = [data.length]): HostValue {
  return { dtype: data instanceof Float64Array ? 'float64' : 'float32', shape, data };
}

/** A host value; numbers are values of the dtype (a Uint16Array for float16 is taken as bits). */
export function hostValue(dtype: DType, shape: Shape, data?: ArrayLike<number> | HostArray): HostValue {
  checkDType(dtype);
  const n = numel(shape);
  if (data && data.length !== n) {
    throw new RangeError(`a ${dtype} value of shape ${shapeStr(shape)} needs ${n} elements, got ${data.length}`);
  }
  const arr = allocHost(dtype, n);
  if (data) {
    if (arr instanceof BigInt64Array) {
      for (let i = 0; i < n; i++) arr[i] = BigInt(Math.trunc(Number((data as ArrayLike<number | bigint>)[i])));
    } else if (data.constructor === arr.constructor) {
      arr.set(data as never);
    } else if (dtype === 'float16') {
      // Numbers are values: encode them (a Uint16Array, handled above, already holds bits).
      for (let i = 0; i < n; i++) arr[i] = floatToHalfBits(Number((data as ArrayLike<number | bigint>)[i]));
    } else {
      for (let i = 0; i < n; i++) (arr as Float32Array)[i] = Number((data as ArrayLike<number | bigint>)[i]);
    }
  }
  return { dtype, shape: [...shape], data: arr };
}

/** Element i as a JavaScript number (float16 decoded from its bits). */
export function toNumbers(v: HostValue): Float64Array {
  const out = new Float64Array(v.data.length);
  if (v.dtype === 'float16') {
    for (let i = 0; i < out.length; i++) out[i] = halfToNumber((v.data as Uint16Array)[i]!);
  } else if (v.data instanceof BigInt64Array) {
    for (let i = 0; i < out.length; i++) out[i] = Number(v.data[i]!);
  } else {
    for (let i = 0; i < out.length; i++) out[i] = (v.data as Float32Array)[i]!;
  }
  return out;
}

/** A host value from float64 numbers, rounded to dtype. */
export function fromNumbers(dtype: DType, shape: Shape, nums: ArrayLike<number>): HostValue {
  const v = hostValue(dtype, shape);
  const n = nums.length;
  if (dtype === 'float16') {
    for (let i = 0; i < n; i++) (v.data as Uint16Array)[i] = floatToHalfBits(nums[i]!);
  } else if (v.data instanceof BigInt64Array) {
    for (let i = 0; i < n; i++) v.data[i] = BigInt(Math.trunc(nums[i]!));
  } else {
    for (let i = 0; i < n; i++) (v.data as Float32Array)[i] = roundTo(dtype, nums[i]!);
  }
  return v;
}
