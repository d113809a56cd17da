// One activation or gradient handed from a pipeline stage to the next rank: the data is copied
// into a message with its (micro-batch, stage) tag appended, so the receiver can tell a
// mismatched order from a right one, and sent on the group's point-to-point link; the receiver
// reads it into a fresh buffer. The executor runs every handoff through here, and
// `atscale plan --calibrate` times this same path between two processes (link-probe.ts).
import type { ProcessGroup } from '../../dist/index.js';
import { allocFloat, floatDTypeOf, type FloatArray, type TrainDType } from '../../ir/dtype.js';

const TAG = 2;

/** Sends `data` tagged with (mb, stage) to group rank `peer`, in the training dtype (float32 or
 * float64: the tag's small integers are exact in both); resolves once the bytes are in the kernel. */
export function sendHandoff(g: ProcessGroup, data: FloatArray, mb: number, stage: number, peer: number): Promise<void> {
  const msg = allocFloat(floatDTypeOf(data), data.length + TAG);
  msg.set(data);
  msg[data.length] = mb;
  msg[data.length + 1] = stage;
  return g.send(msg, peer);
}

/** Receives `n` values of `dtype` and their tag from group rank `peer`. */
export async function recvHandoff(g: ProcessGroup, dtype: TrainDType, n: number, peer: number): Promise<{ data: FloatArray; mb: number; stage: number }> {
  const msg = allocFloat(dtype, n + TAG);
  await g.recv(msg, peer);
  return { data: msg.subarray(0, n), mb: msg[n]!, stage: msg[n + 1]! };
}
