// Narayanan et al. 2021 ("Efficient Large-Scale Language Model Training on GPU Clusters
// Using Megatron-LM"), Table 1: weak scaling on Selene (DGX A100 80GB), vocabulary 51,200,
// sequence 2048, full activation recomputation. The planner must reproduce every row's
// per-GPU throughput with one model; the test and `npm run bench -- plan` both use this.
import type { PlanResult } from './evaluate.js';
import { evaluateFastestMicroBatch } from './published.js';
import { paramCount } from './params-flops.js';
import { CLUSTER_PRESETS } from './presets.js';
import type { ModelSpec } from './specs.js';

export interface Table1Row {
  paramsB: number;
  heads: number;
  hidden: number;
  layers: number;
  tp: number;
  pp: number;
  gpus: number;
  batch: number;
  tflopsPerGpu: number;
}

export const TABLE1: readonly Table1Row[] = [
  { paramsB: 1.7, heads: 24, hidden: 2304, layers: 24, tp: 1, pp: 1, gpus: 32, batch: 512, tflopsPerGpu: 137 },
  { paramsB: 3.6, heads: 32, hidden: 3072, layers: 30, tp: 2, pp: 1, gpus: 64, batch: 512, tflopsPerGpu: 138 },
  { paramsB: 7.5, heads: 32, hidden: 4096, layers: 36, tp: 4, pp: 1, gpus: 128, batch: 512, tflopsPerGpu: 142 },
  { paramsB: 18.4, heads: 48, hidden: 6144, layers: 40, tp: 8, pp: 1, gpus: 256, batch: 1024, tflopsPerGpu: 135 },
  { paramsB: 39.1, heads: 64, hidden: 8192, layers: 48, tp: 8, pp: 2, gpus: 512, batch: 1536, tflopsPerGpu: 138 },
  { paramsB: 76.1, heads: 80, hidden: 10240, layers: 60, tp: 8, pp: 4, gpus: 1024, batch: 1792, tflopsPerGpu: 140 },
  { paramsB: 145.6, heads: 96, hidden: 12288, layers: 80, tp: 8, pp: 8, gpus: 1536, batch: 2304, tflopsPerGpu: 148 },
  { paramsB: 310.1, heads: 128, hidden: 16384, layers: 96, tp: 8, pp: 16, gpus: 1920, batch: 2160, tflopsPerGpu: 155 },
  { paramsB: 529.6, heads: 128, hidden: 20480, layers: 105, tp: 8, pp: 35, gpus: 2520, batch: 2520, tflopsPerGpu: 163 },
  { paramsB: 1008, heads: 160, hidden: 25600, layers: 128, tp: 8, pp: 64, gpus: 3072, batch: 3072, tflopsPerGpu: 163 },
];

export function table1Model(r: Table1Row): ModelSpec {
  return { name: `gpt-${r.paramsB}b`, layers: r.layers, hidden: r.hidden, heads: r.heads, seqLen: 2048, vocab: 51200, ffn: 4 * r.hidden, globalBatch: r.batch };
}

export interface Table1Check {
  row: Table1Row;
  paramsB: number;
  paramsErr: number;
  result: PlanResult;
  tflopsErr: number;
}

/** Micro-batches tried for a Table 1 row: the paper does not state them (see checkTable1Row). */
export const TABLE1_MICRO_BATCHES = [1, 2, 4, 8];

/**
 * Predicts one row as it was run in 2021: the fastest micro-batch that fits (the table does not
 * state it; section 3.4 of the paper picks it by trading pipeline bubble against GEMM size, as
 * the planner does here), plain 1F1B (no interleaving), full
 * recomputation, no sequence parallelism (it came a year later), no ZeRO, fp16 mixed precision
 * (fp16 gradients all-reduced in fp16), the fused but materialized softmax (no flash
 * attention yet), and Megatron's 'local' DDP, which all-reduces gradients after the backward
 * pass instead of overlapping it.
 */
export function checkTable1Row(row: Table1Row): Table1Check {
  const m = table1Model(row);
  const c = CLUSTER_PRESETS.selene!;
  const layout = { gpus: row.gpus, tp: row.tp, pp: row.pp, globalBatch: row.batch, recompute: 'full', dtype: 'fp16', attention: 'materialized', overlapGradReduce: false } as const;
  const result = evaluateFastestMicroBatch(m, c, layout, TABLE1_MICRO_BATCHES);
  const paramsB = paramCount(m) / 1e9;
  return { row, paramsB, paramsErr: paramsB / row.paramsB - 1, result, tflopsErr: result.tflopsHardware / row.tflopsPerGpu - 1 };
}
