// initProcessGroup: joins the job described by torchrun's environment variables (or explicit
// options): rank 0 hosts the rendezvous store on MASTER_ADDR:MASTER_PORT, every rank
// authenticates to it with ATSCALE_JOB_SECRET, publishes where it listens, and connects to
// every other rank. Returns the world ProcessGroup once all links are up and a first barrier
// over them has passed.
import { createHash } from 'node:crypto';
import { readFileSync, readlinkSync } from 'node:fs';
import { hostname } from 'node:os';
import { parseSecret } from './auth.js';
import { ProcessGroup, type CollectiveOptions } from './process-group.js';
import { StoreClient, StoreServer } from './store.js';
import { Transport, type TransportOptions } from './transport.js';
import type { PendingOp } from './op.js';
import { startHeartbeat } from './heartbeat.js';
import { defaultMaxPending } from './login-gate.js';

export interface InitOptions extends Partial<CollectiveOptions> {
  rank?: number;
  worldSize?: number;
  masterAddr?: string;
  masterPort?: number;
  /** Hex string (as in ATSCALE_JOB_SECRET) or raw bytes. */
  secret?: string | Buffer;
  /** Where this rank listens for peers; default ATSCALE_BIND_ADDR, else the interface facing rank 0. */
  bindAddr?: string;
  /** Ranks with the same host id use Unix sockets; default derived from this machine. */
  hostId?: string;
  /** Largest data frame accepted from a peer. */
  maxFrameBytes?: number;
  env?: NodeJS.ProcessEnv;
}

export const DEFAULT_TIMEOUT_MS = 300_000;
// Measured crossover on loopback (npm run bench -- collectives, 2 and 4 ranks): direct exchange
// wins up to about 4 KiB, the ring from 16 KiB.
export const DEFAULT_SMALL_MESSAGE_BYTES = 8 * 1024;
export const DEFAULT_SEGMENT_BYTES = 1 << 20;
export const DEFAULT_MAX_FRAME_BYTES = 64 << 20;

function intFromEnv(env: NodeJS.ProcessEnv, name: string, min: number, max = Number.MAX_SAFE_INTEGER): number {
  const raw = env[name];
  if (raw === undefined || raw === '') throw new Error(`${name} is not set: start workers with \`atscale launch\` (or torchrun-style env: RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT)`);
  const v = Number(raw);
  if (!Number.isInteger(v) || v < min || v > max) throw new Error(`${name}='${raw}' is not an integer in ${min}..${max}`);
  return v;
}

/** Same physical host and network namespace => same id (netns included so veth tests use TCP). */
export function defaultHostId(): string {
  const parts = [hostname()];
  try {
    parts.push(readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim());
  } catch {
    // not Linux
  }
  try {
    parts.push(readlinkSync('/proc/self/ns/net'));
  } catch {
    // no namespaces
  }
  return createHash('sha256').update(parts.join('|')).digest('hex').slice(0, 16);
}

export async function initProcessGroup(opts: InitOptions = {}): Promise<ProcessGroup> {
  const env = opts.env ?? process.env;
  startHeartbeat(env); // a user script under `atscale launch` (atscale's own CLI started it already)
  const worldSize = opts.worldSize ?? intFromEnv(env, 'WORLD_SIZE', 1);
  const rank = opts.rank ?? intFromEnv(env, 'RANK', 0, worldSize - 1);
  if (rank < 0 || rank >= worldSize) throw new RangeError(`rank ${rank} is outside 0..${worldSize - 1} (WORLD_SIZE=${worldSize})`);
  const masterAddr = opts.masterAddr ?? env.MASTER_ADDR;
  if (!masterAddr) throw new Error('MASTER_ADDR is not set: the address where rank 0 hosts the rendezvous store');
  const masterPort = opts.masterPort ?? intFromEnv(env, 'MASTER_PORT', 1, 65535);
  const secret = Buffer.isBuffer(opts.secret) ? opts.secret : parseSecret(opts.secret ?? env.ATSCALE_JOB_SECRET);
  const timeoutMs = opts.timeoutMs ?? (env.ATSCALE_TIMEOUT_MS ? intFromEnv(env, 'ATSCALE_TIMEOUT_MS', 1) : DEFAULT_TIMEOUT_MS);
  const options: CollectiveOptions = {
    timeoutMs,
    smallMessageBytes: opts.smallMessageBytes ?? DEFAULT_SMALL_MESSAGE_BYTES,
    segmentBytes: opts.segmentBytes ?? DEFAULT_SEGMENT_BYTES,
  };
  const maxFrameBytes = opts.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES;
  if (options.segmentBytes > maxFrameBytes || options.smallMessageBytes > maxFrameBytes) {
    throw new RangeError(`segmentBytes (${options.segmentBytes}) and smallMessageBytes (${options.smallMessageBytes}) must not exceed maxFrameBytes (${maxFrameBytes})`);
  }

  const server = rank === 0 ? await StoreServer.start({ host: masterAddr, port: masterPort, secret, timeoutMs, maxPending: defaultMaxPending(worldSize), onRefused: (r) => process.emitWarning(`atscale store: ${r}`) }) : null;
  let store: StoreClient | null = null;
  try {
    store = await StoreClient.connect({ host: masterAddr, port: masterPort, secret, identity: `rank ${rank}`, timeoutMs });
    const bindAddr = opts.bindAddr ?? env.ATSCALE_BIND_ADDR ?? store.localAddress;
    const hostId = opts.hostId ?? env.ATSCALE_HOST_ID ?? defaultHostId();
    const s = store;
    const closeStore = async () => {
      s.close();
      await server?.close();
    };
    return await worldGroupOverStore({ rank, worldSize, secret, store, bindAddr, hostId, timeoutMs, maxFrameBytes, storePrefix: 'atscale/world' }, options, closeStore);
  } catch (err) {
    store?.close();
    await server?.close();
    throw err;
  }
}

/**
 * @internal Builds the mesh over an existing store and returns the world group over it;
 * `afterClose` runs once its destroy() has flushed and closed every link. Tests use it to build
 * many meshes over one store (a distinct storePrefix each).
 */
export async function worldGroupOverStore(t: TransportOptions, options: CollectiveOptions, afterClose: () => Promise<void> = async () => undefined): Promise<ProcessGroup> {
  const transport = await Transport.connect(t);
  const active = new Set<PendingOp>();
  transport.onPeerLost(({ error, graceful }) => {
    for (const op of [...active]) {
      if (graceful) op.peerLeft(error);
      else if (op.members.includes(error.peerRank)) op.fail(error);
    }
  });
  const shutdown = async () => {
    await transport.close();
    // What is still waiting now can never complete: say so instead of leaving its timer to
    // hold the process until the timeout.
    for (const op of [...active]) op.fail(new Error(`${op.name}: the process group was destroyed while it ran`));
    await afterClose();
  };
  const members = Array.from({ length: t.worldSize }, (_, i) => i);
  const pg = new ProcessGroup(members, t.rank, 0, { transport, active, work: new Float32Array(0), shutdown }, options, true);
  // Proves every link carries data before anyone relies on it, and that all ranks are done
  // with the store's addresses.
  try {
    await pg.barrier();
  } catch (err) {
    await pg.destroy();
    throw err;
  }
  return pg;
}
