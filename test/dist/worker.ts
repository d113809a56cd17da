// A worker process for the dist tests: joins the process group from torchrun-style env and
// runs one scenario (argv[2]), checking every result against arithmetic. Prints one JSON line
// {"rank","ok","error"?,"ms"} and exits. Does nothing unless ATSCALE_TEST_WORKER=1, because
// `node --test` also runs every .js file under a test/ folder.
import { initProcessGroup, chunkRange, type ProcessGroup } from '../../src/dist/index.js';

/** What rank r contributes at index i: small integers, so float32 sums are exact. */
const value = (r: number, i: number) => ((i * 7 + r * 13) % 101) - 50;

function check(cond: boolean, what: string): void {
  if (!cond) throw new Error(`check failed: ${what}`);
}

function expectArray(got: Float32Array, want: (i: number) => number, what: string): void {
  for (let i = 0; i < got.length; i++) {
    if (got[i] !== Math.fround(want(i))) throw new Error(`${what}: element ${i} of ${got.length} is ${got[i]}, expected ${Math.fround(want(i))}`);
  }
}

async function collectives(pg: ProcessGroup): Promise<void> {
  const { rank, worldSize: n } = pg;
  const ranks = Array.from({ length: n }, (_, r) => r);
  // Below and above smallMessageBytes (1 KiB in the tests), with lengths not divisible by n and
  // several ring segments (segmentBytes 4 KiB, or TEST_SEGMENT_BYTES: segments larger than the
  // receiver's 64 KiB staging buffer stream straight into their destination).
  for (const len of [1, 3, 255, 257, 1001, 12_345, 150_001]) {
    const a = Float32Array.from({ length: len }, (_, i) => value(rank, i));
    await pg.allReduce(a);
    expectArray(a, (i) => ranks.reduce((s, r) => s + value(r, i), 0), `all_reduce sum len ${len}`);
    const m = Float32Array.from({ length: len }, (_, i) => value(rank, i));
    await pg.allReduce(m, 'max');
    expectArray(m, (i) => Math.max(...ranks.map((r) => value(r, i))), `all_reduce max len ${len}`);
    const v = Float32Array.from({ length: len }, (_, i) => value(rank, i));
    await pg.allReduce(v, 'avg');
    expectArray(v, (i) => ranks.reduce((s, r) => s + value(r, i), 0) / n, `all_reduce avg len ${len}`);

    const input = Float32Array.from({ length: len }, (_, i) => value(rank, i));
    const [a0, a1] = chunkRange(len, n, rank);
    const out = new Float32Array(a1 - a0);
    await pg.reduceScatter(input, out);
    expectArray(out, (i) => ranks.reduce((s, r) => s + value(r, a0 + i), 0), `reduce_scatter len ${len}`);
    expectArray(input, (i) => value(rank, i), `reduce_scatter leaves its input alone (len ${len})`);

    const full = new Float32Array(len);
    const mine = Float32Array.from({ length: a1 - a0 }, (_, i) => value(rank, a0 + i));
    await pg.allGather(mine, full);
    expectArray(full, (i) => value(ranks.find((r) => i < chunkRange(len, n, r)[1])!, i), `all_gather len ${len}`);

    const root = n - 1;
    const b = Float32Array.from({ length: len }, (_, i) => (rank === root ? value(root, i) : -1));
    await pg.broadcast(b, root);
    expectArray(b, (i) => value(root, i), `broadcast len ${len}`);
  }
  // Point to point around the ring, sizes above one segment.
  const right = (rank + 1) % n;
  const left = (rank - 1 + n) % n;
  const sent = Float32Array.from({ length: 5000 }, (_, i) => value(rank, i));
  const got = new Float32Array(5000);
  await Promise.all([pg.send(sent, right), pg.recv(got, left)]);
  expectArray(got, (i) => value(left, i), 'send/recv');
  await pg.barrier();

  // Subgroups: even ranks, and a pair; run concurrently with a world collective so frames of
  // different groups interleave on the same links.
  const even = pg.newGroup(ranks.filter((r) => r % 2 === 0));
  const pair = pg.newGroup([0, n - 1]);
  check((even !== null) === (rank % 2 === 0), 'newGroup membership');
  const world = Float32Array.from({ length: 3001 }, (_, i) => value(rank, i));
  const pending: Promise<void>[] = [pg.allReduce(world)];
  let sub: Float32Array | null = null;
  if (even) {
    check(even.rank === rank / 2 && even.worldSize === Math.ceil(n / 2), 'subgroup rank numbering');
    sub = Float32Array.from({ length: 2999 }, (_, i) => value(rank, i));
    pending.push(even.allReduce(sub));
  }
  await Promise.all(pending);
  expectArray(world, (i) => ranks.reduce((s, r) => s + value(r, i), 0), 'world all_reduce beside a subgroup');
  if (sub) expectArray(sub, (i) => ranks.filter((r) => r % 2 === 0).reduce((s, r) => s + value(r, i), 0), 'subgroup all_reduce');
  if (pair) {
    const p = Float32Array.from({ length: 777 }, (_, i) => value(rank, i));
    const [p0, p1] = chunkRange(777, pair.worldSize, pair.rank);
    const part = new Float32Array(p1 - p0);
    await pair.reduceScatter(p, part);
    const members = n === 1 ? [0] : [0, n - 1];
    expectArray(part, (i) => members.reduce((s, r) => s + value(r, p0 + i), 0), 'pair reduce_scatter');
  }
  await pg.barrier();
}

