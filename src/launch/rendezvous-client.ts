// A launcher's side of the elastic rendezvous: one authenticated connection for the whole job,
// keepalives both ways (a rendezvous host that vanished is noticed within keepaliveMs, not at
// the next TCP timeout), and a queue of what the rendezvous said, read with timed waits.
import type { FramedSocket } from '../dist/framed-socket.js';
import { dialAuthenticated } from '../dist/dial.js';
import { decodeToLauncher, encodeMessage, RDZV_MAX_PAYLOAD, type ToLauncher, type ToRendezvous } from './rendezvous-messages.js';

export interface RendezvousClientOptions {
  host: string;
  port: number;
  secret: Buffer;
  /** Who this launcher is, bound into the handshake. */
  identity: string;
  /** How long to keep trying to reach the rendezvous at the start. */
  connectTimeoutMs: number;
  keepaliveMs: number;
}

export class RendezvousClient {
  private readonly queue: ToLauncher[] = [];
  private waiter: { resolve: (m: ToLauncher) => void; reject: (e: Error) => void } | null = null;
  private failure: Error | null = null;
  private lastSeen = Date.now();
  private readonly timer: NodeJS.Timeout;
  readonly where: string;

  private constructor(private readonly link: FramedSocket, private readonly o: RendezvousClientOptions) {
    this.where = `the elastic rendezvous at ${o.host}:${o.port} (the launcher with --node-rank 0)`;
    link.reader.maxPayload = RDZV_MAX_PAYLOAD;
    link.onFrame = (f) => {
      this.lastSeen = Date.now();
      let m: ToLauncher;
      try {
        m = decodeToLauncher(f);
      } catch (e) {
        return link.reject((e as Error).message);
      }
      if (m.t === 'pong') return;
      if (this.waiter) {
        const w = this.waiter;
        this.waiter = null;
        w.resolve(m);
      } else this.queue.push(m);
    };
    link.onClose = (reason) => {
      this.failure = new Error(`lost ${this.where}: ${reason}`);
      clearInterval(this.timer);
      this.waiter?.reject(this.failure);
      this.waiter = null;
    };
    this.timer = setInterval(() => {
      const silent = Date.now() - this.lastSeen;
      if (silent > o.keepaliveMs) link.reject(`no answer for ${silent} ms (limit ${o.keepaliveMs} ms): its host or the network to it is gone`);
      else this.send({ t: 'ping' });
    }, Math.max(50, Math.floor(o.keepaliveMs / 4)));
  }

  /** Connects (retrying while the rendezvous is not up yet) and authenticates. */
  static async connect(o: RendezvousClientOptions): Promise<RendezvousClient> {
    const link = await dialAuthenticated({ ...o, timeoutMs: o.connectTimeoutMs, loginTimeoutMs: 10_000, who: `the elastic rendezvous at ${o.host}:${o.port}`, hint: 'is the launcher with --node-rank 0 running, with the same --master-addr and --master-port?' });
    return new RendezvousClient(link, o);
  }

  /** This end's address: the interface that faces the rendezvous host. */
  get localAddress(): string {
    return this.link.socket.localAddress ?? '?';
  }

  send(m: ToRendezvous): void {
    if (!this.link.socket.destroyed) this.link.socket.write(encodeMessage(m));
  }

  /** The next message; rejects when the connection is lost. */
  next(): Promise<ToLauncher> {
    const m = this.queue.shift();
    if (m) return Promise.resolve(m);
    if (this.failure) return Promise.reject(this.failure);
    return new Promise((resolve, reject) => (this.waiter = { resolve, reject }));
  }

  close(): void {
    clearInterval(this.timer);
    this.link.socket.end();
  }
}
