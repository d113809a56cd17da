// Asynchronous checkpoints: the caller snapshots its state into host buffers it will not touch
// again (copies taken at a step boundary) and hands them over; a worker thread writes them with
// saveCheckpoint (staging directory, fsync, rename: the last complete checkpoint is never
// overwritten in place) while training goes on. One save is in flight at a time: submitting
// the next one first waits for the previous (that wait is part of the measured stall), so a
// slow disk slows training down instead of queueing snapshots without bound.
import { Worker } from 'node:worker_threads';
import type { CheckpointContents } from './checkpoint_dir.js';

interface Reply {
  id: number;
  error?: string;
}

export class AsyncCheckpointWriter {
  private readonly worker: Worker;
  private nextId = 1;
  private inFlight: Promise<void> | null = null;
  private readonly waiting = new Map<number, { resolve: () => void; reject: (e: Error) => void }>();
  private failure: Error | null = null;

  constructor() {
    this.worker = new Worker(new URL('./async-writer-worker.js', import.meta.url));
    this.worker.unref(); // an idle writer never keeps the process alive; flush() before exiting
    this.worker.on('message', (r: Reply) => {
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

  /**
   * Waits for the previous save, then starts writing `contents` to `dir` in the background.
   * The tensors' buffers are transferred (they become unusable here). Resolves when the write
   * has started; `published` resolves when it is on disk under its final name.
   */
  async submit(dir: string, contents: CheckpointContents): Promise<{ published: Promise<void> }> {
    await this.flush();
    if (this.failure) throw this.failure;
    const id = this.nextId++;
    const buffers = new Set<ArrayBuffer>();
    for (const t of Object.values(contents.tensors)) buffers.add(t.data.buffer as ArrayBuffer);
    const published = new Promise<void>((resolve, reject) => this.waiting.set(id, { resolve, reject }));
    this.worker.ref();
    this.worker.postMessage({ id, dir, contents }, [...buffers]);
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
