// The elastic rendezvous (torchrun's c10d rendezvous, reduced to what atscale needs), hosted by
// the launcher started with --node-rank 0 on --master-addr:--master-port. Every launcher, that
// one included, joins over TCP with the job secret. A round closes when MAX nodes have joined,
// or when at least MIN have, every connected launcher has, and nobody joined for lastCallMs
// (latecomers still make the first round). The round gives each node its rank, its workers'
// global ranks and a fresh port for the workers' own store. While it runs, launchers send
// keepalives and their worker group's outcome. A failure, a lost launcher (closed connection,
// or silence past keepaliveMs: a host whose network vanished) or a new launcher while fewer than
// MAX run ends the round: everyone stops its workers and joins again, and the next round
// resumes from the newest complete checkpoint at whatever world size it has. Failures count
// against maxRestarts; a node arriving does not (torchrun's rule). One launcher owns the
// history, so every node prints the same summary and exits with the same status.
import net from 'node:net';
import { FramedSocket } from '../dist/framed-socket.js';
import { authenticateAsServer } from '../dist/auth.js';
import { HANDSHAKE_SLACK_MS, LoginGate } from '../dist/login-gate.js';
import { findFreePort } from './free-port.js';
import { decodeToRendezvous, encodeMessage, RDZV_MAX_PAYLOAD, type ToLauncher, type ToRendezvous } from './rendezvous-messages.js';

export interface RendezvousOptions {
  host: string;
  port: number;
  secret: Buffer;
  minNodes: number;
  maxNodes: number;
  maxRestarts: number;
  /** After MIN nodes are in, how long to wait for more before closing a round. */
  lastCallMs: number;
  /** How long a round may take to gather MIN nodes before the job gives up. */
  joinTimeoutMs: number;
  /** A launcher silent this long is lost (its host is gone, or the network to it). */
  keepaliveMs: number;
  log: (line: string) => void;
}

interface Member {
  id: number;
  link: FramedSocket;
  who: string;
  nproc: number;
  prefer: number;
  host: string;
  lastSeen: number;
  /** Waiting for the next round. */
  joined: boolean;
  /** Node rank in the running round, or -1. */
  nodeRank: number;
  /** Its workers of the running round all succeeded. */
  done: boolean;
}

interface Failure {
  message: string;
  exitCode: number;
  /** A death by signal or a hang names the cause better than a peer's "peer lost". */
  rootLike: boolean;
}

export interface JobEnd {
  exitCode: number;
  summary: string;
}

/** Failures that arrive within this long of the first one of a round are weighed together. */
const CAUSE_WINDOW_MS = 300;

export class RendezvousServer {
  readonly ended: Promise<JobEnd>;
  private resolveEnd!: (e: JobEnd) => void;
  private server: net.Server | null = null;
  private readonly members = new Set<Member>();
  private nextId = 0;
  private round = -1;
  private running = false;
  private isOver = false;
  private worldSize = 0;
  private restarts = 0;
  private rejoins = 0;
  private readonly history: string[] = [];
  private failures: Failure[] = [];
  private causeTimer?: NodeJS.Timeout;
  private gatherTimer?: NodeJS.Timeout;
  private lastCallTimer?: NodeJS.Timeout;
  private gatherStarted = Date.now();
  private lastJoin = 0;
  private closing = false;
  private readonly keepalive: NodeJS.Timeout;
  private readonly gate: LoginGate;

  private constructor(private readonly o: RendezvousOptions) {
    this.ended = new Promise((r) => (this.resolveEnd = r));
    this.gate = new LoginGate({ maxPending: 64, loginTimeoutMs: Math.min(10_000, o.joinTimeoutMs), what: `elastic rendezvous ${o.host}:${o.port}`, log: o.log });
    this.keepalive = setInterval(() => this.checkKeepalive(), Math.max(50, Math.floor(o.keepaliveMs / 4)));
    this.startGathering();
  }

  static async start(o: RendezvousOptions): Promise<RendezvousServer> {
    const s = new RendezvousServer(o);
    s.server = net.createServer((sock) => s.accept(sock));
    await new Promise<void>((resolve, reject) => {
      s.server!.once('error', (err: NodeJS.ErrnoException) => reject(new Error(`the elastic rendezvous cannot listen on ${o.host}:${o.port}: ${err.code ?? err.message} (is --master-port in use, or --master-addr not an address of this node?)`)));
      s.server!.listen(o.port, o.host, () => resolve());
    });
    return s;
  }

  async close(): Promise<void> {
    clearInterval(this.keepalive);
    clearTimeout(this.gatherTimer);
    clearTimeout(this.lastCallTimer);
    clearTimeout(this.causeTimer);
    for (const m of this.members) m.link.socket.end();
    await new Promise<void>((r) => (this.server ? this.server.close(() => r()) : r()));
  }

