// Runs a job's local workers and fails fast: the first worker that exits non-zero or dies
// from a signal brings the others down (SIGTERM, then SIGKILL after a grace period), because a
// collective with a dead peer can only hang. Each worker leads its own process group, and
// whole groups are signalled, so whatever a worker started dies with it.
import { type ChildProcess, spawn } from 'node:child_process';
import { constants, hostname } from 'node:os';
import type { Readable, Writable } from 'node:stream';
import { PrefixedOutput } from './line-prefixer.js';
import { HeartbeatMonitor } from './heartbeat-monitor.js';

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
  /** A worker silent this long after its first heartbeat is hung and fails the job; 0 or absent: no check. */
  heartbeatTimeoutMs?: number;
}

export interface WorkerFailure {
  rank: number;
  pid: number | undefined;
  code: number | null;
  signal: NodeJS.Signals | null;
  /** Set when the worker could not be started at all. */
  spawnError?: string;
  /** Set when the worker stopped sending heartbeats (SIGSTOP, a blocked event loop). */
  hung?: string;
}

export interface JobOutcome {
  exitCode: number;
  /** The worker named as the cause, if one failed on its own. */
  failure?: WorkerFailure;
  /** Every worker that failed on its own (not from the launcher's signals), cause first. */
  failures: WorkerFailure[];
  /** The signal that told the launcher to stop, if one did. */
  interrupted?: NodeJS.Signals;
  /** One line for the user; absent on success. */
  message?: string;
}

interface Running {
  rank: number;
  child: ChildProcess;
  exited: boolean;
  /** Signals the launcher sent to this worker's group: a death by one of these is not a failure of its own. */
  signalled: Set<NodeJS.Signals>;
  /** Still running when the launcher began stopping the job. */
  runningAtStop: boolean;
  /** Resolves when the worker's stdout and stderr are closed. */
  drained: Promise<void>;
}

const STDIO_DRAIN_MS = 2000;

export class WorkerGroup {
  readonly done: Promise<JobOutcome>;
  private readonly running: Running[] = [];
  private readonly failures: WorkerFailure[] = [];
  private stopping = false;
  private interrupted?: NodeJS.Signals;
  private settled = false;
  private killTimer?: NodeJS.Timeout;
  private finish!: () => void;
  private readonly stdout: PrefixedOutput;
  private readonly stderr: PrefixedOutput;
  private readonly heartbeats?: HeartbeatMonitor;

  constructor(private readonly o: SupervisorOptions) {
    if (o.command.length === 0) throw new Error('no worker command');
    this.stdout = new PrefixedOutput(o.stdout);
    this.stderr = new PrefixedOutput(o.stderr);
    if (o.heartbeatTimeoutMs) this.heartbeats = new HeartbeatMonitor(o.heartbeatTimeoutMs, (h) => this.onHung(h.rank, h.silentMs));
    this.done = new Promise<void>((resolve) => (this.finish = resolve)).then(() => this.settle());
    for (const w of o.workers) this.startWorker(w);
  }

  /** The launcher was told to stop: pass the signal on; a second request kills at once. */
  stop(signal: NodeJS.Signals): void {
    if (this.stopping) {
      this.signalAll('SIGKILL');
      return;
    }
    this.interrupted = signal;
    this.beginStop(signal);
  }

  /**
   * Last resort for a launcher that is exiting abnormally (an uncaught error): kill every worker
   * group at once, synchronously, because workers run in their own sessions and would outlive it.
   */
  killNow(): void {
    if (!this.settled) this.signalAll('SIGKILL');
  }

  /** Pids of the workers this group started (for tests and diagnostics). */
  pids(): number[] {
    return this.running.map((r) => r.child.pid).filter((p): p is number => p !== undefined);
  }

  private startWorker(w: WorkerLaunch): void {
    const [file, ...args] = this.o.command;
    const beats = this.o.heartbeatTimeoutMs ? { ATSCALE_HEARTBEAT_FD: '3', ATSCALE_HEARTBEAT_MS: String(Math.max(10, Math.min(1000, Math.floor(this.o.heartbeatTimeoutMs / 5)))) } : {};
    const child = spawn(file!, args, { env: { ...w.env, ...beats }, stdio: ['ignore', 'pipe', 'pipe', ...(this.heartbeats ? ['pipe' as const] : [])], detached: true });
    if (this.heartbeats && child.stdio[3]) this.heartbeats.watch(w.rank, child.stdio[3] as Readable);
    const prefix = `[rank ${w.rank}] `;
    this.stdout.add(child.stdout!, prefix);
    this.stderr.add(child.stderr!, prefix);
    const closed = (s: NodeJS.ReadableStream) => new Promise<void>((r) => s.once('close', r));
    const entry: Running = { rank: w.rank, child, exited: false, signalled: new Set(), runningAtStop: false, drained: Promise.all([closed(child.stdout!), closed(child.stderr!)]).then(() => {}) };
    this.running.push(entry);
    child.once('exit', (code, signal) => this.onExit(entry, code, signal));
    child.once('error', (err) => {
      // Only a failed spawn leaves no pid; later errors (e.g. a failed kill) are not exits.
      if (child.pid === undefined && !entry.exited) {
        this.onExit(entry, null, null, `could not start '${file}': ${(err as NodeJS.ErrnoException).code ?? err.message}`);
      }
    });
  }

