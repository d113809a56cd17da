// The rendezvous store: a tiny authenticated key-value server that rank 0 hosts on
// MASTER_ADDR:MASTER_PORT and every rank (rank 0 included) talks to as a client, like
// torch.distributed's TCPStore. get and wait block until the key is set; add is atomic.
import net from 'node:net';
import { FrameType, type Frame } from './frame.js';
import { FramedSocket } from './framed-socket.js';
import { authenticateAsServer } from './auth.js';
import { dialAuthenticated } from './dial.js';
import { HANDSHAKE_SLACK_MS, LoginGate, defaultLoginTimeoutMs } from './login-gate.js';

/** Largest store request or response; keys and values are addresses and counters. */
export const STORE_MAX_PAYLOAD = 1 << 20;

const Op = { set: 1, get: 2, add: 3, wait: 4 } as const;
const OK = 0;
const ERR = 1;

function encodeRequest(id: number, op: number, key: string, value: Uint8Array): Buffer {
  const k = Buffer.from(key, 'utf8');
  const b = Buffer.allocUnsafe(7 + k.length + value.length);
  b.writeUInt32LE(id, 0);
  b.writeUInt8(op, 4);
  b.writeUInt16LE(k.length, 5);
  k.copy(b, 7);
  b.set(value, 7 + k.length);
  return b;
}

function encodeResponse(id: number, status: number, value: Uint8Array): Buffer {
  const b = Buffer.allocUnsafe(5 + value.length);
  b.writeUInt32LE(id, 0);
  b.writeUInt8(status, 4);
  b.set(value, 5);
  return b;
}

export interface StoreServerOptions {
  host: string;
  port: number;
  secret: Buffer;
  timeoutMs: number;
  /** Told about refused or broken clients, at a bounded rate (never includes the secret). */
  onRefused?: (reason: string) => void;
  /** Clients allowed to be logging in at once (default 64); more are closed unread and counted. */
  maxPending?: number;
  /** Time a client has from connecting to finishing its login (default min(timeoutMs, 10 s)). */
  loginTimeoutMs?: number;
}

export class StoreServer {
  private readonly data = new Map<string, Buffer>();
  private readonly waiters = new Map<string, (() => void)[]>();
  private readonly clients = new Set<FramedSocket>();
  private server: net.Server | null = null;
  readonly gate: LoginGate;

  private constructor(private readonly opts: StoreServerOptions) {
    this.gate = new LoginGate({
      maxPending: opts.maxPending ?? 64,
      loginTimeoutMs: opts.loginTimeoutMs ?? defaultLoginTimeoutMs(opts.timeoutMs),
      what: `rendezvous store ${opts.host}:${opts.port}`,
      log: (line) => opts.onRefused?.(line),
    });
  }

  /** Binds exactly host:port (no wildcard) and starts serving. */
  static async start(opts: StoreServerOptions): Promise<StoreServer> {
    const s = new StoreServer(opts);
    s.server = net.createServer((sock) => s.accept(sock));
    await new Promise<void>((resolve, reject) => {
      s.server!.once('error', (err: NodeJS.ErrnoException) => reject(new Error(`rendezvous store cannot listen on ${opts.host}:${opts.port}: ${err.code ?? err.message} (is MASTER_PORT in use, or MASTER_ADDR not an address of this host?)`)));
      s.server!.listen(opts.port, opts.host, () => resolve());
    });
    return s;
  }

  get port(): number {
    return (this.server!.address() as net.AddressInfo).port;
  }

  private accept(sock: net.Socket): void {
    const loggedIn = this.gate.admit(sock);
    if (!loggedIn) return;
    const who = `store client ${sock.remoteAddress}:${sock.remotePort}`;
    const link = new FramedSocket(sock, who);
    this.clients.add(link);
    let settled = false; // handshake finished or refused (and reported) already
    link.onClose = (reason) => {
      this.clients.delete(link);
      if (!settled && reason !== 'connection closed' && !loggedIn.expired) this.gate.report(`${who}: ${reason}`);
      settled = true;
    };
    authenticateAsServer(link, this.opts.secret, () => null, who, this.gate.loginTimeoutMs + HANDSHAKE_SLACK_MS).then(
      () => {
        settled = true;
        loggedIn.done();
        link.reader.maxPayload = STORE_MAX_PAYLOAD;
        link.onFrame = (f) => this.handle(link, f);
      },
      (err: Error) => {
        if (!settled && !loggedIn.expired) this.gate.report(err.message);
        settled = true;
        link.reject(err.message);
      },
    );
  }

  private handle(link: FramedSocket, f: Frame): void {
    if (f.header.type !== FrameType.storeRequest || f.payload.length < 7) return link.reject('malformed store request');
    const p = f.payload;
    const id = p.readUInt32LE(0);
    const op = p.readUInt8(4);
    const keyLen = p.readUInt16LE(5);
    if (7 + keyLen > p.length) return link.reject('malformed store request key');
    const key = p.subarray(7, 7 + keyLen).toString('utf8');
    const value = Buffer.from(p.subarray(7 + keyLen));
    const reply = (status: number, v: Uint8Array) => link.sendControl(FrameType.storeResponse, encodeResponse(id, status, v));
    switch (op) {
      case Op.set:
        this.put(key, value);
        return reply(OK, new Uint8Array(0));
      case Op.add: {
        if (value.length !== 8) return reply(ERR, Buffer.from('add needs an 8-byte delta'));
        const old = this.data.get(key);
        let base = 0n;
        try {
          base = old ? BigInt(old.toString('utf8')) : 0n;
        } catch {
          // A bad request from one peer must not take down the store (and with it the job).
          return reply(ERR, Buffer.from(`add: key '${key}' does not hold an integer`));
        }
        const next = base + value.readBigInt64LE(0);
        this.put(key, Buffer.from(next.toString(), 'utf8'));
        const out = Buffer.allocUnsafe(8);
        out.writeBigInt64LE(next, 0);
        return reply(OK, out);
      }
      case Op.get:
      case Op.wait:
        // The reply waits for the key; the client owns the timeout (it knows what it waits for).
        return this.whenSet(key, () => reply(OK, op === Op.get ? this.data.get(key)! : new Uint8Array(0)));
      default:
        return reply(ERR, Buffer.from(`unknown store op ${op}`));
    }
  }

