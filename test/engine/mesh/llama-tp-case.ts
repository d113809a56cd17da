// The Llama-family tensor-parallel case shared by llama-tensor-parallel.test.ts (the one-process
// reference) and llama-tp-worker.ts (one rank of the mesh): a small Qwen2-style model with
// grouped-query attention, q/k/v biases, an untied head and a vocabulary (45) that tp 2 pads,
// and a deterministic stream of micro-batches. Not a test itself.
import type { LlamaConfig } from '../../../src/models/llama-config.js';
import type { MicroBatch } from '../../../src/engine/trainer.js';
import type { AdamWConfig } from '../../../src/optim/adamw.js';

export const CONFIG: Partial<LlamaConfig> = { modelType: 'qwen2', nLayer: 2, nHead: 4, nKvHead: 2, nEmbd: 32, intermediateSize: 48, vocabSize: 45, blockSize: 16, qkvBias: true, tieWordEmbeddings: false };
export const BATCH = 4;
export const SEQ = 16;
export const MICRO = 2;
export const STEPS = 20;
export const SEED = 11;
export const OPT: AdamWConfig = { lr: 0.003, beta1: 0.9, beta2: 0.99, eps: 1e-8, weightDecay: 0.1 };
export const LR = 0.003;

/** The micro-batches of step `iter`: next token = (token * 3 + 1) mod V, from seeded starts. */
export function microBatches(iter: number): MicroBatch[] {
  return Array.from({ length: MICRO }, (_, m) => {
    const x = new Int32Array(BATCH * SEQ);
    const y = new Int32Array(BATCH * SEQ);
    for (let b = 0; b < BATCH; b++) {
      let t = (iter * 131 + m * 17 + b * 29) % 45;
      for (let s = 0; s < SEQ; s++) {
        x[b * SEQ + s] = t;
        t = (t * 3 + 1) % 45;
        y[b * SEQ + s] = t;
      }
    }
    return { x, y };
  });
}
