// The vocabulary-parallel ends of the model in the time model: the loss (Megatron's unfused
// fp32 cross-entropy against a single-kernel one) and the embedding's and output layer's
// tensor-parallel collectives.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { evaluate } from '../../src/plan/evaluate.js';
import { resolveLayout } from '../../src/plan/layout.js';
import { CLUSTER_PRESETS, MODEL_PRESETS } from '../../src/plan/presets.js';
import { type ModelSpec, type TrainingSpec, checkModel } from '../../src/plan/specs.js';

const h100 = CLUSTER_PRESETS['h100-cluster']!;

const share = (m: ModelSpec, layout: Partial<TrainingSpec>) => {
  const step = (crossEntropy: 'unfused' | 'fused') => evaluate(m, h100, resolveLayout(m, h100, { ...layout, crossEntropy })).time;
  const unfused = step('unfused'), fused = step('fused');
  return { unfused, fused, share: (unfused.step - fused.step) / unfused.step };
};

test('a small model with a large vocabulary pays for the unfused loss; a 175B model split 8 ways barely does', () => {
  // 24 layers of width 2048 under a 131,072-token vocabulary (Megatron-Core's 1.7B GPT).
  const small = checkModel({ name: 'gpt-1.7b', layers: 24, hidden: 2048, heads: 16, vocab: 131072, seqLen: 4096, tiedEmbeddings: false });
  const s = share(small, { gpus: 8, globalBatch: 32, microBatch: 4, recompute: 'none' });
  assert.ok(s.unfused.elementwise > s.fused.elementwise);
  assert.equal(s.unfused.gemm, s.fused.gemm, 'the loss kernels are memory-bound; the GEMMs do not change');
  assert.ok(s.share > 0.03 && s.share < 0.2, `unfused loss ${(s.share * 100).toFixed(1)}% of the step`);
  const gpt3 = { ...MODEL_PRESETS['gpt3-175b']! };
  const big = share(gpt3, { gpus: 1024, tp: 8, pp: 16, globalBatch: 1536 });
  assert.ok(big.share >= 0 && big.share < 0.01, `${(big.share * 100).toFixed(2)}% of a GPT-3 step`);
});

test('the embedding and the output layer add one tensor-parallel all-reduce each, half of a layer\'s four', () => {
  const gpt = (layers: number) => checkModel({ name: `gpt-${layers}`, layers, hidden: 4096, heads: 32, vocab: 51200, seqLen: 2048 });
  const comm = (layers: number, vocab = 51200) => {
    const m = { ...gpt(layers), vocab };
    return evaluate(m, h100, resolveLayout(m, h100, { gpus: 8, tp: 8, globalBatch: 8, recompute: 'none' })).time.tensorParallel;
  };
  const perLayer = comm(2) - comm(1);
  const ends = comm(1) - perLayer;
  assert.ok(perLayer > 0);
  assert.ok(Math.abs(ends / perLayer - 0.5) < 1e-9, `ends ${ends} s against ${perLayer} s per layer`);
  // They carry the hidden state, not the logits: the vocabulary does not change them.
  assert.equal(comm(1, 4 * 51200), comm(1));
});
