// Published machines (and, re-exported, model sizes), so that `atscale plan --model gpt3-175b --cluster selene`
// needs no numbers typed in. Datasheet figures are dense (no 2:4 sparsity); dollar figures are
// assumed on-demand prices for comparison only: give a cluster JSON file for real quotes.
import { type ClusterSpec, type ModelSpec, type NetworkSpec, PlanInputError, checkCluster } from './specs.js';
import { readFileSync } from 'node:fs';
import { checkMachine, machineToCluster } from './calibrate.js';

import { GPUS, NVLINK_GBS } from './gpus.js';
import { MODEL_PRESETS } from './model-presets.js';

export { MODEL_PRESETS };

function cluster(
  name: string, gpu: string, nodes: number, interNodeGbits: number, network: NetworkSpec, dollarsPerGpuHour: number, note: string, cpuCoresPerNode?: number,
): ClusterSpec {
  const node: ClusterSpec['node'] = { gpusPerNode: 8, gpu: structuredClone(GPUS[gpu]!), intraNodeGBs: NVLINK_GBS[gpu]! };
  if (cpuCoresPerNode !== undefined) node.cpuCoresPerNode = cpuCoresPerNode;
  return { name, nodes, node, interNodeGbits, interNodeLatencyUs: 5, dollarsPerGpuHour, network, note };
}

const nonBlocking = (topology: NetworkSpec['topology'], nodes: number): NetworkSpec => ({ topology, fullBisectionNodes: nodes, oversubscription: 1 });

export const CLUSTER_PRESETS: Record<string, ClusterSpec> = {
  // The 2020 Azure machine built for OpenAI: 10,000 GPUs, 285,000 CPU cores, 400 Gbit/s per
  // GPU server. V100-class GPUs, 8 per server (1,250 servers, 228 cores each); the fabric's
  // shape was not published, so a non-blocking fat tree is assumed.
  'azure-2020': cluster('azure-2020', 'v100', 1250, 400, nonBlocking('fat-tree', 1250), 2.75, '10,000 V100 32GB, 285,000 CPU cores (228 per server), 400 Gbit/s InfiniBand per server', 228),
  // NVIDIA Selene: DGX A100 80GB nodes, 8 HDR InfiniBand NICs (200 Gbit/s each) per node, a
  // rail-optimised non-blocking SuperPOD fabric.
  selene: cluster('selene', 'a100-80', 560, 1600, nonBlocking('rail-optimized', 560), 2.0, 'DGX A100 80GB, NVLink 3 (600 GB/s per GPU), 8 x 200 Gbit/s HDR per node, rail-optimised', 128),
  'a100-40-cluster': cluster('a100-40-cluster', 'a100-40', 512, 1600, nonBlocking('rail-optimized', 512), 1.5, 'HGX A100 40GB nodes, 8 x 200 Gbit/s per node', 128),
  'h100-cluster': cluster('h100-cluster', 'h100', 512, 3200, nonBlocking('rail-optimized', 512), 2.5, 'DGX H100-like nodes, NVLink 4 (900 GB/s per GPU), 8 x 400 Gbit/s NDR per node', 112),
  'h200-cluster': cluster('h200-cluster', 'h200', 512, 3200, nonBlocking('rail-optimized', 512), 3.5, 'HGX H200 nodes, NVLink 4 (900 GB/s per GPU), 8 x 400 Gbit/s NDR per node', 112),
  'b200-cluster': cluster('b200-cluster', 'b200', 512, 3200, nonBlocking('rail-optimized', 512), 5.0, 'HGX B200 nodes, NVLink 5 (1.8 TB/s per GPU), 8 x 400 Gbit/s per node', 112),
  // Meta's 24K-GPU RoCE cluster of the Llama 3 paper (Dubey et al. 2024, section 3.3.1): H100
  // 80GB, 400 Gbit/s per GPU, three-layer Clos; pods of 3,072 GPUs have full bisection and the
  // aggregation layer above them is 1:7 oversubscribed.
  'meta-h100-roce': cluster('meta-h100-roce', 'h100', 3072, 3200, { topology: 'fat-tree', fullBisectionNodes: 384, oversubscription: 7 }, 2.5, 'Llama 3 RoCE cluster: 24,576 H100, 400 Gbit/s per GPU, 3,072-GPU pods, 1:7 above'),
  // Jean Zay's A100 partition that trained BLOOM (BigScience 2022): 8 A100 80GB per node, 4 x
  // 100 Gbit/s Omni-Path per node.
  'jean-zay-a100': cluster('jean-zay-a100', 'a100-80', 52, 400, nonBlocking('fat-tree', 52), 2.0, 'BLOOM: 48 (+4 spare) nodes of 8 A100 80GB, 4 x 100 Gbit/s Omni-Path per node', 64),
  // MosaicML's benchmark machines (llm-foundry scripts/train/benchmarking/README.md): A100 nodes
  // "with 1600 Gbps node-node interconnect (RoCE)"; the H100 table states no fabric, and
  // 8 x 400 Gbit/s (the standard HGX H100 build) is assumed.
  'mosaic-a100-80': cluster('mosaic-a100-80', 'a100-80', 64, 1600, nonBlocking('rail-optimized', 64), 2.0, 'A100 80GB, 1600 Gbit/s RoCE per node'),
  'mosaic-a100-40': cluster('mosaic-a100-40', 'a100-40', 64, 1600, nonBlocking('rail-optimized', 64), 1.5, 'A100 40GB, 1600 Gbit/s RoCE per node'),
  'mosaic-h100': cluster('mosaic-h100', 'h100', 64, 3200, nonBlocking('rail-optimized', 64), 2.5, 'H100 80GB, 3200 Gbit/s per node (assumed)'),
};

