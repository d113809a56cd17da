// Launcher side of the liveness check (dist/heartbeat.ts sends the beats): a worker that has
// beaten once and then stays silent for timeoutMs is hung (stopped by a signal, or its event
// loop is blocked) and is reported by rank, pid and host. Workers that never beat (a script
// that does not use atscale) are not judged.
import type { Readable } from 'node:stream';

export interface HungWorker {
  rank: number;
  silentMs: number;
}

export class HeartbeatMonitor {
  private readonly last = new Map<number, number>();
  private readonly done = new Set<number>();
  private readonly timer: NodeJS.Timeout;
  private lastTick = Date.now();

  constructor(private readonly timeoutMs: number, private readonly onHung: (w: HungWorker) => void) {
    this.timer = setInterval(() => this.check(), Math.max(50, Math.floor(timeoutMs / 4)));
    this.timer.unref();
  }

  /** Counts every chunk on the worker's beat pipe as a beat. */
  watch(rank: number, pipe: Readable): void {
    pipe.on('data', () => this.last.set(rank, Date.now()));
    pipe.on('error', () => {});
  }

  /** The worker exited: never judge it again. */
  forget(rank: number): void {
    this.done.add(rank);
  }

  stop(): void {
    clearInterval(this.timer);
  }

  private check(): void {
    const now = Date.now();
    const late = now - this.lastTick > this.timeoutMs / 2;
    this.lastTick = now;
    if (late) {
      // The launcher itself was paused (stopped, swapped out): the silence is ours, not the workers'.
      for (const rank of this.last.keys()) this.last.set(rank, now);
      return;
    }
    for (const [rank, at] of this.last) {
      if (this.done.has(rank) || now - at <= this.timeoutMs) continue;
      this.done.add(rank);
      this.onHung({ rank, silentMs: now - at });
    }
  }
}
