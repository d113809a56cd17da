// Training memory estimated before anything is allocated, with the planner's formulas
// (plan/memory.ts: ZeRO's model states for fp32 training, Korthikanti et al.'s activations),
// so that `--n-embd 2048 --n-layer 24` or `--n-layer 100000` is refused with the figures
// instead of growing until the machine swaps or the process dies. The trainers here keep a
// second copy of params and both Adam moments (double buffering, step/fused.ts) and an
// AdamW decay mask; those are counted as "engine buffers" beside the planner's terms.
import { totalmem } from 'node:os';
import { localRanks } from '../launch/worker-env.js';
import { modelStateBytes, layerActivationBytes, GIB } from '../plan/memory.js';
import type { ModelSpec, TrainingSpec } from '../plan/specs.js';
import type { LanguageModel } from '../models/model.js';
import { FlatLayout } from '../nn/flat.js';

/** The sizes the estimate needs (GPT-2 or Llama family alike). */
export interface SizedModel {
  nLayer: number;
  nHead: number;
  nEmbd: number;
  blockSize: number;
  vocabSize: number;
  /** Exact parameter count. */
  params: number;
}

/** Sizes of a built (not yet allocated) model: its dims and its flat layout's length. */
export function sizesOf(model: LanguageModel): SizedModel {
  const d = model.dims;
  return { nLayer: d.nLayer, nHead: d.nHead, nEmbd: d.nEmbd, blockSize: d.blockSize, vocabSize: d.vocabSize, params: new FlatLayout(model).size };
}

export interface MemoryEstimate {
  params: number;
  grads: number;
  optimizer: number;
  engineBuffers: number;
  activations: number;
  total: number;
  /** Parameters of the model (exact count). */
  paramCount: number;
}

export class MemoryLimitError extends Error {
  override name = 'MemoryLimitError';
}

/** Bytes per process for one data-parallel rank of `world` at ZeRO `stage` (0: replicated). */
export function estimateTrainingMemory(c: SizedModel, microBatch: number, world = 1, stage = 0): MemoryEstimate {
  const P = c.params;
  const m: ModelSpec = { name: 'atscale', layers: c.nLayer, hidden: c.nEmbd, heads: c.nHead, seqLen: c.blockSize, vocab: c.vocabSize, ffn: 4 * c.nEmbd };
  const t: TrainingSpec = {
    gpus: world, globalBatch: microBatch * world, microBatch, seqLen: c.blockSize, dtype: 'fp32', tp: 1, pp: 1, dp: world,
    interleave: 1, zero: stage as 0 | 1 | 2 | 3, recompute: 'none', sequenceParallel: false, tokens: 0,
    // atscale's graphs materialise the T x T attention scores (no fused kernel), so the
    // attention core counts.
    attention: 'materialized',
  } as TrainingSpec;
  const per = modelStateBytes(t);
  const shard = (from: number) => (stage >= from ? world : 1);
  const params = (P * per.params) / shard(3);
  const grads = (P * per.grads) / shard(2);
  const optimizer = (P * per.optimizer) / shard(1);
  // Second buffers of params and moments, plus the decay mask (sharded like the moments).
  const engineBuffers = params + optimizer + (P * 4) / shard(1);
  // Every layer's saved activations, plus the fp32 logits and their gradient.
  const activations = layerActivationBytes(m, t) * c.nLayer + 2 * 4 * c.blockSize * microBatch * c.vocabSize;
  const total = params + grads + optimizer + engineBuffers + activations;
  return { params, grads, optimizer, engineBuffers, activations, total, paramCount: P };
}

// Three significant figures, so a small model's estimate does not print as 0.00 GiB.
const gb = (x: number) => `${x / GIB >= 100 ? (x / GIB).toFixed(0) : Number((x / GIB).toPrecision(3))} GiB`;

export function formatEstimate(e: MemoryEstimate): string {
  return `params ${gb(e.params)} + grads ${gb(e.grads)} + optimizer ${gb(e.optimizer)} + engine buffers ${gb(e.engineBuffers)} + activations ${gb(e.activations)} = ${gb(e.total)} for ${e.paramCount.toLocaleString('en-US')} parameters`;
}

/** The budget one process may use: --max-memory-gb, else this machine's memory split among
 *  the ranks the launcher started on it (LOCAL_WORLD_SIZE). */
export function memoryBudgetBytes(maxMemoryGb?: number): { bytes: number; source: string } {
  if (maxMemoryGb !== undefined) return { bytes: maxMemoryGb * GIB, source: `--max-memory-gb ${maxMemoryGb}` };
  const ranks = localRanks();
  const bytes = totalmem() / ranks;
  return { bytes, source: ranks > 1 ? `this machine's ${gb(totalmem())} shared by ${ranks} local ranks` : `this machine's ${gb(totalmem())}` };
}

/** Throws MemoryLimitError, with the figures and what to change, when the estimate exceeds the budget. */
export function checkTrainingMemory(c: SizedModel, microBatch: number, opts: { world?: number; stage?: number; maxMemoryGb?: number; itemBytes?: number } = {}): MemoryEstimate {
  const e32 = estimateTrainingMemory(c, microBatch, opts.world ?? 1, opts.stage ?? 0);
  // float64 training (--dtype float64) holds every tensor at twice the width.
  const k = (opts.itemBytes ?? 4) / 4;
  const e = k === 1 ? e32 : { ...e32, params: k * e32.params, grads: k * e32.grads, optimizer: k * e32.optimizer, engineBuffers: k * e32.engineBuffers, activations: k * e32.activations, total: k * e32.total };
  const budget = memoryBudgetBytes(opts.maxMemoryGb);
  if (e.total > budget.bytes) {
    throw new MemoryLimitError(
      `training would need about ${gb(e.total)} per process (${formatEstimate(e)}), more than ${budget.source} allows (${gb(budget.bytes)}); ` +
        'use a smaller --n-layer/--n-embd/--block-size/--batch-size, more ranks with ZeRO, or raise --max-memory-gb if the estimate is wrong',
    );
  }
  return e;
}
