// The dtypes atscale records. float16 and bfloat16 are storage formats: values cross the
// host boundary as their 16-bit patterns (float16) or as float32 (bfloat16, which the
// onnxruntime JavaScript API cannot carry), and arithmetic happens after a cast. float64 is
// for exactness checks (training that must match another layout to ~1e-16, as PyTorch users
// run model.double()): it travels as Float64Array.

export const DTYPES = ['float32', 'float64', 'float16', 'bfloat16', 'int32', 'int64', 'bool'] as const;
export type DType = (typeof DTYPES)[number];

/** ONNX TensorProto.DataType codes. */
export const ONNX_DTYPE: Record<DType, number> = {
  float32: 1,
  float64: 11,
  float16: 10,
  bfloat16: 16,
  int32: 6,
  int64: 7,
  bool: 9,
};

export const ITEMSIZE: Record<DType, number> = { float32: 4, float64: 8, float16: 2, bfloat16: 2, int32: 4, int64: 8, bool: 1 };

export function isFloat(d: DType): boolean {
  return d === 'float32' || d === 'float64' || d === 'float16' || d === 'bfloat16';
}

export function checkDType(d: unknown, where = 'dtype'): DType {
  if (typeof d === 'string' && (DTYPES as readonly string[]).includes(d)) return d as DType;
  throw new TypeError(`unknown ${where} '${String(d)}'; valid dtypes are ${DTYPES.join(', ')}`);
}

/** The dtypes a model trains in (parameters, activations, gradients, optimizer state). */
export const TRAIN_DTYPES = ['float32', 'float64'] as const;
export type TrainDType = (typeof TRAIN_DTYPES)[number];

/** Host buffers of a training dtype. */
export type FloatArray = Float32Array | Float64Array;

/** A zeroed host buffer of n elements of a training dtype. */
export function allocFloat(dtype: TrainDType, n: number): FloatArray {
  return dtype === 'float64' ? new Float64Array(n) : new Float32Array(n);
}

/** The training dtype a host buffer holds. */
export function floatDTypeOf(a: FloatArray): TrainDType {
  return a instanceof Float64Array ? 'float64' : 'float32';
}

/** A copy of `src` in a fresh buffer of `dtype` (float64 -> float32 rounds). */
export function toFloat(dtype: TrainDType, src: ArrayLike<number>): FloatArray {
  return dtype === 'float64' ? Float64Array.from(src) : Float32Array.from(src);
}

/** Checks a --dtype value, naming the option and the valid values. */
export function checkTrainDType(d: unknown, option = '--dtype'): TrainDType {
  if (typeof d === 'string' && (TRAIN_DTYPES as readonly string[]).includes(d)) return d as TrainDType;
  throw new TypeError(`${option} must be one of ${TRAIN_DTYPES.join(', ')}, got '${String(d)}'`);
}

/** Rounds a float64 to a value representable in d: float32 to nearest-even; float16 and
 * bfloat16 via float32 (so a tie created only by the first rounding may round differently). */
export function roundTo(d: DType, x: number): number {
  switch (d) {
    case 'float32':
      return Math.fround(x);
    case 'float64':
      return x;
    case 'float16':
      return halfBitsToFloat(floatToHalfBits(x));
    case 'bfloat16':
      return bf16BitsToFloat(floatToBf16Bits(x));
    case 'int32':
    case 'int64':
      return Math.trunc(x);
    case 'bool':
      return x !== 0 ? 1 : 0;
  }
}

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

export function floatToBf16Bits(x: number): number {
  f32[0] = x;
  const bits = u32[0]!;
  if ((bits & 0x7f800000) === 0x7f800000 && (bits & 0x7fffff) !== 0) return 0x7fc0; // NaN
  const rounding = 0x7fff + ((bits >>> 16) & 1);
  return ((bits + rounding) >>> 16) & 0xffff;
}

export function bf16BitsToFloat(b: number): number {
  u32[0] = (b & 0xffff) << 16;
  return f32[0]!;
}

export function floatToHalfBits(x: number): number {
  f32[0] = x;
  const bits = u32[0]!;
  const sign = (bits >>> 16) & 0x8000;
  const exp = (bits >>> 23) & 0xff;
  let mant = bits & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0);
  let e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00; // overflow to infinity
  if (e <= 0) {
    if (e < -10) return sign; // underflow to zero
    mant |= 0x800000;
    const shift = 14 - e;
    const half = 1 << (shift - 1);
    let m = mant >>> shift;
    const rem = mant & ((1 << shift) - 1);
    if (rem > half || (rem === half && (m & 1))) m++;
    return sign | m;
  }
  let m = mant >>> 13;
  const rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && (m & 1))) {
    m++;
    if (m === 0x400) {
      m = 0;
      e++;
      if (e >= 0x1f) return sign | 0x7c00;
    }
  }
  return sign | (e << 10) | m;
}

export function halfBitsToFloat(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const e = (h >>> 10) & 0x1f;
  const m = h & 0x3ff;
  if (e === 0) return sign * m * 2 ** -24;
  if (e === 0x1f) return m ? NaN : sign * Infinity;
  return sign * (1 + m / 1024) * 2 ** (e - 15);
}
