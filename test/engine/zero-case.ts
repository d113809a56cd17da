// The training run the ZeRO tests repeat with 1, 2 and 4 ranks: a small but real GPT (the
// cpu-small shape, shrunk to 2 layers x 64 wide so that 20 steps take seconds), a fixed corpus,
// a DeepSpeed config, and the batches each rank draws. Shared by the test and its workers.
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { GPTConfig } from '../../src/models/config.js';
import type { LanguageModel } from '../../src/models/model.js';
import { createModel, type Architecture } from '../../src/models/registry.js';
import { ShardedBatchSampler } from '../../src/data/batch_sampler.js';
import { Rng } from '../../src/tensor/rng.js';
import type { MicroBatch } from '../../src/engine/trainer.js';

export const MODEL: Partial<GPTConfig> = { nLayer: 2, nHead: 2, nEmbd: 64, blockSize: 32, vocabSize: 65, dropout: 0, bias: false };
/** The same run with a Llama-family model: grouped-query attention, rope scaling, Qwen2 biases. */
export const LLAMA_MODEL: Architecture = {
  family: 'qwen2', nLayer: 2, nHead: 4, nKvHead: 2, nEmbd: 64, intermediateSize: 128, blockSize: 32, vocabSize: 65, qkvBias: true,
  ropeScaling: { factor: 8, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositionEmbeddings: 16 },
};
export const SEQ = 32;
export const WORKER = fileURLToPath(new URL('./zero-worker.js', import.meta.url));

export interface ZeroCase {
  stage: number;
  world: number;
  /** Global rows per micro-step (all ranks together). */
  globalMicro: number;
  gas: number;
  steps: number;
  seed: number;
  reduceBucketSize?: number;
  /** Save after this many steps, resume a fresh trainer there and check it repeats the losses. */
  checkpointAt?: number;
  ckptDir?: string;
  /** The model (default: the GPT above). */
  arch?: Architecture;
}

export function modelOf(c: ZeroCase): LanguageModel {
  return createModel(c.arch ?? MODEL);
}

export function dsConfig(c: ZeroCase): object {
  return {
    train_batch_size: c.globalMicro * c.gas,
    gradient_accumulation_steps: c.gas,
    optimizer: { type: 'AdamW', params: { lr: 3e-3, betas: [0.9, 0.99], eps: 1e-8, weight_decay: 0.1 } },
    scheduler: { type: 'WarmupCosineLR', params: { total_num_steps: c.steps, warmup_num_steps: 2, cos_min_ratio: 0.1 } },
    gradient_clipping: 1.0,
    zero_optimization: { stage: c.stage, ...(c.reduceBucketSize ? { reduce_bucket_size: c.reduceBucketSize, allgather_bucket_size: c.reduceBucketSize } : {}), overlap_comm: true },
    steps_per_print: 10,
  };
}

/** Tiny Shakespeare as byte-valued chars mapped into 65 ids when present, else a patterned text. */
export function corpus(): Int32Array {
  const path = fileURLToPath(new URL('../../../../shared/data/tinyshakespeare.txt', import.meta.url));
  const text = existsSync(path) ? readFileSync(path, 'utf8').slice(0, 100_000) : Array.from({ length: 4000 }, (_, i) => `line ${i % 97} of the test text; `).join('\n');
  const chars = [...new Set(text)].sort();
  const id = new Map(chars.map((ch, i) => [ch, i % 65]));
  return Int32Array.from(text, (ch) => id.get(ch)!);
}

/** Rank `rank`'s micro-batches of each step (world 1: the whole global batch). */
export function* rankBatches(c: ZeroCase, tokens: Int32Array, rank: number, world: number): Generator<MicroBatch[]> {
  const sampler = new ShardedBatchSampler(tokens, SEQ, c.globalMicro, rank, world, new Rng(c.seed));
  for (;;) yield Array.from({ length: c.gas }, () => sampler.next());
}
