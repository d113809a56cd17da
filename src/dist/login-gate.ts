// The door in front of every listening socket (the rendezvous store, a rank's peer listener):
// until a connection has proved it knows the job secret it holds a slot, at most maxPending
// slots exist, and a slot lasts at most loginTimeoutMs from accept, however slowly the client
// trickles bytes (slow-loris). Connections over the cap are closed at once and counted; the
// count is logged at a bounded rate, so 20,000 idle connections cost a few sockets' memory
// and a handful of log lines instead of the process's file descriptors.
import type net from 'node:net';

export interface LoginGateOptions {
  /** Connections allowed to be logging in at once. */
  maxPending: number;
  /** Time from accept to a finished login. */
  loginTimeoutMs: number;
  /** What listens here, for log lines ("rendezvous store 10.0.0.1:29500"). */
  what: string;
  log: (line: string) => void;
  /** Shortest time between two "over the cap" log lines. */
  logEveryMs?: number;
}

export interface Admission {
  /** The connection logged in: it no longer counts against the cap or the deadline. */
  done(): void;
  /** The gate dropped it at the login deadline (and logged that). */
  expired: boolean;
}

export class LoginGate {
  private pending = 0;
  /** Connections closed because the cap was reached, since start. */
  refused = 0;
  /** Connections dropped because they did not log in in time, since start. */
  timedOut = 0;
  private refusedUnlogged = 0;
  private lastLog = -Infinity;
  private windowStart = -Infinity;
  private linesInWindow = 0;
  private suppressed = 0;

  constructor(private readonly o: LoginGateOptions) {}

  get loginTimeoutMs(): number {
    return this.o.loginTimeoutMs;
  }

  get pendingCount(): number {
    return this.pending;
  }

  /**
   * Admits a fresh connection, or closes it at once when the cap is reached (returns undefined).
   * Call done() when the login succeeded; until then the gate closes the socket at the deadline
   * (and sets expired, so the caller does not log the same connection twice).
   */
  admit(sock: net.Socket): Admission | undefined {
    const peer = `${sock.remoteAddress ?? 'a local socket'}${sock.remotePort ? `:${sock.remotePort}` : ''}`;
    if (this.pending >= this.o.maxPending) {
      sock.destroy();
      this.refused++;
      this.refusedUnlogged++;
      this.logRefusals(peer);
      return undefined;
    }
    this.pending++;
    let holding = true;
    const admission: Admission = { done: () => release(), expired: false };
    const release = () => {
      if (!holding) return;
      holding = false;
      this.pending--;
      clearTimeout(timer);
    };
    const timer = setTimeout(() => {
      if (!holding) return;
      release();
      admission.expired = true;
      this.timedOut++;
      this.report(`${this.o.what}: ${peer} did not log in within ${this.o.loginTimeoutMs} ms; dropped it (${this.timedOut} dropped so far)`);
      sock.destroy();
    }, this.o.loginTimeoutMs);
    timer.unref();
    sock.once('close', release);
    return admission;
  }

  /** Logs why a connection was refused (bad frame, wrong secret), at most 20 lines per
   * logEveryMs; the lines held back are counted in the next one. */
  report(line: string): void {
    const now = Date.now();
    if (now - this.windowStart >= (this.o.logEveryMs ?? 5000)) {
      if (this.suppressed) this.o.log(`${this.o.what}: ${this.suppressed} more refusals like the above were not logged`);
      this.windowStart = now;
      this.linesInWindow = 0;
      this.suppressed = 0;
    }
    if (this.linesInWindow++ < 20) this.o.log(line);
    else this.suppressed++;
  }

  private logRefusals(peer: string): void {
    const now = Date.now();
    if (now - this.lastLog < (this.o.logEveryMs ?? 5000)) return;
    this.lastLog = now;
    this.o.log(`${this.o.what}: ${this.o.maxPending} connections are already logging in; closed ${this.refusedUnlogged} more without reading them (latest from ${peer}; ${this.refused} in all since start)`);
    this.refusedUnlogged = 0;
  }

  /** A last line with the totals (when the listener closes), if anything was refused. */
  summary(): string | undefined {
    if (this.refused === 0 && this.timedOut === 0) return undefined;
    return `${this.o.what}: refused ${this.refused} connections over the cap of ${this.o.maxPending} logging in, dropped ${this.timedOut} that did not log in within ${this.o.loginTimeoutMs} ms`;
  }
}

/** Default cap: every rank may be logging in at once, with room to spare. */
export function defaultMaxPending(worldSize: number): number {
  return Math.max(64, 2 * worldSize);
}

/** The handshake's own waits are a little longer than the gate's deadline, so the gate reports a slow client once. */
export const HANDSHAKE_SLACK_MS = 1000;

/** Default login time: a handshake is two round trips; a busy host still answers in seconds. */
export function defaultLoginTimeoutMs(timeoutMs: number): number {
  return Math.min(timeoutMs, 10_000);
}
