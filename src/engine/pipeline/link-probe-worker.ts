// One of the two processes `measureLinks` (link-probe.ts) starts: joins the pair's process
// group, then times pipeline handoffs (handoff.ts, the executor's own path) back and forth at
// each size, and all-reduces of two floats (the norm and loss the pipeline step reduces).
// Rank 0 prints one JSON line: median seconds of one handoff per size, and of one all-reduce.
import { initProcessGroup } from '../../dist/index.js';
import { recvHandoff, sendHandoff } from './handoff.js';
import { median } from '../../runtime/median.js';

const pg = await initProcessGroup();
const peer = 1 - pg.rank;
const sizes = process.env.ATSCALE_PROBE_SIZES!.split(',').map(Number);
const iters = Number(process.env.ATSCALE_PROBE_ITERS ?? 20);
const handoff: Record<number, number> = {};
for (const n of sizes) {
  const data = new Float32Array(n).fill(1);
  const times: number[] = [];
  // Two warm-up round trips (first-touch pages, JIT), then `iters` timed ones; rank 0's round
  // trip is two handoffs, one each way.
  for (let i = 0; i < iters + 2; i++) {
    const t0 = performance.now();
    if (pg.rank === 0) {
      const sent = sendHandoff(pg, data, i, 1, peer);
      await recvHandoff(pg, 'float32', n, peer);
      await sent;
    } else {
      await recvHandoff(pg, 'float32', n, peer);
      await sendHandoff(pg, data, i, 0, peer);
    }
    if (i >= 2) times.push((performance.now() - t0) / 2 / 1000);
  }
  handoff[4 * n] = median(times);
}
const red = new Float32Array(2);
const times: number[] = [];
for (let i = 0; i < iters + 2; i++) {
  red.set([1, 2]);
  const t0 = performance.now();
  await pg.allReduce(red);
  if (i >= 2) times.push((performance.now() - t0) / 1000);
}
if (pg.rank === 0) console.log(JSON.stringify({ handoffSecondsByBytes: handoff, smallAllReduceSeconds: median(times) }));
await pg.destroy();
