// Asynchronous checkpoints: the caller snapshots its state into host buffers it will not touch
// again (copies taken at a step boundary) and hands them over; a worker thread writes them
// while training goes on: a whole checkpoint (saveCheckpoint: staging directory, fsync, rename,
// so the last complete checkpoint is never overwritten in place), or one rank's shard of a
// universal checkpoint (writeUniversalShard; the ranks publish it together later, see
// engine/universal/async-save.ts). One write is in flight at a time: submitting the next one
// first waits for the previous (that wait is part of the measured stall), so a slow disk slows
// training down instead of queueing snapshots without bound.
//
// The thread runs at a lower OS priority (nice, async-writer-worker.ts): on a machine with as
// many cores as ONNX Runtime threads, its hashing and copying into the page cache would
// otherwise take cycles from the training step it overlaps. Its buffers come back after each
// write and are handed out again by takeBuffer, so the next snapshot copies into memory that is
// already mapped instead of faulting in fresh pages.
import { Worker } from 'node:worker_threads';
import type { CheckpointContents } from './checkpoint_dir.js';
import type { ShardPart } from './universal-write.js';

/** What the thread writes; the host buffers of its tensors are transferred to it. */
export type WriteJob =
  | { writer: 'checkpoint'; dir: string; contents: CheckpointContents }
  | { writer: 'universal-shard'; dir: string; part: ShardPart };

interface Reply {
  id: number;
  error?: string;
  /** The job's buffers, given back for reuse. */
  buffers?: ArrayBuffer[];
}

/** Each distinct buffer of a job once (views of one snapshot share a buffer). */
export function jobBuffers(job: WriteJob): ArrayBuffer[] {
  const arrays = job.writer === 'checkpoint' ? Object.values(job.contents.tensors).map((t) => t.data) : job.part.pieces.flatMap((p) => [p.param, p.expAvg, p.expAvgSq]);
  return [...new Set(arrays.map((a) => a.buffer as ArrayBuffer))].filter((b) => b.byteLength > 0);
}

export class AsyncCheckpointWriter {
  private readonly worker: Worker;
  private nextId = 1;
  private inFlight: Promise<void> | null = null;
  private readonly waiting = new Map<number, { resolve: () => void; reject: (e: Error) => void }>();
  private failure: Error | null = null;
  /** Buffers the thread gave back, by byte length. */
  private readonly spare = new Map<number, ArrayBuffer[]>();

  /** `nice`: the writer thread's OS priority (0 = the process's, 19 = lowest; default 10). */
  constructor(opts: { nice?: number } = {}) {
    this.worker = new Worker(new URL('./async-writer-worker.js', import.meta.url), { workerData: { nice: opts.nice ?? 10 } });
    this.worker.unref(); // an idle writer never keeps the process alive; flush() before exiting
    this.worker.on('message', (r: Reply) => {
      for (const b of r.buffers ?? []) {
        const list = this.spare.get(b.byteLength) ?? [];
        if (list.length < 2) list.push(b); // at most two snapshots' worth kept
        this.spare.set(b.byteLength, list);
      }
      const w = this.waiting.get(r.id);
      this.waiting.delete(r.id);
      if (r.error) w?.reject(new Error(r.error));
      else w?.resolve();
    });
    this.worker.on('error', (e) => this.failAll(e));
    this.worker.on('exit', (code) => this.failAll(new Error(`the checkpoint writer thread exited (status ${code})`)));
  }

  private failAll(e: Error): void {
    this.failure ??= e;
    for (const w of this.waiting.values()) w.reject(e);
    this.waiting.clear();
  }

  /** A buffer of `bytes` bytes for a snapshot: one a finished write gave back, else a new one.
   *  Its contents are stale; the caller overwrites all of it. */
  takeBuffer(bytes: number): ArrayBuffer {
    return this.spare.get(bytes)?.pop() ?? new ArrayBuffer(bytes);
  }

  /**
   * Waits for the previous save, then starts writing `contents` to `dir` in the background.
   * The tensors' buffers are transferred (they become unusable here). Resolves when the write
   * has started; `published` resolves when it is on disk under its final name.
   */
  async submit(dir: string, contents: CheckpointContents): Promise<{ published: Promise<void> }> {
    return this.submitJob({ writer: 'checkpoint', dir, contents });
  }

  /** submit() for any job; `published` resolves when the job's files are on disk (for a
   *  universal shard: written and fsynced in the staging directory, not yet published). */
  async submitJob(job: WriteJob): Promise<{ published: Promise<void> }> {
    await this.flush();
    if (this.failure) throw this.failure;
    const id = this.nextId++;
    const published = new Promise<void>((resolve, reject) => this.waiting.set(id, { resolve, reject }));
    this.worker.ref();
    this.worker.postMessage({ id, job }, jobBuffers(job));
    this.inFlight = published.finally(() => {
      this.inFlight = null;
      this.worker.unref();
    });
    this.inFlight.catch(() => {}); // reported through published and flush()
    return { published };
  }

  /** Waits until nothing is being written; rethrows a failed write. */
  async flush(): Promise<void> {
    if (this.inFlight) await this.inFlight;
  }

  async close(): Promise<void> {
    try {
      await this.flush();
    } finally {
      await this.worker.terminate();
    }
  }
}
