// One activation or gradient handed from a pipeline stage to the next rank: the data is copied
// into a message with its (micro-batch, stage) tag appended, so the receiver can tell a
// mismatched order from a right one, and sent on the group's point-to-point link; the receiver
// reads it into a fresh buffer. The executor runs every handoff through here, and
// `atscale plan --calibrate` times this same path between two processes (link-probe.ts).
import type { ProcessGroup } from '../../dist/index.js';

const TAG = 2;

/** Sends `data` tagged with (mb, stage) to group rank `peer`; resolves once the bytes are in the kernel. */
export function sendHandoff(g: ProcessGroup, data: Float32Array, mb: number, stage: number, peer: number): Promise<void> {
  const msg = new Float32Array(data.length + TAG);
  msg.set(data);
  msg[data.length] = mb;
  msg[data.length + 1] = stage;
  return g.send(msg, peer);
}

/** Receives `n` values and their tag from group rank `peer`. */
export async function recvHandoff(g: ProcessGroup, n: number, peer: number): Promise<{ data: Float32Array; mb: number; stage: number }> {
  const msg = new Float32Array(n + TAG);
  await g.recv(msg, peer);
  return { data: msg.subarray(0, n), mb: msg[n]!, stage: msg[n + 1]! };
}
