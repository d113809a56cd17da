// One in-flight operation of a process group: counts the receives and sends it still waits
// for, per rank, so that its timeout can say exactly who did not answer, and so that a lost
// rank fails it at once with that rank's name: a rank that died fails every op of its groups;
// a rank that left (destroy()) fails only the ops that still need to receive from it or send
// to it, since an op that got everything it needed from that rank can still complete.
import type { FloatArray } from '../ir/dtype.js';
import { frameKey } from './receiver.js';
import { PeerLostError, type Transport } from './transport.js';

export class PendingOp {
  readonly promise: Promise<void>;
  private resolve!: () => void;
  private reject!: (e: Error) => void;
  private readonly recvsFrom = new Map<number, number>();
  private readonly sendsTo = new Map<number, number>();
  private readonly posted = new Map<string, number>();
  private outstanding = 0;
  private started = false;
  private settled = false;
  private readonly timer: NodeJS.Timeout;
  /** Runs once everything arrived and was sent, before the promise resolves. */
  onComplete: (() => void) | null = null;
  /** Runs when the op settles either way (the group forgets it). */
  onSettled: (() => void) | null = null;

  constructor(
    readonly name: string,
    /** Global ranks of the group: a death of any of them fails this op. */
    readonly members: readonly number[],
    /**
     * True when every member's data flows into every member's result (all-reduce, barrier,
     * ...): a member that left before this op began cannot have taken part, so the op fails at
     * once. Broadcast and point-to-point may still be served from what that rank sent before
     * it left.
     */
    everyMemberContributes: boolean,
    private readonly transport: Transport,
    private readonly type: number,
    private readonly channel: number,
    private readonly seq: number,
    private readonly timeoutMs: number,
  ) {
    this.promise = new Promise<void>((res, rej) => {
      this.resolve = res;
      this.reject = rej;
    });
    this.timer = setTimeout(() => this.timedOut(), timeoutMs);
    for (const r of members) {
      const gone = transport.departure(r);
      if (gone && (!gone.graceful || everyMemberContributes)) {
        this.fail(new PeerLostError(r, `${gone.error.reason}; cannot run ${name}`));
        break;
      }
    }
  }

  get failed(): boolean {
    return this.settled;
  }

  /** Posts a receive of `part` from global rank `from`; `then` runs when it has landed. */
  recv(from: number, part: number, dest: Uint8Array, reduceInto: FloatArray | null, reduce: ((d: FloatArray, s: FloatArray) => void) | null, then?: () => void): void {
    if (this.settled) return;
    const key = frameKey(this.type, this.channel, this.seq, part);
    this.bump(this.recvsFrom, from, 1);
    this.posted.set(key, from);
    this.transport.post(from, key, {
      dest,
      reduceInto,
      reduce,
      done: (err) => {
        this.posted.delete(key);
        if (err) return this.fail(err);
        if (this.settled) return;
        this.bump(this.recvsFrom, from, -1);
        then?.();
        this.check();
      },
    });
  }

  send(to: number, part: number, payload: Uint8Array): void {
    if (this.settled) return;
    this.bump(this.sendsTo, to, 1);
    this.transport.send(to, this.type, this.channel, this.seq, part, payload, (err) => {
      if (err) return this.fail(err);
      this.bump(this.sendsTo, to, -1);
      this.check();
    });
  }

  /** Call after issuing the initial sends and receives. */
  start(): Promise<void> {
    this.started = true;
    this.check();
    return this.promise;
  }

  /** Rank `err.peerRank` left: fail only if we still wait for its data or push data to it. */
  peerLeft(err: PeerLostError): void {
    // Receives from it are all posted when the op starts; later ones are refused at once.
    if (this.recvsFrom.has(err.peerRank) || this.sendsTo.has(err.peerRank)) this.fail(err);
  }

  fail(err: Error): void {
    if (this.settled) return;
    this.settled = true;
    clearTimeout(this.timer);
    for (const [key, rank] of this.posted) this.transport.cancel(rank, key);
    this.posted.clear();
    this.onSettled?.();
    this.reject(err instanceof PeerLostError && !err.reason.includes(this.name) ? new PeerLostError(err.peerRank, `${err.reason} (during ${this.name})`) : err);
  }

  private bump(m: Map<number, number>, rank: number, d: number): void {
    const v = (m.get(rank) ?? 0) + d;
    if (v === 0) m.delete(rank);
    else m.set(rank, v);
    this.outstanding += d;
  }

  private check(): void {
    if (!this.started || this.settled || this.outstanding !== 0) return;
    this.settled = true;
    clearTimeout(this.timer);
    try {
      this.onComplete?.();
    } catch (err) {
      this.onSettled?.();
      this.reject(err as Error);
      return;
    }
    this.onSettled?.();
    this.resolve();
  }

  private timedOut(): void {
    const waiting = [...this.recvsFrom.keys()];
    const stuck = waiting.length ? waiting : [...this.sendsTo.keys()];
    const names = `${stuck.length === 1 ? 'rank' : 'ranks'} ${stuck.sort((a, b) => a - b).join(', ')}`;
    const what = waiting.length ? 'did not answer' : 'did not take what we sent';
    this.fail(new Error(`${names} ${what} within ${this.timeoutMs} ms during ${this.name}`));
  }
}
