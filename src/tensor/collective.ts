// The collectives a model records for tensor and sequence parallelism (Megatron-LM's
// conjugate pairs). Each records one 'collective' node (ir/ops.ts) naming its mesh axis; the
// engine binds the axis to a process group when it runs the program. With a group of one
// rank every function returns its input unchanged, so a model written with them traces the
// same graph as before on one process.
import type { Tensor } from './tensor.js';

/** A mesh axis as the model sees it: its name ('tp'), its size and this rank's place on it. */
export interface ParallelAxis {
  name: string;
  size: number;
  rank: number;
}

function collective(x: Tensor, axis: ParallelAxis, kind: string, bwd: string, dim = -1): Tensor {
  if (axis.size === 1) return x;
  const d = dim < 0 ? dim + x.rank : dim;
  return x.op('collective', [], { group: axis.name, parts: axis.size, kind, bwd, dim: d });
}

/** Megatron's f: identity forward, all-reduce of the gradient backward (enters a tensor-parallel region). */
export function copyToParallel(x: Tensor, axis: ParallelAxis): Tensor {
  return collective(x, axis, 'identity', 'all_reduce_sum');
}

/** Megatron's g: all-reduce (sum) forward, identity backward (leaves a row-parallel layer). */
export function reduceFromParallel(x: Tensor, axis: ParallelAxis): Tensor {
  return collective(x, axis, 'all_reduce_sum', 'identity');
}

/** Elementwise max over the group, with no gradient (the shift of a vocabulary-parallel softmax). */
export function maxOverParallel(x: Tensor, axis: ParallelAxis): Tensor {
  return collective(x, axis, 'all_reduce_max', 'none');
}

/** Sequence parallelism's g-bar: all-gather along `dim` forward, reduce-scatter backward. */
export function gatherFromSequenceParallel(x: Tensor, axis: ParallelAxis, dim: number): Tensor {
  return collective(x, axis, 'all_gather', 'reduce_scatter', dim);
}

/** Sequence parallelism's g: reduce-scatter along `dim` forward, all-gather backward. */
export function scatterToSequenceParallel(x: Tensor, axis: ParallelAxis, dim: number): Tensor {
  return collective(x, axis, 'reduce_scatter', 'all_gather', dim);
}