  private accept(sock: net.Socket): void {
    const admission = this.gate.admit(sock);
    if (!admission) return;
    sock.setNoDelay(true);
    const who = `launcher at ${sock.remoteAddress}:${sock.remotePort}`;
    const link = new FramedSocket(sock, who);
    let member: Member | undefined;
    link.onClose = (reason) => {
      if (member) this.lost(member, reason);
    };
    authenticateAsServer(link, this.o.secret, () => (this.isOver ? 'the job is over' : null), who, this.gate.loginTimeoutMs + HANDSHAKE_SLACK_MS).then(
      () => {
        admission.done();
        link.reader.maxPayload = RDZV_MAX_PAYLOAD;
        member = { id: this.nextId++, link, who, nproc: 0, prefer: 0, host: sock.remoteAddress ?? '?', lastSeen: Date.now(), joined: false, nodeRank: -1, done: false };
        this.members.add(member);
        const m = member;
        link.onFrame = (f) => {
          m.lastSeen = Date.now();
          let msg: ToRendezvous;
          try {
            msg = decodeToRendezvous(f);
          } catch (e) {
            this.o.log(`elastic rendezvous: ${who}: ${(e as Error).message}; dropped it`);
            return link.reject((e as Error).message);
          }
          this.handle(m, msg);
        };
      },
      (err: Error) => {
        if (!admission.expired) this.gate.report(`${who}: ${err.message}`);
        link.reject(err.message);
      },
    );
  }

  private send(m: Member, msg: ToLauncher): void {
    if (!m.link.socket.destroyed) m.link.socket.write(encodeMessage(msg));
  }

  private handle(m: Member, msg: ToRendezvous): void {
    if (msg.t === 'ping') return this.send(m, { t: 'pong' });
    if (this.isOver) return;
    if (msg.t === 'join') {
      const arriving = m.nodeRank < 0;
      Object.assign(m, { nproc: msg.nproc, prefer: msg.prefer, host: msg.host, joined: true, done: false });
      this.lastJoin = Date.now();
      if (!this.running) return this.tryClose();
      const inRound = [...this.members].filter((x) => x.nodeRank >= 0);
      // Beyond MAX a node waits as a spare for the next round.
      if (arriving && inRound.length < this.o.maxNodes) this.endRound(`node ${m.host} joined (${inRound.length} of at most ${this.o.maxNodes} nodes were running)`, false);
      return;
    }
    // A result.
    if (!this.running || msg.round !== this.round || m.nodeRank < 0) return;
    if (msg.exitCode === 0) {
      m.done = true;
      const inRound = [...this.members].filter((x) => x.nodeRank >= 0);
      if (inRound.every((x) => x.done) && this.failures.length === 0) this.finish(0, 'succeeded');
      return;
    }
    this.fail({ message: `node ${m.nodeRank} (${m.host}): ${msg.message}`, exitCode: msg.exitCode, rootLike: msg.bySignal });
  }

  private lost(m: Member, reason: string): void {
    if (!this.members.delete(m)) return;
    if (this.isOver) return;
    if (this.running && m.nodeRank >= 0 && !m.done) {
      this.fail({ message: `node ${m.nodeRank} (${m.host}) was lost: ${reason}`, exitCode: 1, rootLike: true });
    } else if (this.running) {
      const inRound = [...this.members].filter((x) => x.nodeRank >= 0);
      if (inRound.length && inRound.every((x) => x.done) && this.failures.length === 0) this.finish(0, 'succeeded');
    } else this.tryClose();
  }

  private checkKeepalive(): void {
    const now = Date.now();
    for (const m of this.members) {
      if (now - m.lastSeen > this.o.keepaliveMs) m.link.reject(`no keepalive for ${now - m.lastSeen} ms (limit ${this.o.keepaliveMs} ms): its host or the network to it is gone`);
    }
  }

  /** A failure in the running round; the first few are weighed together to name the cause. */
  private fail(f: Failure): void {
    this.failures.push(f);
    if (this.causeTimer) return;
    this.causeTimer = setTimeout(() => {
      this.causeTimer = undefined;
      const cause = this.failures.find((x) => x.rootLike) ?? this.failures[0]!;
      this.endRound(cause.message, true, cause.exitCode);
    }, CAUSE_WINDOW_MS);
  }

