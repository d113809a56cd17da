// Megatron-LM's tensor-parallel layers (Shoeybi et al. 2019), each holding this rank's shard:
// a column-parallel linear keeps a range of output features, a row-parallel linear a range of
// input features (its partial products are summed over the group, then the bias is added
// once), a vocabulary-parallel embedding a range of token rows, and the vocabulary-parallel
// cross-entropy takes the local logits [B, T, V/tp] and never gathers the full ones. With
// sequence parallelism (Korthikanti et al. 2022) the residual stream between these layers is
// split along the sequence (axis 1): entering gathers it, leaving reduce-scatters it.
// With a group of one every collective is the identity, so these are plain layers then.
import type { Tensor } from '../tensor/tensor.js';
import { constant } from '../tensor/tensor.js';
import { hostValue } from '../ir/value.js';
import { oneHot, type MaskBlock } from '../tensor/functional.js';
import { copyToParallel, gatherFromSequenceParallel, maxOverParallel, reduceFromParallel, scatterToSequenceParallel, type ParallelAxis } from '../tensor/collective.js';
import { Embedding, Linear } from './layers.js';

/** How a model is split: the tensor-parallel axis, and whether the sequence is split too. */
export interface TensorParallelism {
  axis: ParallelAxis;
  sequence: boolean;
}

/** The sequence axis of the residual stream [B, T, C]. */
const SEQ = 1;

/** Where a residual-stream tensor x [B, T/tp, C] lies in the full [B, T, C] under sequence
 * parallelism (for its dropout mask); undefined when the sequence is whole. */
export function sequenceBlock(x: Tensor, tp: TensorParallelism | undefined): MaskBlock | undefined {
  if (!tp?.sequence || tp.axis.size === 1) return undefined;
  const [b, t, c] = x.shape as [number, number, number];
  return { global: [b, t * tp.axis.size, c], offset: [0, tp.axis.rank * t, 0] };
}

/** Enters a tensor-parallel region: copy (f) or, with sequence parallelism, all-gather the sequence. */
export function enterParallel(x: Tensor, tp: TensorParallelism): Tensor {
  return tp.sequence ? gatherFromSequenceParallel(x, tp.axis, SEQ) : copyToParallel(x, tp.axis);
}

/** Leaves it: all-reduce the partial sums (g) or, with sequence parallelism, reduce-scatter them. */
export function leaveParallel(x: Tensor, tp: TensorParallelism): Tensor {
  return tp.sequence ? scatterToSequenceParallel(x, tp.axis, SEQ) : reduceFromParallel(x, tp.axis);
}

/** `n` features split evenly over the group, or an error with the arithmetic. */
export function shardSize(n: number, tp: TensorParallelism, what: string): number {
  const t = tp.axis.size;
  if (n % t !== 0) throw new RangeError(`${what}: ${n} does not divide by tensor-model-parallel size ${t} (${n} % ${t} = ${n % t}); choose a size dividing it`);
  return n / t;
}

/** A vocabulary padded up to a multiple of the group size (Megatron pads the same way). */
export function paddedVocab(vocab: number, size: number): number {
  return Math.ceil(vocab / size) * size;
}

/**
 * Y = X A with A's output features split: this rank holds outFeatures / tp of them. forward
 * enters the parallel region itself; forwardEntered takes an input that already did (several
 * projections of one input, like q, k, v, share one entering collective).
 */
export class ColumnParallelLinear extends Linear {
  constructor(inFeatures: number, outFeatures: number, readonly tp: TensorParallelism, opts: { bias?: boolean; std?: number; outIn?: boolean } = {}) {
    super(inFeatures, shardSize(outFeatures, tp, `output features of a column-parallel linear (${inFeatures} -> ${outFeatures})`), opts);
  }

  override forward(x: Tensor, key?: Tensor): Tensor {
    return super.forward(enterParallel(x, this.tp), key);
  }

  forwardEntered(x: Tensor, key?: Tensor): Tensor {
    return super.forward(x, key);
  }
}

