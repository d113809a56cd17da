// Random-window batching as in nanoGPT's get_batch: each row starts at a uniformly drawn offset
// i in [0, N - blockSize), x = tokens[i, i + blockSize), y = the same window shifted by one.
// All randomness comes from one seeded Rng whose state is saved in checkpoints, so a resumed
// run draws exactly the batches the uninterrupted run would have drawn.
//
// Data parallelism: every rank holds the same seed and draws all offsets of the global batch
// (cheap: one number per row), so the ranks' generators stay in lockstep, and then gathers
// only its own contiguous rows. N ranks together see exactly the batch one process would.

import type { Rng, RngState } from '../tensor/rng.js';

export interface Batch {
  /** Input ids, row-major [rows, blockSize]. */
  x: Int32Array;
  /** Target ids, x shifted by one token. */
  y: Int32Array;
  rows: number;
  blockSize: number;
}

export class BatchSampler {
  constructor(
    private readonly tokens: ArrayLike<number>,
    readonly blockSize: number,
    readonly batchSize: number,
    private readonly rng: Rng,
    /** Optional allowed window starts (e.g. just after each newline, so every window begins at a
     * record boundary); by default any offset. */
    private readonly starts?: Int32Array,
  ) {
    if (starts) {
      this.starts = starts.filter((s) => s >= 0 && s + blockSize < tokens.length);
      if (this.starts.length === 0) throw new Error(`no allowed window start leaves room for block size ${blockSize} in ${tokens.length} tokens`);
    }
    if (!Number.isInteger(blockSize) || blockSize < 1) throw new Error(`block size must be a positive integer, got ${blockSize}`);
    if (!Number.isInteger(batchSize) || batchSize < 1) throw new Error(`batch size must be a positive integer, got ${batchSize}`);
    if (blockSize + 1 > tokens.length) {
      throw new Error(`block size ${blockSize} is larger than the data (${tokens.length} tokens); use a smaller --block-size or more data`);
    }
  }

  /** Draws the start offsets of the next batch (advances the generator by batchSize draws). */
  drawOffsets(): Int32Array {
    const offsets = new Int32Array(this.batchSize);
    const starts = this.starts;
    const range = starts ? starts.length : this.tokens.length - this.blockSize;
    for (let r = 0; r < this.batchSize; r++) {
      const k = this.rng.int(range);
      offsets[r] = starts ? starts[k]! : k;
    }
    return offsets;
  }

  /** Builds rows [rowStart, rowEnd) of the batch with the given offsets. */
  gather(offsets: Int32Array, rowStart = 0, rowEnd = offsets.length): Batch {
    const t = this.blockSize;
    const rows = rowEnd - rowStart;
    const x = new Int32Array(rows * t);
    const y = new Int32Array(rows * t);
    const tokens = this.tokens;
    for (let r = 0; r < rows; r++) {
      const start = offsets[rowStart + r]!;
      const base = r * t;
      for (let j = 0; j < t; j++) {
        x[base + j] = tokens[start + j]!;
        y[base + j] = tokens[start + j + 1]!;
      }
    }
    return { x, y, rows, blockSize: t };
  }

  next(): Batch {
    return this.gather(this.drawOffsets());
  }

  getState(): RngState {
    return this.rng.getState();
  }

  setState(state: RngState): void {
    this.rng.setState(state);
  }
}

/** Offsets just after every occurrence of `token` (plus 0): window starts at record boundaries. */
export function startsAfter(tokens: ArrayLike<number>, token: number): Int32Array {
  const out = [0];
  for (let i = 0; i < tokens.length; i++) if (tokens[i] === token) out.push(i + 1);
  return Int32Array.from(out);
}

/** Rows [start, end) of the global batch that `rank` of `worldSize` trains on. */
export function rankRows(globalBatchSize: number, rank: number, worldSize: number): { start: number; end: number } {
  if (!Number.isInteger(worldSize) || worldSize < 1) throw new Error(`world size must be a positive integer, got ${worldSize}`);
  if (!Number.isInteger(rank) || rank < 0 || rank >= worldSize) throw new Error(`rank must be an integer in [0, ${worldSize}), got ${rank}`);
  if (globalBatchSize % worldSize !== 0) {
    throw new Error(`global batch size ${globalBatchSize} is not divisible by the world size ${worldSize}; choose a batch size that is a multiple of the number of ranks`);
  }
  const per = globalBatchSize / worldSize;
  return { start: rank * per, end: (rank + 1) * per };
}

/** Rank r's micro-batch: its contiguous rows of a global batch (views, no copy). */
export function sliceMicroBatch(batch: Batch, rank: number, worldSize: number): Batch {
  const { start, end } = rankRows(batch.rows, rank, worldSize);
  const t = batch.blockSize;
  return { x: batch.x.subarray(start * t, end * t), y: batch.y.subarray(start * t, end * t), rows: end - start, blockSize: t };
}

/** One rank's view of a data-parallel batch stream; every rank must use the same seed. */
export class ShardedBatchSampler {
  private readonly inner: BatchSampler;
  private readonly rows: { start: number; end: number };

  constructor(tokens: ArrayLike<number>, blockSize: number, globalBatchSize: number, readonly rank: number, readonly worldSize: number, rng: Rng, starts?: Int32Array) {
    this.rows = rankRows(globalBatchSize, rank, worldSize);
    this.inner = new BatchSampler(tokens, blockSize, globalBatchSize, rng, starts);
  }

  /** The whole global batch (what a single process with the same seed would draw). */
  nextGlobal(): Batch {
    return this.inner.next();
  }

  /** Only this rank's rows of the next global batch; costs the same generator draws. */
  next(): Batch {
    return this.inner.gather(this.inner.drawOffsets(), this.rows.start, this.rows.end);
  }

  getState(): RngState {
    return this.inner.getState();
  }

  setState(state: RngState): void {
    this.inner.setState(state);
  }
}
