// Collective times on a cluster of nodes: a ring inside the node over NVLink and a ring across
// nodes over InfiniBand, composed hierarchically as NCCL does. Every GPU has its own NIC rail
// (node bandwidth / GPUs per node), so groups running side by side do not share links.
import { EFFICIENCY } from './efficiency.js';
import type { ClusterSpec } from './specs.js';

/** A communicator: `size` ranks, `perNode` of them on each node they span. */
export interface Group {
  size: number;
  perNode: number;
}

export function intraNodeBytesPerS(c: ClusterSpec): number {
  // Vendors quote NVLink both directions together; a ring sends one way on each link.
  return (c.node.intraNodeGBs / 2) * 1e9 * EFFICIENCY.link;
}

export function interNodeBytesPerSPerGpu(c: ClusterSpec): number {
  return ((c.interNodeGbits / 8) * 1e9 * EFFICIENCY.link) / c.node.gpusPerNode;
}

/**
 * Ranks of a group whose members are `stride` apart in the global rank order share a node
 * this many at a time (Megatron orders ranks TP fastest, then DP, then PP).
 */
export function groupOf(size: number, stride: number, gpusPerNode: number): Group {
  const perNode = Math.max(1, Math.min(size, Math.floor(gpusPerNode / stride)));
  return { size, perNode };
}

/**
 * Hierarchical all-reduce of `bytes` per rank: reduce-scatter inside the node, all-reduce of
 * the 1/k shard across nodes, all-gather inside the node. Ring bandwidth term 2(n-1)/n; the
 * latency term counts ring steps inside a node and a tree's 2 log2(nodes) steps across.
 */
export function allReduceSeconds(c: ClusterSpec, g: Group, bytes: number): number {
  if (g.size <= 1 || bytes <= 0) return 0;
  const k = g.perNode;
  const nodes = g.size / k;
  let t = 0;
  if (k > 1) t += (2 * (k - 1) * bytes) / k / intraNodeBytesPerS(c) + 2 * (k - 1) * EFFICIENCY.intraNodeLatencyS;
  if (nodes > 1) {
    t += (2 * (nodes - 1) * (bytes / k)) / nodes / interNodeBytesPerSPerGpu(c);
    t += 2 * Math.ceil(Math.log2(nodes)) * c.interNodeLatencyUs * 1e-6;
  }
  return t;
}

/** All-gather or reduce-scatter: half an all-reduce (`bytes` is the full, unsharded size). */
export function allGatherSeconds(c: ClusterSpec, g: Group, bytes: number): number {
  return allReduceSeconds(c, g, bytes) / 2;
}

/** Point-to-point send between neighbouring ranks, inside a node or across nodes. */
export function sendSeconds(c: ClusterSpec, sameNode: boolean, bytes: number): number {
  if (bytes <= 0) return 0;
  return sameNode
    ? bytes / intraNodeBytesPerS(c) + EFFICIENCY.intraNodeLatencyS
    : bytes / interNodeBytesPerSPerGpu(c) + c.interNodeLatencyUs * 1e-6;
}
