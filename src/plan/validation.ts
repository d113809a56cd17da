// Narayanan et al. 2021 ("Efficient Large-Scale Language Model Training on GPU Clusters
// Using Megatron-LM"), Table 1: weak scaling on Selene (DGX A100 80GB), vocabulary 51,200,
// sequence 2048, full activation recomputation. The planner must reproduce every row's
// per-GPU throughput with one model; the test and `npm run bench -- plan` both use this.
// The paper's table leaves the micro-batch, the schedule and the data-parallel implementation
// out; its artifact states them: NVIDIA/Megatron-LM examples/sc21/run_table_1.sh ("scripts
// that were used to produce the results in the Megatron paper", examples/sc21/README.md) sets
// MBS, --num-layers-per-virtual-pipeline-stage and --DDP-impl per row, and CONFIG.sh adds
// --fp16 --loss-scale 8192 and sequence 2048 for all of them.
import { type PlanResult, evaluate } from './evaluate.js';
import { resolveLayout } from './layout.js';
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
  /** run_table_1.sh MBS. */
  microBatch: number;
  /** Model chunks per GPU: layers / pp / --num-layers-per-virtual-pipeline-stage (1 when unset). */
  interleave: number;
  /** --DDP-impl: 'torch' (PyTorch DDP, all-reduce overlapped with backward) or 'local' (after it). */
  ddp: 'torch' | 'local';
}

export const TABLE1: readonly Table1Row[] = [
  { paramsB: 1.7, heads: 24, hidden: 2304, layers: 24, tp: 1, pp: 1, gpus: 32, batch: 512, tflopsPerGpu: 137, microBatch: 16, interleave: 1, ddp: 'torch' },
  { paramsB: 3.6, heads: 32, hidden: 3072, layers: 30, tp: 2, pp: 1, gpus: 64, batch: 512, tflopsPerGpu: 138, microBatch: 16, interleave: 1, ddp: 'torch' },
  { paramsB: 7.5, heads: 32, hidden: 4096, layers: 36, tp: 4, pp: 1, gpus: 128, batch: 512, tflopsPerGpu: 142, microBatch: 16, interleave: 1, ddp: 'torch' },
  { paramsB: 18.4, heads: 48, hidden: 6144, layers: 40, tp: 8, pp: 1, gpus: 256, batch: 1024, tflopsPerGpu: 135, microBatch: 8, interleave: 1, ddp: 'torch' },
  { paramsB: 39.1, heads: 64, hidden: 8192, layers: 48, tp: 8, pp: 2, gpus: 512, batch: 1536, tflopsPerGpu: 138, microBatch: 4, interleave: 1, ddp: 'local' },
  { paramsB: 76.1, heads: 80, hidden: 10240, layers: 60, tp: 8, pp: 4, gpus: 1024, batch: 1792, tflopsPerGpu: 140, microBatch: 2, interleave: 3, ddp: 'local' },
  { paramsB: 145.6, heads: 96, hidden: 12288, layers: 80, tp: 8, pp: 8, gpus: 1536, batch: 2304, tflopsPerGpu: 148, microBatch: 2, interleave: 2, ddp: 'local' },
  { paramsB: 310.1, heads: 128, hidden: 16384, layers: 96, tp: 8, pp: 16, gpus: 1920, batch: 2160, tflopsPerGpu: 155, microBatch: 1, interleave: 2, ddp: 'local' },
  { paramsB: 529.6, heads: 128, hidden: 20480, layers: 105, tp: 8, pp: 35, gpus: 2520, batch: 2520, tflopsPerGpu: 163, microBatch: 1, interleave: 3, ddp: 'local' },
  { paramsB: 1008, heads: 160, hidden: 25600, layers: 128, tp: 8, pp: 64, gpus: 3072, batch: 3072, tflopsPerGpu: 163, microBatch: 1, interleave: 1, ddp: 'local' },
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

/**
 * The layout of a row as its artifact script ran it (see the file comment), on the Megatron-LM
 * of that artifact: its pipeline transfers are synchronous exchanges (p2p_communication.py of
 * the examples/sc21 commit: batch_isend_irecv, waited on, then torch.cuda.synchronize()).
 */
export function table1Layout(row: Table1Row) {
  return {
    gpus: row.gpus, tp: row.tp, pp: row.pp, globalBatch: row.batch, microBatch: row.microBatch, interleave: row.interleave,
    recompute: 'full', dtype: 'fp16', attention: 'materialized', overlapGradReduce: row.ddp === 'torch', pipelineP2p: 'synchronous',
  } as const;
}

/**
 * Predicts one row as it was run in 2021: the script's micro-batch, schedule (1F1B, interleaved
 * where it sets virtual stages) and DDP implementation, that version's synchronous pipeline
 * exchanges, full recomputation, no sequence
 * parallelism (it came a year later), no ZeRO, fp16 mixed precision (fp16 gradients
 * all-reduced in fp16), the fused but materialized softmax (no flash attention yet).
 */
export function checkTable1Row(row: Table1Row): Table1Check {
  const m = table1Model(row);
  const c = CLUSTER_PRESETS.selene!;
  const result = evaluate(m, c, resolveLayout(m, c, table1Layout(row)));
  const paramsB = paramCount(m) / 1e9;
  return { row, paramsB, paramsErr: paramsB / row.paramsB - 1, result, tflopsErr: result.tflopsHardware / row.tflopsPerGpu - 1 };
}