/** What rank r contributes in float64: value(r, i) plus r 2^-40, which float32 cannot hold (its
 *  sums are exact in float64, so any pass through 4-byte elements shows). */
const value64 = (r: number, i: number) => value(r, i) + r * 2 ** -40;

function expect64(got: Float64Array, want: (i: number) => number, what: string): void {
  check(got instanceof Float64Array, `${what}: a Float64Array`);
  for (let i = 0; i < got.length; i++) if (got[i] !== want(i)) throw new Error(`${what}: element ${i} of ${got.length} is ${got[i]}, expected ${want(i)}`);
}

/** Every collective on Float64Array buffers, direct and ring-sized, and a float32 one between
 *  float64 ones (the reduce-scatter scratch changes type). */
async function collectives64(pg: ProcessGroup): Promise<void> {
  const { rank, worldSize: n } = pg;
  const ranks = Array.from({ length: n }, (_, r) => r);
  const sum = (i: number) => ranks.reduce((s, r) => s + value64(r, i), 0);
  for (const len of [3, 257, 12_345, 150_001]) {
    const a = Float64Array.from({ length: len }, (_, i) => value64(rank, i));
    await pg.allReduce(a);
    expect64(a, sum, `float64 all_reduce len ${len}`);
    const input = Float64Array.from({ length: len }, (_, i) => value64(rank, i));
    const [a0, a1] = chunkRange(len, n, rank);
    const out = new Float64Array(a1 - a0);
    await pg.reduceScatter(input, out);
    expect64(out, (i) => sum(a0 + i), `float64 reduce_scatter len ${len}`);
    const out32 = new Float32Array(a1 - a0);
    await pg.reduceScatter(Float32Array.from({ length: len }, (_, i) => value(rank, i)), out32);
    expectArray(out32, (i) => ranks.reduce((s, r) => s + value(r, a0 + i), 0), `float32 reduce_scatter after float64, len ${len}`);
    const full = new Float64Array(len);
    await pg.allGather(Float64Array.from({ length: a1 - a0 }, (_, i) => value64(rank, a0 + i)), full);
    expect64(full, (i) => value64(ranks.find((r) => i < chunkRange(len, n, r)[1])!, i), `float64 all_gather len ${len}`);
    const b = Float64Array.from({ length: len }, (_, i) => (rank === 0 ? value64(0, i) : -1));
    await pg.broadcast(b, 0);
    expect64(b, (i) => value64(0, i), `float64 broadcast len ${len}`);
  }
  const right = (rank + 1) % n;
  const left = (rank - 1 + n) % n;
  const got = new Float64Array(5000);
  await Promise.all([pg.send(Float64Array.from({ length: 5000 }, (_, i) => value64(rank, i)), right), pg.recv(got, left)]);
  expect64(got, (i) => value64(left, i), 'float64 send/recv');
  await pg.barrier();
}

/** Rank `victim` dies mid-run; the others must fail promptly naming it. */
async function crash(pg: ProcessGroup, victim: number, mode: 'kill' | 'hang'): Promise<void> {
  const buf = new Float32Array(50_000);
  await pg.allReduce(buf);
  if (pg.rank === victim) {
    if (mode === 'kill') process.kill(process.pid, 'SIGKILL');
    await new Promise((r) => setTimeout(r, 4_000)); // alive but silent, then leaves
    return;
  }
  for (;;) await pg.allReduce(buf);
}

async function main(): Promise<void> {
  if (process.env.ATSCALE_TEST_WORKER !== '1') return;
  const scenario = process.argv[2] ?? 'collectives';
  const t0 = Date.now();
  let pg: ProcessGroup | null = null;
  try {
    pg = await initProcessGroup({ smallMessageBytes: 1024, segmentBytes: Number(process.env.TEST_SEGMENT_BYTES ?? 4096) });
    if (scenario === 'collectives') await collectives(pg);
    else if (scenario === 'float64') await collectives64(pg);
    else if (scenario === 'kill' || scenario === 'hang') await crash(pg, Number(process.argv[3] ?? 1), scenario);
    else throw new Error(`unknown scenario ${scenario}`);
    console.log(JSON.stringify({ rank: pg.rank, ok: true, ms: Date.now() - t0 }));
    await pg.destroy();
  } catch (err) {
    console.log(JSON.stringify({ rank: Number(process.env.RANK), ok: false, error: (err as Error).message, ms: Date.now() - t0 }));
    await pg?.destroy();
    process.exitCode = 1;
  }
}

await main();
