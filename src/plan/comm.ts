// Collective times over a cluster's topology, by algorithm as NCCL runs them: rings inside a
// node over NVLink, rings or trees across nodes over each GPU's own NIC rail, composed
// hierarchically (reduce-scatter in the node, the 1/k shard across nodes, all-gather in the
// node). Each link has a latency and a bandwidth; bandwidth is the line rate times the
// bus-bandwidth efficiency nccl-tests reach on it:
// - NVLink: nccl-tests all_reduce on 8 A100 SXM reaches about 230-240 GB/s bus bandwidth of
//   the 300 GB/s one-way NVLink 3 (NVIDIA DGX A100 user guide / nccl-tests reports): 0.78;
//   DGX H100 reaches about 360-370 GB/s of 450 without NVLS: 0.8. 0.78 is taken for both.
// - PCIe (GPUs without NVLink): 8 x H100 PCIe reach 35-45 GB/s all_reduce bus bandwidth of
//   Gen5 x16's 64 GB/s each way (Alaya NeW, "NCCL-tests in practice", reference busbw table,
//   2026): 40 / 64 = 0.625. A PCIe hop's latency is NCCL's own figure for its ring with the
//   Simple protocol over PCI (src/graph/tuning.cc, hwLat): 5.7 us. NVLink hops keep the
//   planner's 2 us, which lies between NCCL's LL128 (1.9 us) and Simple (3.4 us) figures.
// - InfiniBand / RoCE: multi-node all_reduce on DGX A100 with 8 x 200 Gbit/s HDR reaches about
//   185-190 GB/s bus bandwidth of the 200 GB/s the NICs carry (NVIDIA SuperPOD reference
//   architecture, nccl-tests): 0.92.
// Traffic that leaves a full-bisection domain (a leaf, a pod) shares the oversubscribed
// uplinks: its bandwidth is divided by the oversubscription.
import { EFFICIENCY } from './efficiency.js';
import type { ClusterSpec } from './specs.js';

export const LINK_EFFICIENCY = { nvlink: 0.78, pcie: 0.625, network: 0.92 };
const PCIE_HOP_LATENCY_S = 5.7e-6;

/** A communicator: `size` ranks, `perNode` of them on each node they span. */
export interface Group {
  size: number;
  perNode: number;
}

export function intraNodeBytesPerS(c: ClusterSpec): number {
  // Vendors quote NVLink and PCIe both directions together; a ring sends one way on each link.
  return (c.node.intraNodeGBs / 2) * 1e9 * LINK_EFFICIENCY[c.node.intraNodeLink ?? 'nvlink'];
}

/** One hop's latency between GPUs of a node, over its link type. */
export function intraNodeLatencySeconds(c: ClusterSpec): number {
  return c.node.intraNodeLink === 'pcie' ? PCIE_HOP_LATENCY_S : EFFICIENCY.intraNodeLatencyS;
}

/** One GPU's share of its node's NICs (its rail), after oversubscription if the group of
 * `nodes` nodes spans more than one full-bisection domain. */
export function interNodeBytesPerSPerGpu(c: ClusterSpec, nodes = 2): number {
  const line = ((c.interNodeGbits / 8) * 1e9 * LINK_EFFICIENCY.network) / c.node.gpusPerNode;
  const net = c.network;
  if (!net || nodes <= net.fullBisectionNodes) return line;
  return line / net.oversubscription;
}

/**
 * Ranks of a group whose members are `stride` apart in the global rank order share a node
 * this many at a time (Megatron orders ranks TP fastest, then CP, DP, PP).
 */
export function groupOf(size: number, stride: number, gpusPerNode: number): Group {
  const perNode = Math.max(1, Math.min(size, Math.floor(gpusPerNode / stride)));
  return { size, perNode };
}

/** Ring across n participants moving `bytes` per rank for an all-reduce: 2(n-1)/n of it. */
function ring(n: number, bytes: number, bw: number, latency: number): number {
  return (2 * (n - 1) * bytes) / n / bw + 2 * (n - 1) * latency;
}

/** NCCL's double binary tree: the full message up and down, pipelined; log2 n latency. */
function tree(n: number, bytes: number, bw: number, latency: number): number {
  return (2 * bytes) / bw + 2 * Math.ceil(Math.log2(n)) * latency;
}

/**
 * Hierarchical all-reduce of `bytes` per rank: reduce-scatter inside the node, all-reduce of
 * the 1/k shard across nodes on each GPU's rail (ring or tree, whichever is faster, as NCCL
 * picks by size), all-gather inside the node.
 */
export function allReduceSeconds(c: ClusterSpec, g: Group, bytes: number): number {
  if (g.size <= 1 || bytes <= 0) return 0;
  const k = g.perNode;
  const nodes = g.size / k;
  let t = 0;
  if (k > 1) t += ring(k, bytes, intraNodeBytesPerS(c), intraNodeLatencySeconds(c));
  if (nodes > 1) {
    const bw = interNodeBytesPerSPerGpu(c, nodes);
    const lat = c.interNodeLatencyUs * 1e-6;
    t += Math.min(ring(nodes, bytes / k, bw, lat), tree(nodes, bytes / k, bw, lat));
  }
  return t;
}

/** All-gather or reduce-scatter: half an all-reduce (`bytes` is the full, unsharded size). */
export function allGatherSeconds(c: ClusterSpec, g: Group, bytes: number): number {
  return allReduceSeconds(c, g, bytes) / 2;
}

/**
 * All-to-all of `bytes` per rank (expert dispatch or combine): each rank keeps 1/n and sends
 * the rest; the part for ranks on other nodes leaves through the GPU's NIC rail.
 */
export function allToAllSeconds(c: ClusterSpec, g: Group, bytes: number): number {
  if (g.size <= 1 || bytes <= 0) return 0;
  const n = g.size, k = g.perNode;
  const local = (bytes * (k - 1)) / n / intraNodeBytesPerS(c);
  const nodes = n / k;
  const remote = nodes > 1 ? (bytes * (n - k)) / n / interNodeBytesPerSPerGpu(c, nodes) + c.interNodeLatencyUs * 1e-6 * Math.min(n - k, 8) : 0;
  return Math.max(local, remote) + intraNodeLatencySeconds(c) * Math.min(k, 8);
}

/** Point-to-point send between neighbouring ranks, inside a node or across nodes. */
export function sendSeconds(c: ClusterSpec, sameNode: boolean, bytes: number): number {
  if (bytes <= 0) return 0;
  return sameNode
    ? bytes / intraNodeBytesPerS(c) + intraNodeLatencySeconds(c)
    : bytes / interNodeBytesPerSPerGpu(c) + c.interNodeLatencyUs * 1e-6;
}
