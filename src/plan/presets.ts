// Published model sizes and machines, so that `atscale plan --model gpt3-175b --cluster selene`
// needs no numbers typed in. Datasheet figures are dense (no 2:4 sparsity); dollar figures are
// assumed on-demand prices for comparison only: give a cluster JSON file for real quotes.
import { type ClusterSpec, type GpuSpec, type ModelSpec, PlanInputError, checkCluster } from './specs.js';
import { readFileSync } from 'node:fs';
import { checkMachine, machineToCluster } from './calibrate.js';

function gpt(name: string, layers: number, hidden: number, heads: number, seqLen: number, vocab: number, globalBatch: number): ModelSpec {
  return { name, layers, hidden, heads, seqLen, vocab, ffn: 4 * hidden, globalBatch };
}

export const MODEL_PRESETS: Record<string, ModelSpec> = {
  'gpt2-small': gpt('gpt2-small', 12, 768, 12, 1024, 50257, 512),
  'gpt2-medium': gpt('gpt2-medium', 24, 1024, 16, 1024, 50257, 512),
  'gpt2-large': gpt('gpt2-large', 36, 1280, 20, 1024, 50257, 512),
  'gpt2-xl': gpt('gpt2-xl', 48, 1600, 25, 1024, 50257, 512),
  // Turing-NLG (Microsoft, 2020): 78 layers, hidden 4256, 28 heads, GPT-2 vocabulary.
  'turing-nlg-17b': gpt('turing-nlg-17b', 78, 4256, 28, 1024, 50257, 512),
  // GPT-3 (Brown et al. 2020): batch 3.2M tokens = 1536 sequences of 2048.
  'gpt3-175b': gpt('gpt3-175b', 96, 12288, 96, 2048, 50257, 1536),
  // Megatron-Turing NLG (Smith et al. 2022): final batch 1920 sequences.
  'mt-nlg-530b': gpt('mt-nlg-530b', 105, 20480, 128, 2048, 50257, 1920),
  // Narayanan et al. 2021, Table 1, last row.
  'megatron-1t': gpt('megatron-1t', 128, 25600, 160, 2048, 51200, 3072),
  // nanoGPT's CPU shakespeare config and its default shakespeare_char config.
  'cpu-small': gpt('cpu-small', 4, 128, 4, 64, 65, 12),
  'shakespeare-char': gpt('shakespeare-char', 6, 384, 6, 256, 65, 64),
};

const V100_32GB: GpuSpec = { name: 'V100 SXM2 32GB', peakTflops: { fp16: 125, fp32: 15.7 }, memoryGB: 32, memoryGBs: 900 };
const A100_80GB: GpuSpec = { name: 'A100 SXM 80GB', peakTflops: { bf16: 312, fp16: 312, tf32: 156, fp32: 19.5 }, memoryGB: 80, memoryGBs: 2039 };
const H100_80GB: GpuSpec = { name: 'H100 SXM 80GB', peakTflops: { fp8: 1979, bf16: 989, fp16: 989, tf32: 494, fp32: 67 }, memoryGB: 80, memoryGBs: 3350 };
const H200_141GB: GpuSpec = { name: 'H200 SXM 141GB', peakTflops: { fp8: 1979, bf16: 989, fp16: 989, tf32: 494, fp32: 67 }, memoryGB: 141, memoryGBs: 4800 };

export const CLUSTER_PRESETS: Record<string, ClusterSpec> = {
  // The 2020 Azure machine built for OpenAI: 10,000 GPUs, 285,000 CPU cores, 400 Gbit/s per server.
  'azure-2020': {
    name: 'azure-2020',
    nodes: 1250,
    node: { gpusPerNode: 8, gpu: V100_32GB, intraNodeGBs: 300, cpuCoresPerNode: 228 },
    interNodeGbits: 400,
    interNodeLatencyUs: 5,
    dollarsPerGpuHour: 2.75,
    note: '10,000 V100 32GB, 285,000 CPU cores (228 per server), 400 Gbit/s InfiniBand per server',
  },
  // NVIDIA Selene: DGX A100 80GB nodes, 8 HDR InfiniBand NICs (200 Gbit/s each) per node.
  selene: {
    name: 'selene',
    nodes: 560,
    node: { gpusPerNode: 8, gpu: A100_80GB, intraNodeGBs: 600, cpuCoresPerNode: 128 },
    interNodeGbits: 1600,
    interNodeLatencyUs: 5,
    dollarsPerGpuHour: 2.0,
    note: 'DGX A100 80GB, NVLink 3 (600 GB/s per GPU), 8 x 200 Gbit/s HDR per node',
  },
  'h100-cluster': {
    name: 'h100-cluster',
    nodes: 512,
    node: { gpusPerNode: 8, gpu: H100_80GB, intraNodeGBs: 900, cpuCoresPerNode: 112 },
    interNodeGbits: 3200,
    interNodeLatencyUs: 5,
    dollarsPerGpuHour: 2.5,
    note: 'DGX H100-like nodes, NVLink 4 (900 GB/s per GPU), 8 x 400 Gbit/s NDR per node',
  },
  'h200-cluster': {
    name: 'h200-cluster',
    nodes: 512,
    node: { gpusPerNode: 8, gpu: H200_141GB, intraNodeGBs: 900, cpuCoresPerNode: 112 },
    interNodeGbits: 3200,
    interNodeLatencyUs: 5,
    dollarsPerGpuHour: 3.5,
    note: 'HGX H200 nodes, NVLink 4 (900 GB/s per GPU), 8 x 400 Gbit/s NDR per node',
  },
};

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
