import { test } from 'node:test';
import assert from 'node:assert/strict';
import { evaluate } from '../../src/plan/evaluate.js';
import { resolveLayout } from '../../src/plan/layout.js';
import { CLUSTER_PRESETS, MODEL_PRESETS, loadCluster, modelPreset } from '../../src/plan/presets.js';
import { PlanInputError, checkCluster, checkModel } from '../../src/plan/specs.js';

const selene = CLUSTER_PRESETS.selene!;
const gpt3 = () => ({ ...MODEL_PRESETS['gpt3-175b']! });
const fails = (f: () => unknown, re: RegExp) => assert.throws(f, (e: unknown) => e instanceof PlanInputError && re.test(e.message));

test('degrees that do not multiply to the GPU count: the arithmetic is shown', () => {
  fails(() => resolveLayout(gpt3(), selene, { gpus: 1024, tp: 8, pp: 16, dp: 4 }), /tp x pp x dp = 8 x 16 x 4 = 512, but --gpus is 1024/);
  fails(() => resolveLayout(gpt3(), selene, { gpus: 1000, tp: 8, pp: 16 }), /--gpus 1000 is not divisible by tp x pp = 8 x 16 = 128/);
});

test('heads not divisible by tensor parallelism', () => {
  const m = checkModel({ layers: 4, hidden: 1200, heads: 12, vocab: 1000, seqLen: 128 });
  fails(() => resolveLayout(m, selene, { gpus: 8, tp: 8 }), /heads 12 are not divisible by tp 8 \(12 \/ 8 = 1\.50\)/);
});

test('global batch not divisible by micro-batch x dp', () => {
  fails(() => resolveLayout(gpt3(), selene, { gpus: 1024, tp: 8, pp: 16, globalBatch: 1000, microBatch: 2 }), /global batch 1000 is not divisible by micro-batch x dp = 2 x 8 = 16 \(1000 \/ 16 = 62\.50\)/);
});

test('bad specs name the key', () => {
  fails(() => checkModel({ layers: 4, hidden: 'big', heads: 4, vocab: 10, seqLen: 8 }), /key 'hidden' must be a number/);
  fails(() => checkModel({ layers: 4, hidden: 130, heads: 4, vocab: 10, seqLen: 8 }), /'hidden' \(130\) must be divisible by 'heads' \(4\)/);
  const c = structuredClone(selene) as unknown as Record<string, unknown>;
  (c.node as Record<string, unknown>).gpusPerNode = 0;
  fails(() => checkCluster(c), /key 'gpusPerNode' must be positive/);
  fails(() => modelPreset('gpt5'), /unknown model 'gpt5'. Presets: gpt2-small/);
  fails(() => loadCluster('nowhere'), /unknown cluster 'nowhere'/);
  fails(() => resolveLayout(gpt3(), selene, { gpus: 7, tp: 1, pp: 7 }), /layers 96 are not divisible by pp x interleave = 7 x 1 = 7/);
  const azure = CLUSTER_PRESETS['azure-2020']!;
  fails(() => evaluate(gpt3(), azure, resolveLayout(gpt3(), azure, { gpus: 1024, tp: 8, pp: 16, dtype: 'bf16' })), /dtype 'bf16' is not supported by V100 SXM2 32GB \(it has: fp16, fp32\)/);
  // Every preset round-trips through the JSON checker.
  for (const p of Object.values(CLUSTER_PRESETS)) assert.deepEqual(checkCluster(JSON.parse(JSON.stringify(p))), p);
});