/**
 * The cluster grown (or given) to `nodes` nodes of the same kind. Nodes beyond a preset keep
 * its node, NICs and topology: full-bisection domains of the same size, the same
 * oversubscription above them. Returns a new spec whose note states that topology.
 */
export function scaleCluster(c: ClusterSpec, nodes: number): ClusterSpec {
  if (!Number.isInteger(nodes) || nodes < 1) throw new PlanInputError(`--nodes must be a whole number of at least 1, got ${nodes}`);
  const out = structuredClone(c);
  out.nodes = nodes;
  const net = out.network ?? { topology: 'fat-tree', fullBisectionNodes: c.nodes, oversubscription: 1 };
  out.network = net;
  const domains = Math.ceil(nodes / net.fullBisectionNodes);
  out.note = `${c.name} scaled to ${nodes} nodes x ${c.node.gpusPerNode} GPUs = ${nodes * c.node.gpusPerNode}: ${net.topology}, ` +
    `${domains} full-bisection domain(s) of ${net.fullBisectionNodes} nodes, ${net.oversubscription}:1 above them, ${c.interNodeGbits} Gbit/s per node`;
  return out;
}

export function modelPreset(name: string): ModelSpec {
  const m = MODEL_PRESETS[name];
  if (!m) {
    throw new PlanInputError(`unknown model '${name}'. Presets: ${Object.keys(MODEL_PRESETS).join(', ')}; or give --layers, --hidden, --heads, --vocab, --seq-len`);
  }
  return { ...m };
}

/** A preset name, or a path to a JSON file holding a ClusterSpec. */
export function loadCluster(nameOrPath: string): ClusterSpec {
  const preset = CLUSTER_PRESETS[nameOrPath];
  if (preset) return structuredClone(preset);
  if (!nameOrPath.endsWith('.json')) {
    throw new PlanInputError(`unknown cluster '${nameOrPath}'. Presets: ${Object.keys(CLUSTER_PRESETS).join(', ')}; or a path to a .json file`);
  }
  let text: string;
  try {
    text = readFileSync(nameOrPath, 'utf8');
  } catch (e) {
    throw new PlanInputError(`cannot read cluster file ${nameOrPath}: ${(e as Error).message}`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new PlanInputError(`cluster file ${nameOrPath} is not valid JSON: ${(e as Error).message}`);
  }
  if (typeof json !== 'object' || json === null) throw new PlanInputError(`cluster file ${nameOrPath} must hold a JSON object`);
  const o = json as Record<string, unknown>;
  // A machine spec written by `atscale plan --calibrate` is a one-node cluster too.
  if (o.kind === 'atscale-machine') return machineToCluster(checkMachine(o, nameOrPath));
  return checkCluster(json as Record<string, unknown>, nameOrPath);
}