/**
 * Y = X A + b with A's input features split: this rank's partial product is summed over the
 * group (or reduce-scattered along the sequence), then the full, replicated bias is added once.
 */
export class RowParallelLinear extends Linear {
  constructor(inFeatures: number, outFeatures: number, readonly tp: TensorParallelism, opts: { bias?: boolean; std?: number; outIn?: boolean } = {}) {
    super(shardSize(inFeatures, tp, `input features of a row-parallel linear (${inFeatures} -> ${outFeatures})`), outFeatures, opts);
  }

  override forward(x: Tensor, key?: Tensor): Tensor {
    const w = this.weight.value;
    let y = leaveParallel(x.matmul(this.weightLayout === 'out,in' ? w.transpose(0, 1) : w), this.tp);
    if (this.bias) y = y.add(this.bias.value);
    return this.adapter ? y.add(this.adapter.forward(x, key)) : y;
  }
}

/**
 * Token embedding with the vocabulary split in ranges of paddedVocab / tp rows. Ids outside
 * this rank's range read row 0 and are zeroed; the sum over the group is the full lookup.
 */
export class VocabParallelEmbedding extends Embedding {
  /** First token id of this rank's rows. */
  readonly start: number;

  constructor(readonly vocab: number, dim: number, readonly tp: TensorParallelism, opts: { std?: number; decay?: boolean } = {}) {
    const rows = paddedVocab(vocab, tp.axis.size) / tp.axis.size;
    super(rows, dim, opts);
    this.start = tp.axis.rank * rows;
  }

  override forward(indices: Tensor): Tensor {
    if (this.tp.axis.size === 1) return super.forward(indices);
    const local = indices.sub(this.start);
    const safe = local.maximum(0).minimum(this.count - 1);
    const found = super.forward(safe);
    const mine = local.eq(safe).cast(found.dtype);
    const rows = found.mul(mine.reshape([...mine.shape, 1]));
    return leaveParallel(rows, this.tp);
  }

  /** Logits of this rank's vocabulary range for entered hidden states h (a tied head). */
  logits(h: Tensor): Tensor {
    return vocabLogits(h, this.weight.value, this.start, this.vocab);
  }
}

/**
 * h [.., C] times this rank's vocabulary rows weight [rows, C], starting at id `start`: the
 * logits [.., rows]. Rows at or past `vocab` are padding; their logits are pushed to -1e9 so
 * the softmax never picks them (their weights then get no gradient and stay zero).
 */
export function vocabLogits(h: Tensor, weight: Tensor, start: number, vocab: number): Tensor {
  const rows = weight.shape[0]!;
  const y = h.matmul(weight.transpose(0, 1));
  const pad = start + rows - vocab;
  if (pad <= 0) return y;
  const bias = new Array<number>(rows).fill(0);
  bias.fill(-1e9, Math.max(0, rows - pad));
  return y.add(constant(hostValue(y.dtype, [rows], bias), h.graph));
}

/**
 * Mean cross-entropy of vocabulary-parallel logits [..., V/tp] (this rank's ids start at
 * `start`) against global targets [...]; targets equal to ignoreIndex are not counted. The
 * max is taken over the group without gradient (it only shifts), the sum of exponentials and
 * the target's logit are summed over the group (g), so the full logits are never gathered.
 */
export function vocabParallelCrossEntropy(logits: Tensor, targets: Tensor, start: number, axis: ParallelAxis, ignoreIndex = -1): Tensor {
  const v = logits.shape[logits.rank - 1]!;
  const shift = maxOverParallel(logits.max(-1, true).stopGradient(), axis);
  const z = logits.sub(shift);
  const sumExp = reduceFromParallel(z.exp().sum(-1), axis);
  // Ids outside [start, start + v) give an all-zero one-hot row: the target lives elsewhere.
  const picked = reduceFromParallel(z.mul(oneHot(targets.sub(start), v, z.dtype)).sum(-1), axis);
  const valid = targets.eq(ignoreIndex).cast(logits.dtype).neg().add(1);
  const count = valid.sum().maximum(1);
  return sumExp.log().sub(picked).mul(valid).sum().div(count);
}