  /** A worker stopped beating: it is the failure; kill it now (SIGTERM cannot reach a stopped process), stop the rest. */
  private onHung(rank: number, silentMs: number): void {
    const entry = this.running.find((r) => r.rank === rank);
    if (!entry || entry.exited || this.interrupted) return;
    const hung = `on host ${hostname()} sent no heartbeat for ${silentMs} ms (stopped by a signal, or its event loop is blocked; limit --heartbeat-timeout-ms ${this.o.heartbeatTimeoutMs})`;
    this.failures.unshift({ rank, pid: entry.child.pid, code: null, signal: null, hung });
    entry.signalled.add('SIGKILL');
    try {
      if (entry.child.pid !== undefined) process.kill(-entry.child.pid, 'SIGKILL');
    } catch {
      // already gone
    }
    if (!this.stopping) this.beginStop('SIGTERM');
  }

  private onExit(entry: Running, code: number | null, signal: NodeJS.Signals | null, spawnError?: string): void {
    entry.exited = true;
    this.heartbeats?.forget(entry.rank);
    const failed = spawnError !== undefined || signal !== null || code !== 0;
    // After the launcher signalled a worker, a non-zero exit is its answer to that signal; a
    // death by another signal (the OOM killer's SIGKILL, a SIGSEGV) is still its own failure.
    const ownFailure = failed && (entry.signalled.size === 0 || (signal !== null && !entry.signalled.has(signal)));
    if (ownFailure && !this.interrupted) {
      this.failures.push({ rank: entry.rank, pid: entry.child.pid, code, signal, spawnError });
      if (!this.stopping) this.beginStop('SIGTERM');
    }
    if (this.running.every((r) => r.exited)) this.finish();
  }

  private beginStop(signal: NodeJS.Signals): void {
    this.stopping = true;
    for (const r of this.running) r.runningAtStop = !r.exited;
    this.signalAll(signal);
    this.killTimer = setTimeout(() => this.signalAll('SIGKILL'), this.o.stopGraceMs);
  }

  /** Signals every worker's whole process group, exited leaders included (their children may live on). */
  private signalAll(signal: NodeJS.Signals): void {
    for (const r of this.running) {
      const pid = r.child.pid;
      if (pid === undefined) continue;
      r.signalled.add(signal);
      try {
        process.kill(-pid, signal);
      } catch {
        // ESRCH: the group is already empty.
      }
    }
  }

  private async settle(): Promise<JobOutcome> {
    clearTimeout(this.killTimer);
    this.heartbeats?.stop();
    // Every leader is gone; anything left in their groups would be an orphan.
    this.signalAll('SIGKILL');
    const drainTimeout = new Promise<void>((r) => setTimeout(r, STDIO_DRAIN_MS).unref());
    await Promise.race([Promise.all(this.running.map((r) => r.drained)), drainTimeout]);
    for (const r of this.running) {
      r.child.stdout?.destroy();
      r.child.stderr?.destroy();
      (r.child.stdio[3] as Readable | null | undefined)?.destroy();
    }
    this.settled = true;
    return this.outcome();
  }

  private outcome(): JobOutcome {
    const failures = rootCauseFirst(this.failures);
    const cause = failures[0];
    if (cause) {
      const ownRanks = new Set(failures.map((f) => f.rank));
      const stopped = this.running.filter((r) => r.runningAtStop && !ownRanks.has(r.rank)).length;
      const also = failures.slice(1).map((f) => `rank ${f.rank} ${describe(f)}`);
      const message = [`rank ${cause.rank}${cause.pid !== undefined ? ` (pid ${cause.pid})` : ''} ${describe(cause)}`];
      if (also.length) message.push(`also failed: ${also.join(', ')}`);
      if (stopped) message.push(`stopped the other ${plural(stopped, 'worker')}`);
      return { exitCode: exitCodeOf(cause), failure: cause, failures, message: message.join('; ') };
    }
    if (this.interrupted) {
      const n = this.running.filter((r) => r.runningAtStop).length;
      return { exitCode: 128 + (constants.signals[this.interrupted] ?? 0), failures, interrupted: this.interrupted, message: `received ${this.interrupted}: stopped ${plural(n, 'worker')}` };
    }
    return { exitCode: 0, failures };
  }
}

/**
 * When several workers fail together, one usually caused the rest (peers of a killed rank
 * fail with "peer lost"). A death by signal is the likelier cause, so it is named first;
 * otherwise the first failure observed.
 */
export function rootCauseFirst(failures: WorkerFailure[]): WorkerFailure[] {
  const hung = failures.filter((f) => f.hung);
  const bySignal = failures.filter((f) => !f.hung && f.signal !== null);
  return [...hung, ...bySignal, ...failures.filter((f) => !f.hung && f.signal === null)];
}

function describe(f: WorkerFailure): string {
  if (f.spawnError) return f.spawnError;
  if (f.hung) return f.hung;
  if (f.signal) return `was killed by signal ${f.signal}`;
  return `exited with status ${f.code}`;
}

function exitCodeOf(f: WorkerFailure): number {
  if (f.spawnError) return 127;
  if (f.signal) return 128 + (constants.signals[f.signal] ?? 0);
  return f.code ?? 1;
}

function plural(n: number, noun: string): string {
  return `${n} ${noun}${n === 1 ? '' : 's'}`;
}
