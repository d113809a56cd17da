// Collectives other than the ring: the latency-optimal ones for small messages (one round of
// direct exchange: every rank sends its buffer to every other and reduces what it gets in
// rank order, so all ranks compute bit-identical results) and broadcast (direct for small
// buffers, a pipelined chain for large ones).
import { allocFloat, floatDTypeOf, type FloatArray } from '../ir/dtype.js';
import { chunkRange } from './chunk.js';
import type { PendingOp } from './op.js';
import type { ReduceFn } from './reduce.js';

export function bytesOf(a: FloatArray): Uint8Array {
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
}

/**
 * All-reduce by direct exchange: n-1 messages out and in per rank, all in one round. The
 * result is written into `buf` in onComplete, after our own sends have left `buf`.
 */
export function directAllReduce(op: PendingOp, members: readonly number[], me: number, buf: FloatArray, reduce: ReduceFn): void {
  const n = members.length;
  const contributions: FloatArray[] = new Array<FloatArray>(n);
  contributions[me] = buf;
  for (let g = 0; g < n; g++) {
    if (g === me) continue;
    const tmp = allocFloat(floatDTypeOf(buf), buf.length);
    contributions[g] = tmp;
    op.recv(members[g]!, 0, bytesOf(tmp), null, null);
    op.send(members[g]!, 0, bytesOf(buf));
  }
  op.onComplete = () => {
    // Same order on every rank: ((x0 op x1) op x2) ...
    const acc = contributions[0]!.slice();
    for (let g = 1; g < n; g++) reduce(acc, contributions[g]!);
    buf.set(acc);
  };
}

/** Root sends the whole buffer to each rank. */
export function directBroadcast(op: PendingOp, members: readonly number[], me: number, buf: FloatArray, root: number): void {
  if (me === root) {
    for (let g = 0; g < members.length; g++) if (g !== root) op.send(members[g]!, 0, bytesOf(buf));
  } else {
    op.recv(members[root]!, 0, bytesOf(buf), null, null);
  }
}

/**
 * Pipelined chain root -> root+1 -> ...: each segment is forwarded as soon as it lands, so a
 * large broadcast costs about one buffer's transfer time instead of n-1.
 */
export function chainBroadcast(op: PendingOp, members: readonly number[], me: number, buf: FloatArray, root: number, segmentElems: number): void {
  const n = members.length;
  const pos = (me - root + n) % n;
  const next = pos + 1 < n ? members[(me + 1) % n]! : -1;
  const prev = members[(me - 1 + n) % n]!;
  const segments = Math.max(1, Math.ceil(buf.length / segmentElems));
  for (let k = 0; k < segments; k++) {
    const [a, b] = chunkRange(buf.length, segments, k);
    const view = bytesOf(buf.subarray(a, b));
    if (pos === 0) op.send(next, k, view);
    else op.recv(prev, k, view, null, null, next >= 0 ? () => op.send(next, k, view) : undefined);
  }
}
