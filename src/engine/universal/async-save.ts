// Asynchronous universal saves, in three phases (the shape of DeepSpeed's and
// torch.distributed.checkpoint's async saves):
//   1. snapshot (collective, at a step boundary): every rank copies the pieces it owns into
//      host buffers of its own and hands them to the writer thread; training goes on at once;
//   2. write (background): the thread writes the rank's shard file and, last, its part record
//      (size and sha256 of the shard, hashed while writing) into the save's staging directory;
//   3. finalize (collective, at a later step boundary: the first one at which every rank's
//      write has finished, the next save, or the end of training): the ranks agree that every
//      shard landed, rank 0 checks each record against its file and commits the manifest
//      (finalizeUniversal: DIR -> DIR.prev, staging -> DIR), and only then is the save published.
// Until the manifest is renamed in, the previous checkpoint stays the newest complete one, so a
// rank killed mid-write loses only the steps since that one; its staging directory is removed
// by the next save that commits.
import type { FloatArray } from '../../ir/dtype.js';
import type { ProcessGroup } from '../../dist/index.js';
import { finalizeUniversal, type AsyncCheckpointWriter, type OwnedPiece } from '../../checkpoint/index.js';
import { together, type UniversalSave } from './state.js';

/** Copies the pieces' three states into one buffer from `alloc` (views into it, same order). */
export function snapshotPieces(pieces: readonly OwnedPiece[], alloc: (bytes: number) => ArrayBuffer): OwnedPiece[] {
  const total = pieces.reduce((n, p) => n + 3 * (p.end - p.start), 0);
  // In the training dtype (float64 runs hold Float64Array pieces).
  const wide = pieces.some((p) => p.param instanceof Float64Array);
  const buf: FloatArray = wide ? new Float64Array(alloc(total * 8), 0, total) : new Float32Array(alloc(total * 4), 0, total);
  let at = 0;
  const copy = (src: FloatArray): FloatArray => {
    const dst = buf.subarray(at, at + src.length);
    dst.set(src);
    at += src.length;
    return dst;
  };
  return pieces.map((p) => ({ ...p, param: copy(p.param), expAvg: copy(p.expAvg), expAvgSq: copy(p.expAvgSq) }));
}

interface Pending {
  group: ProcessGroup;
  save: UniversalSave;
  /** Settles (never rejects) when this rank's write has finished or failed. */
  written: Promise<void>;
  state: 'writing' | 'written' | 'failed';
  error?: Error;
  onPublished: () => void;
}

/** The saves of one training run: at most one in flight, published strictly in order. */
export class AsyncUniversalSaves {
  private pending: Pending | undefined;
  private readonly alloc: (bytes: number) => ArrayBuffer;
  /** Seconds the last start() spent copying this rank's pieces (the snapshot). */
  lastSnapshotS = 0;

  /** `alloc`: where snapshots are copied (default: buffers the writer gave back, else new ones). */
  constructor(private readonly writer: AsyncCheckpointWriter, opts: { alloc?: (bytes: number) => ArrayBuffer } = {}) {
    this.alloc = opts.alloc ?? ((bytes) => writer.takeBuffer(bytes));
  }

  /** Whether a save is written but not yet published (every rank agrees on this). */
  get inFlight(): boolean {
    return this.pending !== undefined;
  }

  /** Phase 1 (collective): publishes the save still in flight first, then snapshots this
   *  rank's pieces and starts writing them; `onPublished` runs once the manifest is in. */
  async start(group: ProcessGroup, save: UniversalSave, onPublished: () => void): Promise<void> {
    await this.finish();
    const t0 = performance.now();
    const pieces = snapshotPieces(save.pieces, this.alloc);
    this.lastSnapshotS = (performance.now() - t0) / 1000;
    const job = { writer: 'universal-shard' as const, dir: save.dir, part: { run: save.ids.run, save: save.ids.save, coords: save.coords, pieces, tensors: save.tensors } };
    const p: Pending = { group, save: { ...save, pieces: [] }, written: Promise.resolve(), state: 'writing', onPublished };
    try {
      const { published } = await this.writer.submitJob(job);
      p.written = published.then(
        () => void (p.state = 'written'),
        (e: Error) => void ((p.state = 'failed'), (p.error = e)),
      );
    } catch (e) {
      // The writer could not take the job (its thread died): counted as this rank's failure.
      p.state = 'failed';
      p.error = e as Error;
    }
    this.pending = p;
  }

  /** At a step boundary (collective while inFlight): publishes the save if every rank's shard
   *  is on disk, else leaves it for a later boundary; returns whether nothing is in flight. */
  poll(): Promise<boolean> {
    return this.settle(false);
  }

  /** Waits for this rank's write, then publishes (collective; nothing to do when none is in flight). */
  async finish(): Promise<void> {
    await this.settle(true);
  }

  private async settle(wait: boolean): Promise<boolean> {
    const p = this.pending;
    if (!p) return true;
    if (wait) await p.written;
    // One small all-reduce: per rank, whether its write is still running and whether it failed.
    const { rank, worldSize } = p.group;
    const flags = new Float32Array(2 * worldSize);
    if (p.state === 'writing') flags[rank] = 1;
    if (p.state === 'failed') flags[worldSize + rank] = 1;
    await p.group.allReduce(flags);
    const failed = [...flags.subarray(worldSize)].flatMap((f, r) => (f ? [r] : []));
    if (failed.length) {
      this.pending = undefined;
      if (p.error) throw p.error;
      throw new Error(`rank(s) ${failed.join(', ')} could not write their shard of checkpoint ${p.save.dir} (see their error); the previous checkpoint is kept, stopping every rank`);
    }
    if (flags.subarray(0, worldSize).some((f) => f > 0)) return false;
    this.pending = undefined;
    const s = p.save;
    await together(p.group, 'commit the checkpoint manifest', () => {
      if (rank === 0) finalizeUniversal(s.dir, { layout: s.layout, run: s.ids.run, save: s.ids.save, order: s.order, meta: s.meta, files: s.files });
    });
    p.onPublished();
    return true;
  }
}
