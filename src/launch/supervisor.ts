// Runs a job's local workers and fails fast: the first worker that exits non-zero or dies
// from a signal brings the others down (SIGTERM, then SIGKILL after a grace period), because a
// collective with a dead peer can only hang. Each worker leads its own process group, and
// whole groups are signalled, so whatever a worker started dies with it.
import { type ChildProcess, spawn } from 'node:child_process';
import { constants } from 'node:os';
import type { Writable } from 'node:stream';
import { forwardLines } from './line-prefixer.js';

export interface WorkerLaunch {
  rank: number;
  env: NodeJS.ProcessEnv;
}

export interface SupervisorOptions {
  command: string[];
  workers: WorkerLaunch[];
  /** How long workers get between SIGTERM and SIGKILL. */
  stopGraceMs: number;
  stdout: Writable;
  stderr: Writable;
}

export interface WorkerFailure {
  rank: number;
  pid: number | undefined;
  code: number | null;
  signal: NodeJS.Signals | null;
  /** Set when the worker could not be started at all. */
  spawnError?: string;
}

export interface JobOutcome {
  exitCode: number;
  /** The first worker that failed, if one did. */
  failure?: WorkerFailure;
  /** The signal that told the launcher to stop, if one did. */
  interrupted?: NodeJS.Signals;
  /** One line for the user; absent on success. */
  message?: string;
}

interface Running {
  rank: number;
  child: ChildProcess;
  exited: boolean;
  /** Resolves when the worker's stdout and stderr are closed. */
  drained: Promise<void>;
}

const STDIO_DRAIN_MS = 2000;

export class WorkerGroup {
  readonly done: Promise<JobOutcome>;
  private readonly running: Running[] = [];
  private failure?: WorkerFailure;
  private interrupted?: NodeJS.Signals;
  private stillRunningAtStop = 0;
  private killTimer?: NodeJS.Timeout;
  private finish!: () => void;

  constructor(private readonly o: SupervisorOptions) {
    if (o.command.length === 0) throw new Error('no worker command');
    this.done = new Promise<void>((resolve) => (this.finish = resolve)).then(() => this.settle());
    for (const w of o.workers) this.startWorker(w);
  }

  /** The launcher was told to stop: pass the signal on; a second request kills at once. */
  stop(signal: NodeJS.Signals): void {
    if (this.interrupted || this.failure) {
      this.signalAll('SIGKILL');
      return;
    }
    this.interrupted = signal;
    this.beginStop(signal);
  }

  /** Pids of the workers this group started (for tests and diagnostics). */
  pids(): number[] {
    return this.running.map((r) => r.child.pid).filter((p): p is number => p !== undefined);
  }

  private startWorker(w: WorkerLaunch): void {
    const [file, ...args] = this.o.command;
    const child = spawn(file!, args, { env: w.env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    const prefix = `[rank ${w.rank}] `;
    forwardLines(child.stdout!, this.o.stdout, prefix);
    forwardLines(child.stderr!, this.o.stderr, prefix);
    const closed = (s: NodeJS.ReadableStream) => new Promise<void>((r) => s.once('close', r));
    const entry: Running = { rank: w.rank, child, exited: false, drained: Promise.all([closed(child.stdout!), closed(child.stderr!)]).then(() => {}) };
    this.running.push(entry);
    child.once('exit', (code, signal) => this.onExit(entry, code, signal));
    child.once('error', (err) => {
      // Only a failed spawn leaves no pid; later errors (e.g. a failed kill) are not exits.
      if (child.pid === undefined && !entry.exited) {
        this.onExit(entry, null, null, `could not start '${file}': ${(err as NodeJS.ErrnoException).code ?? err.message}`);
      }
    });
  }

  private onExit(entry: Running, code: number | null, signal: NodeJS.Signals | null, spawnError?: string): void {
    entry.exited = true;
    const failed = spawnError !== undefined || signal !== null || code !== 0;
    if (failed && !this.failure && !this.interrupted) {
      this.failure = { rank: entry.rank, pid: entry.child.pid, code, signal, spawnError };
      this.beginStop('SIGTERM');
    }
    if (this.running.every((r) => r.exited)) this.finish();
  }

  private beginStop(signal: NodeJS.Signals): void {
    this.stillRunningAtStop = this.running.filter((r) => !r.exited).length;
    this.signalAll(signal);
    this.killTimer = setTimeout(() => this.signalAll('SIGKILL'), this.o.stopGraceMs);
  }

  /** Signals every worker's whole process group, exited leaders included (their children may live on). */
  private signalAll(signal: NodeJS.Signals): void {
    for (const r of this.running) {
      const pid = r.child.pid;
      if (pid === undefined) continue;
      try {
        process.kill(-pid, signal);
      } catch {
        // ESRCH: the group is already empty.
      }
    }
  }

  private async settle(): Promise<JobOutcome> {
    clearTimeout(this.killTimer);
    // Every leader is gone; anything left in their groups would be an orphan.
    this.signalAll('SIGKILL');
    const drainTimeout = new Promise<void>((r) => setTimeout(r, STDIO_DRAIN_MS).unref());
    await Promise.race([Promise.all(this.running.map((r) => r.drained)), drainTimeout]);
    for (const r of this.running) {
      r.child.stdout?.destroy();
      r.child.stderr?.destroy();
    }
    return this.outcome();
  }

  private outcome(): JobOutcome {
    const others = `stopped the other ${this.stillRunningAtStop} worker${this.stillRunningAtStop === 1 ? '' : 's'}`;
    if (this.failure) {
      const f = this.failure;
      const who = `rank ${f.rank}${f.pid !== undefined ? ` (pid ${f.pid})` : ''}`;
      if (f.spawnError) return { exitCode: 127, failure: f, message: `${who}: ${f.spawnError}; ${others}` };
      if (f.signal) return { exitCode: 128 + (constants.signals[f.signal] ?? 0), failure: f, message: `${who} was killed by signal ${f.signal}; ${others}` };
      return { exitCode: f.code ?? 1, failure: f, message: `${who} exited with status ${f.code}; ${others}` };
    }
    if (this.interrupted) {
      const n = this.stillRunningAtStop;
      return { exitCode: 128 + (constants.signals[this.interrupted] ?? 0), interrupted: this.interrupted, message: `received ${this.interrupted}: stopped ${n} worker${n === 1 ? '' : 's'}` };
    }
    return { exitCode: 0 };
  }
}
