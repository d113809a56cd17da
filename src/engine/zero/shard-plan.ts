// Who owns which part of the flat buffer. The buffer is cut into *pieces* (whole parameters,
// grouped up to a bucket size, never crossing a unit boundary); every piece is split among the
// ranks with chunkRange, exactly as ProcessGroup.reduceScatter/allGather split a buffer, so
// one collective per piece moves a rank's part straight into place. A rank's shard is its
// chunks of all pieces, concatenated in piece order: optimizer state, gradient and (stage 3)
// parameter shards are laid out that way.
import { chunkRange } from '../../dist/index.js';
import type { FlatLayout } from '../../nn/flat.js';
import type { Unit } from '../segments.js';

export interface Piece {
  /** Range of the flat buffer. */
  offset: number;
  size: number;
  /** This rank's part of the piece: flat range [chunkStart, chunkStart + chunkSize). */
  chunkStart: number;
  chunkSize: number;
  /** Where this rank's part sits in its shard buffers. */
  shardOffset: number;
}

export class ShardPlan {
  readonly pieces: Piece[];
  readonly shardSize: number;

  /**
   * `units` are the ranges no piece may cross (the segments' units, or the whole buffer);
   * `bucketElems` caps a piece unless one parameter alone is larger.
   */
  constructor(layout: FlatLayout, units: Unit[], bucketElems: number, readonly worldSize: number, readonly rank: number) {
    this.pieces = [];
    let shardOffset = 0;
    const push = (offset: number, size: number) => {
      const [a, b] = chunkRange(size, worldSize, rank);
      this.pieces.push({ offset, size, chunkStart: offset + a, chunkSize: b - a, shardOffset });
      shardOffset += b - a;
    };
    for (const u of units) {
      let start = u.offset;
      let end = u.offset;
      for (const s of layout.slots) {
        if (s.offset < u.offset || s.offset >= u.offset + u.size) continue;
        if (end > start && end - start + s.size > bucketElems) {
          push(start, end - start);
          start = end;
        }
        end = s.offset + s.size;
      }
      if (end > start) push(start, end - start);
    }
    this.shardSize = shardOffset;
  }

  /** The pieces inside flat range [offset, offset + size) (a unit). */
  piecesOf(offset: number, size: number): Piece[] {
    return this.pieces.filter((p) => p.offset >= offset && p.offset < offset + size);
  }

  /** Copies this rank's chunks of a full flat buffer into shard order. */
  gatherShard(full: Float32Array, shard: Float32Array): void {
    for (const p of this.pieces) shard.set(full.subarray(p.chunkStart, p.chunkStart + p.chunkSize), p.shardOffset);
  }
}

/** The whole buffer as one unit (stages 0 and 1 run the model as one graph). */
export function wholeBuffer(layout: FlatLayout): Unit[] {
  return [{ name: 'all', offset: 0, size: layout.size }];
}
