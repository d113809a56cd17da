// A stored tensor read as float32 by what its header declares: F16 and BF16 are converted
// from their bit patterns (never reinterpreted as numbers), F64 is narrowed, and integer or
// boolean tensors are refused for float parameters (their bits would load as garbage weights).
import { bf16BitsToFloat32, f16BitsToFloat32 } from './half.js';
import type { TensorEntry } from './safetensors.js';

/** `source` names the file and `name` the tensor in the error. */
export function floatTensor(t: TensorEntry, name: string, source: string): Float32Array {
  switch (t.dtype) {
    case 'F32':
      return t.data as Float32Array;
    case 'F16':
      return f16BitsToFloat32(t.data as Uint16Array);
    case 'BF16':
      return bf16BitsToFloat32(t.data as Uint16Array);
    case 'F64':
      return Float32Array.from(t.data as Float64Array);
    default:
      throw new Error(`${source}: tensor "${name}" has dtype ${t.dtype}, but it is a float parameter; only F32, F16, BF16 or F64 tensors can be loaded into it (was the file written for another model?)`);
  }
}

/** The same entry with float32 data (shape kept), for loaders that take state dicts. */
export function asFloatEntry(t: TensorEntry, name: string, source: string): { shape: number[]; data: Float32Array } {
  return { shape: t.shape, data: floatTensor(t, name, source) };
}
