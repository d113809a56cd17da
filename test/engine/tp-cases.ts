// The tensor- and sequence-parallel programs of collective-programs.test.ts, shared by the test
// (which runs each on one process, axis size 1, with the full weights) and by the rank
// processes (collective-worker.ts, axis size 2, with their shards). Not a test itself.
import { Graph, type Program } from '../../src/ir/graph.js';
import { hostValue, type HostValue } from '../../src/ir/value.js';
import type { DType } from '../../src/ir/dtype.js';
import { numel } from '../../src/ir/shape.js';
import { Tensor } from '../../src/tensor/tensor.js';
import { withGraph } from '../../src/tensor/trace.js';
import { gradients } from '../../src/autodiff/grad.js';
import { gelu } from '../../src/tensor/functional.js';
import { Rng } from '../../src/tensor/rng.js';
import { copyToParallel, gatherFromSequenceParallel, maxOverParallel, reduceFromParallel, scatterToSequenceParallel, type ParallelAxis } from '../../src/tensor/collective.js';

export const B = 2;
export const T = 4;
export const C = 6;
export const H = 8;
export const V = 10;

/** A traced case: the program, its output names, and the inputs it takes. */
export interface TracedCase {
  program: Program;
  outputs: string[];
  feeds: Record<string, HostValue>;
}

function random(shape: number[], seed: number): HostValue {
  const rng = new Rng(seed);
  return hostValue('float32', shape, Array.from({ length: numel(shape) }, () => rng.normal()));
}

/** The part `index` of `parts` of a row-major value along `dim` (rank r's shard). */
export function sliceAlong(v: HostValue, dim: number, parts: number, index: number): HostValue {
  const outer = numel(v.shape.slice(0, dim));
  const len = v.shape[dim]! / parts;
  const inner = numel(v.shape.slice(dim + 1));
  const shape = [...v.shape];
  shape[dim] = len;
  const out = new Float32Array(numel(shape));
  const src = v.data as Float32Array;
  for (let o = 0; o < outer; o++) out.set(src.subarray((o * v.shape[dim]! + index * len) * inner, (o * v.shape[dim]! + (index + 1) * len) * inner), o * len * inner);
  return { dtype: v.dtype, shape, data: out };
}

function trace(inputs: Record<string, HostValue>, body: (x: Record<string, Tensor>) => { outputs: Record<string, Tensor>; loss: Tensor; wrt: string[] }): TracedCase {
  const graph = new Graph();
  return withGraph(graph, () => {
    const ins = Object.fromEntries(Object.entries(inputs).map(([k, v]) => [k, new Tensor(graph, graph.input(k, v.shape, v.dtype))]));
    const { outputs, loss, wrt } = body(ins);
    const grads = gradients(loss, wrt.map((k) => ins[k]!));
    const all = { loss, ...outputs, ...Object.fromEntries(wrt.map((k, i) => [`d_${k}`, grads[i]!])) };
    return { program: { graph, inputs: Object.values(ins).map((t) => t.id), outputs: Object.values(all).map((t) => t.id) }, outputs: Object.keys(all), feeds: inputs };
  });
}

/**
 * Megatron's MLP: f -> column-parallel W1 (its columns of rank r) -> gelu -> row-parallel W2
 * (the same rows) -> g -> + bias; loss = sum of squares. `hsum` (the sum of the hidden
 * activations, a second all-reduce of the same level) makes the engine fuse two all-reduces.
 */
export function tensorParallelMlp(axis: ParallelAxis): TracedCase {
  const w1 = random([C, H], 11);
  const w2 = random([H, C], 12);
  const feeds = { x: random([B, T, C], 10), w1: sliceAlong(w1, 1, axis.size, axis.rank), w2: sliceAlong(w2, 0, axis.size, axis.rank), b: random([C], 13) };
  return trace(feeds, (t) => {
    const h = gelu(copyToParallel(t.x!, axis).matmul(t.w1!)); // (B, T, H/tp)
    const y = reduceFromParallel(h.matmul(t.w2!), axis).add(t.b!); // (B, T, C)
    const hsum = reduceFromParallel(h.sum(), axis);
    return { outputs: { y, hsum }, loss: y.mul(y).sum(), wrt: ['x', 'w1', 'w2', 'b'] };
  });
}

/**
 * Sequence parallelism around the same MLP: each rank holds its part of the sequence (dim
 * `seqDim` of x); tanh runs on that part, all-gather feeds the column-parallel layer,
 * reduce-scatter leaves the row-parallel one, the residual adds on the part. The loss is the
 * sum over the parts (an all-reduce of the rank's partial sum).
 */
export function sequenceParallelMlp(axis: ParallelAxis, seqDim: 0 | 1, wire: DType = 'float32'): TracedCase {
  const w1 = random([C, H], 21);
  const w2 = random([H, C], 22);
  const x = random(seqDim === 1 ? [B, T, C] : [T, B, C], 20);
  const feeds = { x: sliceAlong(x, seqDim, axis.size, axis.rank), w1: sliceAlong(w1, 1, axis.size, axis.rank), w2: sliceAlong(w2, 0, axis.size, axis.rank) };
  return trace(feeds, (t) => {
    // `wire`: the dtype the activations cross the group in (float16 tests its conversion).
    const a = gatherFromSequenceParallel(t.x!.tanh().cast(wire), axis, seqDim).cast('float32'); // full sequence
    const z = gelu(a.matmul(t.w1!)).matmul(t.w2!); // partial sums over the hidden split
    const o = scatterToSequenceParallel(z.cast(wire), axis, seqDim).cast('float32').add(t.x!); // this rank's part, summed
    const loss = reduceFromParallel(o.mul(o).sum(), axis);
    return { outputs: { o }, loss, wrt: ['x', 'w1', 'w2'] };
  });
}

/** A vocabulary-parallel log-sum-exp: each rank holds V/tp columns of the logits; the shift is
 * the max over all ranks (maxOverParallel, no gradient) and the sum of exponentials is all-reduced. */
export function vocabParallelLogSumExp(axis: ParallelAxis): TracedCase {
  const logits = random([B * T, V], 30);
  const feeds = { logits: sliceAlong(logits, 1, axis.size, axis.rank) };
  return trace(feeds, (t) => {
    const m = maxOverParallel(t.logits!.max(-1, true), axis); // (B*T, 1)
    const s = reduceFromParallel(t.logits!.sub(m).exp().sum(-1, true), axis);
    const lse = s.log().add(m);
    return { outputs: { m, lse }, loss: lse.sum(), wrt: ['logits'] };
  });
}

export const CASES = {
  tp_mlp: tensorParallelMlp,
  sp_mlp_dim1: (a: ParallelAxis) => sequenceParallelMlp(a, 1),
  sp_mlp_dim0: (a: ParallelAxis) => sequenceParallelMlp(a, 0),
  sp_mlp_dim1_f16: (a: ParallelAxis) => sequenceParallelMlp(a, 1, 'float16'),
  vocab_lse: vocabParallelLogSumExp,
} as const;
