// Ring reduce-scatter and all-gather, pipelined. The buffer is split into one chunk per rank
// (chunkRange) and every chunk into K segments. In stage t each rank sends one chunk to its
// right neighbour and receives another from its left; the chunk received in stage t is the
// one sent in stage t+1, so each received segment is forwarded as soon as it has been reduced
// (or copied) instead of waiting for the whole chunk: sending, receiving and reducing overlap.
//
//   reduce-scatter stage s (0..n-2): send chunk r-s-1, receive chunk r-s-2 and reduce into it;
//     after the last stage rank r holds the full reduction of chunk r.
//   all-gather stage s (0..n-2): send chunk r-s, receive chunk r-s-1 and copy it.
// Every segment of every stage has its own part number, so frames match exactly.
import type { FloatArray } from '../ir/dtype.js';
import { chunkRange } from './chunk.js';
import type { PendingOp } from './op.js';
import type { ReduceFn } from './reduce.js';

export interface RingPlan {
  reduceScatter: boolean;
  allGather: boolean;
  reduce: ReduceFn;
  /** Largest segment, in elements of the buffer's type. */
  segmentElems: number;
}

function bytesOf(a: FloatArray): Uint8Array {
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
}

/** Issues every send and receive of the ring on `op`; the caller awaits op.start(). */
export function ring(op: PendingOp, members: readonly number[], me: number, buf: FloatArray, plan: RingPlan): void {
  const n = members.length;
  const left = members[(me - 1 + n) % n]!;
  const right = members[(me + 1) % n]!;
  const mod = (x: number) => ((x % n) + n) % n;
  let largest = 0;
  for (let c = 0; c < n; c++) {
    const [a, b] = chunkRange(buf.length, n, c);
    largest = Math.max(largest, b - a);
  }
  const segments = Math.max(1, Math.ceil(largest / plan.segmentElems));
  const stages: { send: number; recv: number; reduce: boolean }[] = [];
  if (plan.reduceScatter) for (let s = 0; s < n - 1; s++) stages.push({ send: mod(me - s - 1), recv: mod(me - s - 2), reduce: true });
  if (plan.allGather) for (let s = 0; s < n - 1; s++) stages.push({ send: mod(me - s), recv: mod(me - s - 1), reduce: false });

  const segment = (chunk: number, k: number): FloatArray => {
    const [c0, c1] = chunkRange(buf.length, n, chunk);
    const [s0, s1] = chunkRange(c1 - c0, segments, k);
    return buf.subarray(c0 + s0, c0 + s1);
  };

  // Post all receives first so that arriving segments land in place, then start sending.
  for (let t = 0; t < stages.length; t++) {
    const st = stages[t]!;
    for (let k = 0; k < segments; k++) {
      const view = segment(st.recv, k);
      const forward = t + 1 < stages.length ? () => op.send(right, (t + 1) * segments + k, bytesOf(view)) : undefined;
      op.recv(left, t * segments + k, bytesOf(view), st.reduce ? view : null, st.reduce ? plan.reduce : null, forward);
    }
  }
  if (stages.length === 0) return;
  for (let k = 0; k < segments; k++) op.send(right, k, bytesOf(segment(stages[0]!.send, k)));
}