  private endRound(reason: string, failure: boolean, exitCode = 1): void {
    if (!this.running) return;
    this.running = false;
    this.failures = [];
    const inRound = [...this.members].filter((x) => x.nodeRank >= 0);
    if (failure) {
      if (this.restarts >= this.o.maxRestarts) {
        this.history.push(reason);
        for (const m of inRound) this.send(m, { t: 'stop', round: this.round, reason });
        return this.finish(exitCode, `failed: ${reason}`, true);
      }
      this.restarts++;
      this.o.log(`worker group of round ${this.round} failed (${reason}); restarting it, restart ${this.restarts} of at most ${this.o.maxRestarts}`);
    } else {
      this.rejoins++;
      this.o.log(`round ${this.round} ends: ${reason}; the nodes re-form the group`);
    }
    this.history.push(`${failure ? `restart ${this.restarts}` : 're-rendezvous'}: ${reason}`);
    this.lastExitCode = exitCode;
    for (const m of inRound) {
      m.nodeRank = -1;
      this.send(m, { t: 'stop', round: this.round, reason });
    }
    this.startGathering();
  }

  private lastExitCode = 1;

  private startGathering(): void {
    this.gatherStarted = Date.now();
    clearTimeout(this.gatherTimer);
    this.gatherTimer = setTimeout(() => this.gatherTimedOut(), this.o.joinTimeoutMs);
    this.tryClose();
  }

  private gatherTimedOut(): void {
    if (this.running || this.isOver) return;
    const waiting = [...this.members].filter((m) => m.joined);
    if (waiting.length >= this.o.minNodes) return void this.closeRound(waiting);
    const hosts = waiting.map((m) => m.host).join(', ') || 'none';
    this.finish(this.round < 0 ? 1 : this.lastExitCode, `failed: only ${waiting.length} node${waiting.length === 1 ? '' : 's'} (${hosts}) joined round ${this.round + 1} within ${this.o.joinTimeoutMs} ms, and --nnodes ${this.o.minNodes}:${this.o.maxNodes} needs at least ${this.o.minNodes}`);
  }

  private tryClose(): void {
    if (this.running || this.isOver || this.closing) return;
    clearTimeout(this.lastCallTimer);
    const waiting = [...this.members].filter((m) => m.joined);
    if (waiting.length >= this.o.maxNodes) return void this.closeRound(waiting);
    if (waiting.length < this.o.minNodes) return;
    // Launchers still stopping their workers will join; wait for them (up to the join timeout).
    if (waiting.length < this.members.size) return;
    const wait = this.lastJoin + this.o.lastCallMs - Date.now();
    if (wait <= 0) return void this.closeRound(waiting);
    this.lastCallTimer = setTimeout(() => this.tryClose(), wait);
  }

  private async closeRound(waiting: Member[]): Promise<void> {
    this.closing = true;
    clearTimeout(this.gatherTimer);
    clearTimeout(this.lastCallTimer);
    let port: number;
    try {
      port = await findFreePort(this.o.host);
    } catch (e) {
      this.closing = false;
      return this.finish(1, `failed: ${(e as Error).message}`);
    }
    this.closing = false;
    // Members may have gone while the port was found.
    const nodes = waiting.filter((m) => this.members.has(m) && m.joined).sort((a, b) => a.prefer - b.prefer || a.id - b.id).slice(0, this.o.maxNodes);
    if (nodes.length < this.o.minNodes) return this.tryClose();
    this.round++;
    this.running = true;
    const before = this.worldSize;
    this.worldSize = nodes.reduce((s, m) => s + m.nproc, 0);
    let rankBase = 0;
    nodes.forEach((m, nodeRank) => {
      Object.assign(m, { joined: false, nodeRank, done: false });
      this.send(m, { t: 'round', round: this.round, nodeRank, nnodes: nodes.length, worldSize: this.worldSize, rankBase, masterAddr: this.o.host, masterPort: port });
      rankBase += m.nproc;
    });
    const change = this.round > 0 && before !== this.worldSize ? ` (was ${before})` : '';
    if (this.round > 0) this.history[this.history.length - 1] += `; resumed with ${nodes.length} node${nodes.length === 1 ? '' : 's'}, world size ${this.worldSize}${change}`;
    this.o.log(`round ${this.round}: ${nodes.length} node${nodes.length === 1 ? '' : 's'} (${nodes.map((m) => m.host).join(', ')}), world size ${this.worldSize}${change}, took ${Date.now() - this.gatherStarted} ms to gather`);
  }

  private finish(exitCode: number, end: string, historyHasEnd = false): void {
    if (this.isOver) return;
    this.isOver = true;
    this.running = false;
    clearTimeout(this.gatherTimer);
    clearTimeout(this.lastCallTimer);
    const past = historyHasEnd ? this.history.slice(0, -1) : this.history;
    const notes = past.length ? ` (${past.join('; ')})` : '';
    const summary = `job ${end} after ${this.restarts} of at most ${this.o.maxRestarts} restart${this.o.maxRestarts === 1 ? '' : 's'}${this.rejoins ? ` and ${this.rejoins} re-rendezvous for arriving nodes` : ''}${notes}`;
    for (const m of this.members) this.send(m, { t: 'end', exitCode, summary });
    this.resolveEnd({ exitCode, summary });
  }
}
