// The model interface: everything the engine, generation, export and serving ask of a
// decoder-only language model. Code above models/ talks to this, never to a concrete
// architecture (GPT, Llama), so a new family only has to implement it here.
import type { Tensor } from '../tensor/tensor.js';
import type { Module } from '../nn/module.js';
import type { TensorParallelism } from '../nn/tensor-parallel.js';
import type { TpSplit } from '../checkpoint/index.js';

/** Architecture-independent sizes (what the engine, the KV cache and the planner read). */
export interface ModelDims {
  nLayer: number;
  /** Hidden size (d_model). */
  nEmbd: number;
  /** Query heads. */
  nHead: number;
  /** Key/value heads (= nHead without grouped-query attention). */
  nKvHead: number;
  headDim: number;
  /** Longest sequence the model accepts (positions in the KV cache). */
  blockSize: number;
  vocabSize: number;
  dropout: number;
}

/** Keys and values of one layer in a KV cache: each [B, nKvHead, blockSize, headDim]. */
export interface LayerCache {
  k: Tensor;
  v: Tensor;
}

export interface DecodeResult {
  logits: Tensor;
  caches: LayerCache[];
  fresh: LayerCache[];
}

/** One transformer block as a function of the residual stream [B, T, C]. */
export interface ModelBlock {
  forward(x: Tensor, key?: Tensor): Tensor;
}

/**
 * The model's parameters as contiguous units of the flat layout, by dotted name prefix
 * (without the trailing dot). `embed`, then `blocks` (one per layer), then the `head` units
 * not already in `embed` tile the layout in order. A tied head lists the embedding unit in
 * both `embed` and `head`; its gradient is the sum of both uses.
 */
export interface ModelUnits {
  embed: string[];
  blocks: string[];
  head: string[];
}

/**
 * How one parameter is split under Megatron-style tensor parallelism (the type and its
 * arithmetic live in checkpoint/tp-split.ts, which universal checkpoints share):
 * - column: output features split (weight rows in [out, in] layout; heads for q/k/v);
 * - row: input features split (the following all-reduce sums the partial products);
 * - vocab: embedding rows (and a tied head) split by vocabulary range;
 * - replicated: every rank holds all of it (norms, row-parallel biases).
 * `axis` is the axis of the stored tensor that is split; `parts` (default 1) says that axis is
 * that many equal blocks split separately (a fused [q | k | v] projection: 3; a rank takes its
 * heads from each third).
 */
export type { TpSplit };

export interface LanguageModel extends Module {
  /** The serialised family name (Hugging Face model_type); only models/ branches on it. */
  readonly family: string;
  readonly dims: ModelDims;
  readonly blocks: readonly ModelBlock[];
  /** A JSON-serialisable record from which the same architecture is rebuilt. */
  architecture(): Record<string, unknown>;

  /** Token (and position) embeddings for idx [B, T] int32: [B, T, C]. */
  embed(idx: Tensor, key?: Tensor): Tensor;
  /** Final norm and LM head: [B, T, C] -> logits [B, T, V]. */
  head(x: Tensor): Tensor;
  /** Logits [B, T, V] for idx [B, T]; `key` (int64 scalar) enables dropout. */
  forward(idx: Tensor, key?: Tensor): Tensor;
  /** Mean next-token cross-entropy; targets of -1 are ignored. */
  loss(idx: Tensor, targets: Tensor, key?: Tensor): Tensor;
  /** The same loss from the last block's output x [B, T, C] (the head segment of a pipeline). */
  headLoss(x: Tensor, targets: Tensor): Tensor;
  /**
   * Incremental decoding against fixed-size caches: tokens [B, S] int32 at positions
   * start[b] .. start[b]+S-1 (start: [B] int64). Writes their keys/values into the caches and
   * attends causally to everything at or before each position. S = 1 is one decode step;
   * S > 1 is (chunked) prefill. Queries read the caches only before start[b] (and the chunk
   * itself), so rows at and past start may hold anything. Returns logits [B, S, V], the updated
   * caches, and `fresh`: only the chunk's keys/values [B, nKvHead, S, headDim] per layer, for
   * callers that keep the caches outside the graph and write these rows in place.
   */
  decode(tokens: Tensor, start: Tensor, caches: readonly LayerCache[]): DecodeResult;

  units(): ModelUnits;
  /** Tensor-parallel split of a parameter, by its full dotted name. */
  tensorParallelSplit(name: string): TpSplit;
  /** Set on one tensor-parallel rank's shard (tensorParallelShard); absent on a whole model. */
  readonly tp?: TensorParallelism;
  /**
   * The same architecture as one tensor-parallel rank's shard (same parameter names, local
   * shapes; head() gives this rank's vocabulary range, headLoss the vocabulary-parallel loss).
   * Absent where a model cannot be split (e.g. LoRA adapters on frozen weights).
   */
  tensorParallelShard?(tp: TensorParallelism): LanguageModel;
  /** Parameters (tied weights counted once). */
  paramCount(): number;
  /** Training FLOPs per token at sequence length `seq` (forward + backward). */
  flopsPerToken(seq?: number): number;
}

/** Shape of one layer's K (or V) cache for a batch of `batch` sequences. */
export function cacheShape(dims: ModelDims, batch: number): number[] {
  return [batch, dims.nKvHead, dims.blockSize, dims.headDim];
}
