// The links between ranks: a full mesh built through the store. Every rank listens (TCP on
// the address it was told, plus a Unix socket for ranks on the same host), publishes where,
// and opens one connection to every other rank to RECEIVE from it: the receiving side is
// the connecting side because only net.connect supports the zero-copy `onread` mode. So each
// pair has two links, one per direction, each authenticated with the job secret. Listeners
// close once the mesh is complete.
//
// A peer goes away in one of two ways. It leaves (destroy()): it flushes its sends, then writes
// a goodbye frame as the last frame on its sending link, so once we read the goodbye nothing
// more will come from it; only operations that still wait for its data, or still push data
// to it, fail. Or it dies: its links drop without a goodbye, and every operation of a group
// it belongs to fails at once, naming it. The two links of a pair close independently, so
// our sending link may report the close before the goodbye has been read from the other one:
// the verdict waits for the receiving link (bounded by VERDICT_GRACE_MS).
import net from 'node:net';
import { randomBytes } from 'node:crypto';
import { chmodSync, unlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { encodeFrame, encodeHeader, FrameType, type Frame } from './frame.js';
import { FramedSocket } from './framed-socket.js';
import { authenticateAsClient, authenticateAsServer, ControlQueue, HANDSHAKE_MAX_PAYLOAD } from './auth.js';
import { HANDSHAKE_SLACK_MS, LoginGate, defaultLoginTimeoutMs, defaultMaxPending } from './login-gate.js';
import { DataReceiver, type PostedRecv } from './receiver.js';
import type { StoreClient } from './store.js';

export interface TransportOptions {
  rank: number;
  worldSize: number;
  secret: Buffer;
  store: StoreClient;
  /** Address to listen on for TCP (never a wildcard unless the user said so). */
  bindAddr: string;
  /** Ranks with equal host ids talk over Unix sockets. */
  hostId: string;
  timeoutMs: number;
  maxFrameBytes: number;
  /** Namespaces this mesh's keys in the store. */
  storePrefix: string;
  /** Time a connecting peer has to log in (default min(timeoutMs, 10 s)). */
  loginTimeoutMs?: number;
}

interface Endpoint {
  hostId: string;
  tcpHost: string;
  tcpPort: number;
  unixPath: string;
}

/** Raised for any operation that needed a rank whose link is gone. */
export class PeerLostError extends Error {
  override name = 'PeerLostError';
  constructor(readonly peerRank: number, readonly reason: string) {
    super(`rank ${peerRank} ${reason}`);
  }
}

/** How long a closed sending link waits for the receiving link to say whether the peer left or died. */
const VERDICT_GRACE_MS = 2000;
/** The longest destroy() waits for its last frames to reach the kernel. */
const FLUSH_LIMIT_MS = 30_000;

/** How a peer went away, for the operations that were using it. */
export interface Departure {
  error: PeerLostError;
  /** True when it said goodbye (destroy()); false when it crashed or the link broke. */
  graceful: boolean;
}

class PeerLink {
  out: FramedSocket | null = null;
  inSocket: net.Socket | null = null;
  receiver: DataReceiver | null = null;
  /** Set once the peer is gone, either way. */
  gone: Departure | null = null;
  /** Its goodbye frame arrived: everything it sent before has been read. */
  saidGoodbye = false;
  /** The sending link closed before we knew why; the receiving link decides. */
  verdictTimer: NodeJS.Timeout | null = null;
  /** Run once `gone` is set (a failed send waits for the verdict to name the cause). */
  onGone: (() => void)[] = [];
  viaUnix = false;
}

export class Transport {
  private readonly peers: PeerLink[];
  private readonly servers: net.Server[] = [];
  private unixPath: string | null = null;
  private closing: Promise<void> | null = null;
  private readonly lostListeners: ((d: Departure) => void)[] = [];
  private meshWaiter: (() => void) | null = null;
  /** Caps and times the connections that have not logged in (floods, slow-loris clients). */
  readonly gate: LoginGate;

  private constructor(readonly opts: TransportOptions) {
    this.peers = Array.from({ length: opts.worldSize }, () => new PeerLink());
    this.gate = new LoginGate({
      maxPending: defaultMaxPending(opts.worldSize),
      loginTimeoutMs: opts.loginTimeoutMs ?? defaultLoginTimeoutMs(opts.timeoutMs),
      what: `rank ${opts.rank}'s peer listener`,
      log: (line) => process.emitWarning(`atscale dist: ${line}`),
    });
  }

  static async connect(opts: TransportOptions): Promise<Transport> {
    const t = new Transport(opts);
    if (opts.worldSize === 1) return t;
    try {
      await t.buildMesh();
    } catch (err) {
      void t.close();
      throw err;
    }
    return t;
  }

  /** Told once per peer that goes away, with how it went. */
  onPeerLost(fn: (d: Departure) => void): void {
    this.lostListeners.push(fn);
  }

  /** How `rank` went away, or null while its links are up. */
  departure(rank: number): Departure | null {
    return this.peers[rank]!.gone;
  }

  /** True when the link to `rank` is a Unix domain socket (same host). */
  isLocal(rank: number): boolean {
    return this.peers[rank]!.viaUnix;
  }

  /**
   * Writes one data frame. The payload is not copied: the caller must leave it untouched until
   * `done` is called (the bytes have then been handed to the kernel).
   */
  send(rank: number, type: number, channel: number, seq: number, part: number, payload: Uint8Array, done: (err: Error | null) => void): void {
    const link = this.peers[rank]!;
    if (link.gone) return done(link.gone.error);
    const sock = link.out!.socket;
    sock.cork();
    sock.write(encodeHeader({ type, length: payload.length, channel, seq, part }));
    sock.write(payload, (err) => {
      if (!err) return done(null);
      // The link broke under us: report why the peer went (left or died), which the
      // receiving link decides, or this error if it never does.
      if (link.gone) return done(link.gone.error);
      let reported = false;
      const report = (e: PeerLostError) => {
        if (reported) return;
        reported = true;
        clearTimeout(timer);
        done(e);
      };
      const timer = setTimeout(() => report(new PeerLostError(rank, `disconnected while we sent to it (${err.message})`)), VERDICT_GRACE_MS + 100);
      link.onGone.push(() => report(link.gone!.error));
    });
    sock.uncork();
  }

  post(rank: number, key: string, r: PostedRecv): void {
    const link = this.peers[rank]!;
    if (link.gone && !link.gone.graceful) return r.done(link.gone.error);
    link.receiver!.post(key, r); // after a goodbye: served from what arrived, else fails at once
  }

  cancel(rank: number, key: string): void {
    this.peers[rank]!.receiver?.cancel(key);
  }

  /**
   * Says goodbye to every peer (so they report "left", not "crashed") after everything we
   * sent it, waits until those last frames are in the kernel, then closes every link. A peer
   * that takes nothing for FLUSH_LIMIT_MS (or the timeout, if shorter) is named in a warning
   * and cut off.
   */
  close(): Promise<void> {
    this.closing ??= this.closeLinks();
    return this.closing;
  }

  private async closeLinks(): Promise<void> {
    for (const s of this.servers) s.close();
    this.removeUnixPath();
    for (const link of this.peers) if (link.verdictTimer) clearTimeout(link.verdictTimer);
    const limitMs = Math.min(FLUSH_LIMIT_MS, this.opts.timeoutMs);
    const stuck: number[] = [];
    await Promise.all(
      this.peers.map(async (link, k) => {
        const sock = link.out?.socket;
        if (!sock || sock.destroyed || (link.gone && !link.gone.graceful)) return;
        sock.write(encodeFrame(FrameType.bye));
        const flushed = await new Promise<boolean>((resolve) => {
          const timer = setTimeout(() => resolve(false), limitMs);
          const finish = () => {
            clearTimeout(timer);
            resolve(true);
          };
          sock.once('close', finish);
          sock.end(finish);
        });
        if (!flushed) stuck.push(k);
      }),
    );
    if (stuck.length) process.emitWarning(`atscale dist: ${stuck.length === 1 ? 'rank' : 'ranks'} ${stuck.join(', ')} did not take our last frames within ${limitMs} ms of destroy(); closed anyway`);
    for (const link of this.peers) {
      link.out?.socket.destroy();
      const inbound = link.inSocket;
      inbound?.end();
      // A stopped peer never answers our FIN; its half-open socket must not keep this process alive.
      if (inbound) setTimeout(() => inbound.destroy(), limitMs).unref();
    }
  }

  private async buildMesh(): Promise<void> {
    const { rank, worldSize, store, storePrefix, timeoutMs } = this.opts;
    const endpoint = await this.listen();
    const meshDone = new Promise<void>((resolve) => (this.meshWaiter = resolve));
    await store.set(`${storePrefix}/endpoint/${rank}`, JSON.stringify(endpoint));
    const deadline = Date.now() + timeoutMs;
    const connects: Promise<void>[] = [];
    for (let k = 0; k < worldSize; k++) {
      if (k === rank) continue;
      connects.push(
        store
          // A little longer than the mesh timeout, which names every missing rank at once.
          .get(`${storePrefix}/endpoint/${k}`, timeoutMs + 1000, `rank ${k} to register its address`)
          .then((b) => this.connectTo(k, JSON.parse(b.toString('utf8')) as Endpoint, Math.max(1, deadline - Date.now()))),
      );
    }
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        const missing = this.peers.map((p, k) => (k !== rank && (!p.out || !p.receiver) ? k : -1)).filter((k) => k >= 0);
        reject(new Error(`${missing.length === 1 ? 'rank' : 'ranks'} ${missing.join(', ')} did not connect within ${timeoutMs} ms during init`));
      }, timeoutMs);
    });
    try {
      await Promise.race([Promise.all([Promise.all(connects), meshDone]), timeout]);
    } finally {
      clearTimeout(timer);
    }
    // Every link is up: nobody else may connect, so stop listening.
    for (const s of this.servers) s.close();
    this.removeUnixPath();
  }

  private checkMesh(): void {
    const complete = this.peers.every((p, k) => k === this.opts.rank || (p.out && p.receiver));
    if (complete) this.meshWaiter?.();
  }

  private async listen(): Promise<Endpoint> {
    const tcp = net.createServer((s) => this.accept(s));
    const unix = net.createServer((s) => this.accept(s));
    this.servers.push(tcp, unix);
    const listenOn = (srv: net.Server, args: [number, string] | [string], what: string) =>
      new Promise<void>((resolve, reject) => {
        srv.once('error', (err: NodeJS.ErrnoException) => reject(new Error(`cannot listen on ${what}: ${err.code ?? err.message} (set ATSCALE_BIND_ADDR to an address of this host)`)));
        srv.listen(...(args as [number, string]), () => resolve());
      });
    await listenOn(tcp, [0, this.opts.bindAddr], `${this.opts.bindAddr}`);
    this.unixPath = join(tmpdir(), `atscale-${process.pid}-${randomBytes(6).toString('hex')}.sock`);
    await listenOn(unix, [this.unixPath], this.unixPath);
    chmodSync(this.unixPath, 0o600);
    const port = (tcp.address() as net.AddressInfo).port;
    return { hostId: this.opts.hostId, tcpHost: this.opts.bindAddr, tcpPort: port, unixPath: this.unixPath };
  }

  private removeUnixPath(): void {
    if (!this.unixPath) return;
    try {
      unlinkSync(this.unixPath);
    } catch {
      // already gone
    }
    this.unixPath = null;
  }

  /** A rank connects to us to receive what we send it. */
  private accept(sock: net.Socket): void {
    const loggedIn = this.gate.admit(sock);
    if (!loggedIn) return;
    sock.setNoDelay(true);
    const who = `connection from ${sock.remoteAddress ?? 'a local socket'}${sock.remotePort ? `:${sock.remotePort}` : ''}`;
    const link = new FramedSocket(sock, who);
    let peer = -1;
    const accept = (identity: string): string | null => {
      const m = /^rank (\d+)$/.exec(identity);
      const k = m ? Number(m[1]) : -1;
      if (!m || k < 0 || k >= this.opts.worldSize || k === this.opts.rank) return `unknown peer "${identity.slice(0, 40)}" (world size ${this.opts.worldSize})`;
      if (this.peers[k]!.out) return `rank ${k} is already connected`;
      peer = k;
      return null;
    };
    authenticateAsServer(link, this.opts.secret, accept, who, this.gate.loginTimeoutMs + HANDSHAKE_SLACK_MS).then(
      () => {
        loggedIn.done();
        this.peers[peer]!.out = link;
        link.onFrame = () => link.reject('unexpected frame on a sending link');
        link.onClose = (reason) => this.sendingLinkClosed(peer, reason);
        this.checkMesh();
      },
      (err: Error) => {
        if (!loggedIn.expired) this.gate.report(`refused a connection: ${err.message}`);
        link.reject(err.message);
      },
    );
  }

  /** We connect to rank k to receive from it. */
  private async connectTo(k: number, ep: Endpoint, timeoutMs: number): Promise<void> {
    const link = this.peers[k]!;
    const viaUnix = ep.hostId === this.opts.hostId;
    const where = viaUnix ? ep.unixPath : `${ep.tcpHost}:${ep.tcpPort}`;
    const who = `rank ${k} at ${where}`;
    const control = new ControlQueue();
    let authenticated = false;
    const receiver = new DataReceiver(
      HANDSHAKE_MAX_PAYLOAD,
      HANDSHAKE_MAX_PAYLOAD,
      (f: Frame) => {
        if (!authenticated) control.push(f);
        else if (f.header.type === FrameType.bye) this.saidGoodbye(k);
        else if (f.header.type === FrameType.peerLost) this.reportedLost(k, f.payload);
      },
      (err) => {
        process.emitWarning(`atscale dist: ${who} broke the protocol: ${err.message}`);
        sock.destroy();
      },
    );
    const onread = { buffer: () => receiver.nextBuffer(), callback: (n: number) => (receiver.onRead(n), true) };
    const sock = viaUnix ? net.connect({ path: ep.unixPath, onread }) : net.connect({ host: ep.tcpHost, port: ep.tcpPort, onread });
    if (!viaUnix) sock.setNoDelay(true);
    let lastError = '';
    sock.on('error', (err: NodeJS.ErrnoException) => {
      lastError = err.code ?? err.message;
      control.fail(new Error(`cannot reach ${who}: ${lastError}`));
    });
    sock.on('close', () => {
      control.fail(new Error(`${who} closed the connection during the handshake`));
      if (authenticated) this.receivingLinkClosed(k, lastError ? `connection error ${lastError}` : 'connection closed');
    });
    const linkApi = {
      sendControl: (type: number, payload: Uint8Array) => void sock.write(encodeFrame(type, payload)),
      nextControl: (ms: number, w: string) => control.next(ms, w),
    };
    await authenticateAsClient(linkApi, this.opts.secret, `rank ${this.opts.rank}`, who, timeoutMs);
    authenticated = true;
    receiver.maxPayload = this.opts.maxFrameBytes;
    link.inSocket = sock;
    link.receiver = receiver;
    link.viaUnix = viaUnix;
    this.checkMesh();
  }

  /** Its goodbye is the last frame it sends: whatever we still wait for from it will not come. */
  private saidGoodbye(k: number): void {
    const link = this.peers[k]!;
    link.saidGoodbye = true;
    if (link.gone || this.closing) return;
    this.settle(k, { error: new PeerLostError(k, 'has left (it destroyed its process group)'), graceful: true });
  }

  private receivingLinkClosed(k: number, reason: string): void {
    const link = this.peers[k]!;
    if (link.saidGoodbye) this.saidGoodbye(k);
    else this.died(k, reason);
  }

  /** Either it left (its goodbye is on the other link) or it died: the receiving link will say. */
  private sendingLinkClosed(k: number, reason: string): void {
    const link = this.peers[k]!;
    if (link.gone || this.closing || link.verdictTimer) return;
    link.verdictTimer = setTimeout(() => this.died(k, reason), Math.min(VERDICT_GRACE_MS, this.opts.timeoutMs));
  }

  private died(k: number, reason: string): void {
    const link = this.peers[k]!;
    if (link.gone || this.closing) return;
    const why = `disconnected (${reason}): it probably crashed or was killed; see its output`;
    this.settle(k, { error: new PeerLostError(k, why), graceful: false });
    // Tell everyone else who died, before this process's own reaction (often exiting) can
    // reach them and be mistaken for the cause.
    const notice = encodeFrame(FrameType.peerLost, Buffer.from(JSON.stringify({ rank: k, reason: why })));
    for (const other of this.peers) if (other !== link && !other.gone && other.out && !other.out.socket.destroyed) other.out.socket.write(notice);
  }

  /** Records how `k` went, fails the receives that can no longer be served, tells listeners. */
  private settle(k: number, d: Departure): void {
    const link = this.peers[k]!;
    link.gone = d;
    if (link.verdictTimer) clearTimeout(link.verdictTimer);
    link.verdictTimer = null;
    // After a goodbye nothing is lost: frames it sent before stay readable by later receives.
    link.receiver?.failAll(d.error);
    link.out?.socket.destroy();
    if (!d.graceful) link.inSocket?.destroy();
    for (const fn of this.lostListeners) fn(d);
    for (const fn of link.onGone.splice(0)) fn();
  }

  /** Rank `from` says it lost a rank: that rank is gone for us too. */
  private reportedLost(from: number, payload: Buffer): void {
    let notice: { rank?: unknown; reason?: unknown };
    try {
      notice = JSON.parse(payload.toString('utf8')) as typeof notice;
    } catch {
      return;
    }
    const k = notice.rank;
    if (typeof k !== 'number' || !Number.isInteger(k) || k < 0 || k >= this.opts.worldSize || k === this.opts.rank) return;
    if (this.peers[k]!.gone || this.closing) return;
    this.settle(k, { error: new PeerLostError(k, `${String(notice.reason).slice(0, 300)} [reported by rank ${from}]`), graceful: false });
  }
}
