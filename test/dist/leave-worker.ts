// A worker process for the departure test: many rounds, each over a fresh mesh on one store.
// In every round one rank (the leaver) finishes a collective and destroys its group at once,
// while the others are still inside that collective (or have not started it yet) because they
// block their event loop for a while: the leaver's last data, its goodbye and its closing
// sockets then all wait in their kernel buffers together and are read in arbitrary order.
// The others must still complete the collective, and then fail a new one at once, naming the
// leaver. Prints one JSON line {"rank","ok","failures","rounds","ms"}; inert unless
// ATSCALE_TEST_WORKER=1 (node --test also runs every .js file under test/).
// With argv[2] 'send-then-exit' (2 ranks): rank 0 starts a send of 8 MB without awaiting it,
// destroys its group and exits at once; rank 1 starts receiving only later and must get it all.
import { parseSecret, StoreClient, StoreServer, type ProcessGroup } from '../../src/dist/index.js';
import { worldGroupOverStore } from '../../src/dist/init.js';
import type { CollectiveOptions } from '../../src/dist/process-group.js';

/** Blocks the event loop: nothing this process was sent gets read meanwhile. */
function busyWait(ms: number): void {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    // spin
  }
}

const value = (r: number, i: number) => ((i * 7 + r * 13) % 101) - 50;

function expectSum(buf: Float32Array, n: number, what: string): void {
  for (let i = 0; i < buf.length; i++) {
    let want = 0;
    for (let r = 0; r < n; r++) want += value(r, i);
    if (buf[i] !== want) throw new Error(`${what}: element ${i} is ${buf[i]}, expected ${want}`);
  }
}

type Variant = 'direct all_reduce' | 'direct all_reduce of 240 KB' | 'ring all_reduce' | 'broadcast from the leaver';
const VARIANTS: Variant[] = ['direct all_reduce', 'direct all_reduce of 240 KB', 'ring all_reduce', 'broadcast from the leaver'];
/** Large frames from the leaver are still being read when its sending link closes: the goodbye comes last. */
const LARGE = 60_000;

/** The collective of one round; the leaver destroys its group as soon as it returns. */
async function round(pg: ProcessGroup, i: number, variant: Variant, leaver: number, lag: number): Promise<void> {
  const { rank, worldSize: n } = pg;
  const leaving = rank === leaver;
  if (variant === 'broadcast from the leaver') {
    // Large broadcasts take the chain, small ones the direct path; the others start late.
    const len = i % 2 === 0 ? 2 * LARGE : 100;
    const buf = Float32Array.from({ length: len }, (_, i) => (leaving ? value(leaver, i) : 0));
    if (!leaving) busyWait(lag);
    await pg.broadcast(buf, leaver);
    for (let i = 0; i < len; i++) if (buf[i] !== value(leaver, i)) throw new Error(`broadcast: element ${i} is ${buf[i]}, expected ${value(leaver, i)}`);
    return;
  }
  // Direct exchange up to smallMessageBytes (see optionsFor), the ring (4 KiB segments) above.
  const len = variant === 'direct all_reduce' ? 64 : variant === 'ring all_reduce' ? 20_000 : LARGE;
  const buf = Float32Array.from({ length: len }, (_, i) => value(rank, i));
  const done = pg.allReduce(buf); // our sends are written before this returns
  if (!leaving) {
    if (variant === 'ring all_reduce') setTimeout(() => busyWait(lag), lag % 3); // somewhere inside the ring
    else busyWait(lag);
  }
  await done;
  expectSum(buf, n, variant);
}

/** destroy() must flush what this rank still had to send before it closes its links. */
async function sendThenExit(pg: ProcessGroup): Promise<string[]> {
  const big = Float32Array.from({ length: 2 << 20 }, (_, i) => value(0, i));
  if (pg.rank === 0) {
    const sent = pg.send(big, 1);
    await pg.destroy();
    await sent;
    console.log(JSON.stringify({ rank: 0, ok: true, failures: [], ms: 0 }));
    process.exit(0); // nothing may be left for the event loop to finish after destroy()
  }
  busyWait(300);
  const got = new Float32Array(big.length);
  await pg.recv(got, 0);
  for (let i = 0; i < got.length; i++) if (got[i] !== big[i]) return [`element ${i} of what rank 0 sent is ${got[i]}, expected ${big[i]}`];
  return [];
}

