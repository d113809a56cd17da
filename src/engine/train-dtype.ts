// The training dtype (atscale train --dtype): float32, the default, or float64 for exactness
// checks (a mesh layout against one process agrees to ~1e-16 relative instead of float32's
// ~1e-7, so checkpoints can be compared at 1e-6). A checkpoint records its dtype, and a run
// resumes only in the dtype it was saved in: converting silently would change the numbers
// that an exactness check is about.
import type { TrainDType } from '../ir/dtype.js';

/** The safetensors dtype of a training dtype's tensors. */
export function safetensorsDType(d: TrainDType): 'F32' | 'F64' {
  return d === 'float64' ? 'F64' : 'F32';
}

/** The checkpoint meta entry that records the dtype. */
export function checkpointDType(d: TrainDType): { dtype: TrainDType } {
  return { dtype: d };
}

/** The dtype a checkpoint's meta records (checkpoints from before --dtype are float32). */
export function recordedDType(meta: Record<string, unknown>): TrainDType {
  return meta.dtype === 'float64' ? 'float64' : 'float32';
}

/** Refuses to resume a checkpoint saved in the other dtype, naming --dtype. */
export function checkStateDType(dir: string, meta: Record<string, unknown>, want: TrainDType): void {
  const have = recordedDType(meta);
  if (have !== want) throw new Error(`checkpoint ${dir} was trained with --dtype ${have}, but this run uses --dtype ${want}; resume it with --dtype ${have} (a run does not change its dtype on resume)`);
}

/** Refuses float64 on a path that does not carry it, before any work. */
export function refuseFloat64(d: TrainDType | undefined, what: string): void {
  if (d === 'float64') throw new Error(`--dtype float64 is not supported with ${what}; float64 covers one process and the pipeline/tensor-parallel mesh (tp, pp, sp, recompute, ZeRO-1 over dp); use --dtype float32 here`);
}