  private put(key: string, value: Buffer): void {
    this.data.set(key, value);
    const ws = this.waiters.get(key);
    if (ws) {
      this.waiters.delete(key);
      for (const w of ws) w();
    }
  }

  private whenSet(key: string, fn: () => void): void {
    if (this.data.has(key)) return fn();
    const ws = this.waiters.get(key) ?? [];
    ws.push(fn);
    this.waiters.set(key, ws);
  }

  async close(): Promise<void> {
    const summary = this.gate.summary();
    if (summary) this.opts.onRefused?.(summary);
    for (const c of this.clients) c.socket.destroy();
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }
}

export interface StoreClientOptions {
  host: string;
  port: number;
  secret: Buffer;
  /** Who this client is, bound into the handshake (e.g. "rank 3"). */
  identity: string;
  timeoutMs: number;
}

export class StoreClient {
  private nextId = 1;
  private readonly pending = new Map<number, { resolve: (b: Buffer) => void; reject: (e: Error) => void }>();
  private failure: Error | null = null;

  private constructor(private readonly link: FramedSocket, private readonly opts: StoreClientOptions) {
    link.onFrame = (f) => this.onResponse(f);
    link.onClose = (reason) => {
      this.failure = new Error(`lost the rendezvous store at ${opts.host}:${opts.port} (hosted by rank 0): ${reason}`);
      for (const p of this.pending.values()) p.reject(this.failure);
      this.pending.clear();
    };
  }

  /** Connects (retrying while the store is not up yet) and authenticates, within timeoutMs. */
  static async connect(opts: StoreClientOptions): Promise<StoreClient> {
    const link = await dialAuthenticated({ ...opts, who: `rendezvous store at ${opts.host}:${opts.port} (rank 0)`, hint: 'is rank 0 running, and MASTER_ADDR/MASTER_PORT the same on every worker?' });
    link.reader.maxPayload = STORE_MAX_PAYLOAD;
    return new StoreClient(link, opts);
  }

  /** The local address of the connection to the store: the interface facing rank 0. */
  get localAddress(): string {
    return this.link.socket.localAddress ?? '127.0.0.1';
  }

  set(key: string, value: Uint8Array | string): Promise<void> {
    return this.request(Op.set, key, typeof value === 'string' ? Buffer.from(value) : value, `set('${key}')`).then(() => undefined);
  }

  /** Waits until the key is set (by any rank), then returns its value. */
  get(key: string, timeoutMs = this.opts.timeoutMs, waitingFor = 'another rank to set it'): Promise<Buffer> {
    return this.request(Op.get, key, new Uint8Array(0), `get('${key}')`, timeoutMs, waitingFor);
  }

  async wait(keys: string[], timeoutMs = this.opts.timeoutMs): Promise<void> {
    await Promise.all(keys.map((k) => this.request(Op.wait, k, new Uint8Array(0), `wait('${k}')`, timeoutMs, 'another rank to set it')));
  }

  /** Atomically adds delta to the integer stored at key (0 when unset) and returns the sum. */
  async add(key: string, delta: number): Promise<number> {
    const d = Buffer.allocUnsafe(8);
    d.writeBigInt64LE(BigInt(delta), 0);
    const r = await this.request(Op.add, key, d, `add('${key}')`);
    return Number(r.readBigInt64LE(0));
  }

  close(): void {
    this.link.socket.end();
  }

  private request(op: number, key: string, value: Uint8Array, what: string, timeoutMs = this.opts.timeoutMs, waitingFor = 'rank 0'): Promise<Buffer> {
    if (this.failure) return Promise.reject(this.failure);
    const id = this.nextId++;
    return new Promise<Buffer>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new Error(`store ${what} did not complete within ${timeoutMs} ms (waiting for ${waitingFor})`));
      }, timeoutMs);
      this.pending.set(id, {
        resolve: (b) => (clearTimeout(timer), resolve(b)),
        reject: (e) => (clearTimeout(timer), reject(e)),
      });
      this.link.sendControl(FrameType.storeRequest, encodeRequest(id, op, key, value));
    });
  }

  private onResponse(f: Frame): void {
    if (f.header.type !== FrameType.storeResponse || f.payload.length < 5) return this.link.reject('malformed store response');
    const id = f.payload.readUInt32LE(0);
    const p = this.pending.get(id);
    if (!p) return; // answered after its timeout
    this.pending.delete(id);
    if (f.payload.readUInt8(4) === OK) p.resolve(Buffer.from(f.payload.subarray(5)));
    else p.reject(new Error(`store refused the request: ${f.payload.subarray(5).toString('utf8')}`));
  }
}