async function main(): Promise<void> {
  if (process.env.ATSCALE_TEST_WORKER !== '1') return;
  const t0 = Date.now();
  const rank = Number(process.env.RANK);
  const n = Number(process.env.WORLD_SIZE);
  const rounds = Number(process.env.LEAVE_ROUNDS ?? 32);
  const secret = parseSecret(process.env.ATSCALE_JOB_SECRET);
  const timeoutMs = Number(process.env.ATSCALE_TIMEOUT_MS ?? 10_000);
  const host = '127.0.0.1';
  const port = Number(process.env.MASTER_PORT);
  const small: CollectiveOptions = { timeoutMs, smallMessageBytes: 1024, segmentBytes: 4096 };
  const large: CollectiveOptions = { ...small, smallMessageBytes: 4 * LARGE };
  const server = rank === 0 ? await StoreServer.start({ host, port, secret, timeoutMs }) : null;
  const store = await StoreClient.connect({ host, port, secret, identity: `rank ${rank}`, timeoutMs });
  const failures: string[] = [];
  if (process.argv[2] === 'send-then-exit') {
    const pg = await worldGroupOverStore({ rank, worldSize: n, secret, store, bindAddr: host, hostId: `h${rank}`, timeoutMs, maxFrameBytes: 1 << 20, storePrefix: 'exit' }, { ...small, segmentBytes: 1 << 20 });
    failures.push(...(await sendThenExit(pg).catch((err: Error) => [err.message])));
    await pg.destroy();
  }
  for (let i = 0; process.argv[2] !== 'send-then-exit' && i < rounds; i++) {
    const variant = VARIANTS[i % VARIANTS.length]!;
    const leaver = Math.floor(i / VARIANTS.length) % n;
    const lag = 10 + ((i * 7 + rank * 5) % 20);
    const what = `round ${i} (${variant}, rank ${leaver} leaves)`;
    const pg = await worldGroupOverStore({ rank, worldSize: n, secret, store, bindAddr: host, hostId: `h${rank}`, timeoutMs, maxFrameBytes: 1 << 20, storePrefix: `leave/${i}` }, variant === 'direct all_reduce of 240 KB' ? large : small);
    try {
      await round(pg, i, variant, leaver, lag);
    } catch (err) {
      failures.push(`${what}: ${(err as Error).message}`);
      await pg.destroy();
      continue;
    }
    if (rank === leaver) {
      await pg.destroy();
      continue;
    }
    // Survivors leave together at the end of the round, so only the leaver has left meanwhile.
    const survivors = pg.newGroup(Array.from({ length: n }, (_, r) => r).filter((r) => r !== leaver))!;
    // A collective started after the leaver left can never complete: it must fail at once.
    const started = Date.now();
    try {
      await pg.allReduce(new Float32Array(8));
      failures.push(`${what}: an all_reduce after rank ${leaver} left succeeded`);
    } catch (err) {
      const msg = (err as Error).message;
      const ms = Date.now() - started;
      if (!msg.startsWith(`rank ${leaver} has left`)) failures.push(`${what}: the all_reduce after it left failed with: ${msg}`);
      else if (ms > timeoutMs / 4) failures.push(`${what}: the all_reduce after it left took ${ms} ms to fail`);
    }
    try {
      await survivors.barrier();
    } catch (err) {
      failures.push(`${what}: the survivors' barrier failed: ${(err as Error).message}`);
    }
    await pg.destroy();
  }
  store.close();
  await server?.close();
  console.log(JSON.stringify({ rank, ok: failures.length === 0, failures, rounds, ms: Date.now() - t0 }));
}

await main();
