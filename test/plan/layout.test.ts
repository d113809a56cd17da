import { test } from 'node:test';
import assert from 'node:assert/strict';
import { evaluate } from '../../src/plan/evaluate.js';
import { resolveLayout } from '../../src/plan/layout.js';
import { CLUSTER_PRESETS, MODEL_PRESETS, loadCluster, modelPreset, scaleCluster } from '../../src/plan/presets.js';
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
  const tiny = checkModel({ layers: 4, hidden: 64, heads: 4, vocab: 100, seqLen: 64, globalBatch: 8 });
  fails(() => resolveLayout(tiny, selene, { gpus: 8, tp: 1, pp: 8 }), /layers 4 cannot fill pp x interleave = 8 x 1 = 8 stages unevenly: .*\(4 \+ 2\) \/ 8 = 0\.75 per stage/);
  const azure = CLUSTER_PRESETS['azure-2020']!;
  fails(() => evaluate(gpt3(), azure, resolveLayout(gpt3(), azure, { gpus: 1024, tp: 8, pp: 16, dtype: 'bf16' })), /dtype 'bf16' is not supported by V100 SXM2 32GB \(it has: fp16, fp32\)/);
  // Every preset round-trips through the JSON checker.
  for (const p of Object.values(CLUSTER_PRESETS)) assert.deepEqual(checkCluster(JSON.parse(JSON.stringify(p))), p);
});

test('uneven pipeline splits: embedding and output count as a layer on the first and last stage', () => {
  // BLOOM: 70 layers on 12 stages (Megatron-DeepSpeed's 'type:transformer|embedding' partition).
  const bloom = checkModel({ layers: 70, hidden: 14336, heads: 112, vocab: 250880, seqLen: 2048, globalBatch: 2048 });
  const t = resolveLayout(bloom, selene, { gpus: 384, tp: 4, pp: 12, microBatch: 2 });
  assert.deepEqual(t.stageLayers, [5, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 5]);
  // Llama 3 405B: 126 layers on 16 stages, one fewer on the first and the last (Dubey et al. 2024).
  const l405 = modelPreset('llama3-405b');
  assert.deepEqual(resolveLayout(l405, selene, { gpus: 1024, tp: 8, pp: 16, globalBatch: 64 }).stageLayers, [7, ...new Array(14).fill(8), 7]);
  // Divisible counts split evenly, as Megatron does.
  assert.deepEqual(resolveLayout(gpt3(), selene, { gpus: 1024, tp: 8, pp: 16 }).stageLayers, new Array(16).fill(6));
  fails(() => resolveLayout(bloom, selene, { gpus: 384, tp: 4, pp: 12, microBatch: 2, stageLayers: [6, 6] }), /stage layers \[6, 6\] must be 12 whole numbers .* they add up to 12/);
});

test('new options: bad input names the option and shows the arithmetic', () => {
  fails(() => checkModel({ layers: 4, hidden: 512, heads: 8, kvHeads: 3, vocab: 10, seqLen: 8 }), /key 'kvHeads' \(3\) must divide 'heads' \(8\): 8 \/ 3 = 2\.67/);
  const gqa = modelPreset('llama3-8b');
  fails(() => resolveLayout({ ...gqa, kvHeads: 4 }, selene, { gpus: 8, tp: 8, globalBatch: 8 }), /kv-heads 4 are not divisible by tp 8 \(4 \/ 8 = 0\.50\)/);
  fails(() => resolveLayout(gqa, selene, { gpus: 64, tp: 8, cp: 3, globalBatch: 8, seqLen: 8192 }), /--gpus 64 is not divisible by tp x cp x pp = 8 x 3 x 1 = 24/);
  fails(() => resolveLayout(gqa, selene, { gpus: 48, tp: 8, cp: 3, globalBatch: 8, seqLen: 8000 }), /seq-len 8000 is not divisible by 2 x cp = 6/);
  fails(() => resolveLayout(gqa, selene, { gpus: 64, tp: 8, ep: 2, globalBatch: 8 }), /--ep 2 needs a mixture-of-experts model/);
  const mix = modelPreset('mixtral-8x7b');
  fails(() => resolveLayout(mix, selene, { gpus: 64, tp: 8, ep: 3, globalBatch: 24 }), /experts 8 are not divisible by ep 3/);
  fails(() => resolveLayout(mix, selene, { gpus: 16, tp: 8, ep: 4, globalBatch: 8 }), /ep 4 must divide dp x cp = 2 x 1 = 2/);
  fails(() => checkModel({ layers: 4, hidden: 64, heads: 4, vocab: 10, seqLen: 8, moe: { experts: 4, topK: 8 } }), /'topK' \(8\) cannot exceed 'experts' \(4\)/);
  fails(() => checkModel({ layers: 4, hidden: 64, heads: 4, vocab: 10, seqLen: 8, moe: { experts: 4, topK: 2, capacityFactor: 0.5 } }), /'capacityFactor' \(0\.5\) must be at least 1/);
  fails(() => resolveLayout(gpt3(), selene, { gpus: 1024, tp: 8, pp: 16, schedule: 'interleaved' }), /interleaved schedule needs --interleave 2 or more/);
  fails(() => resolveLayout(gpt3(), selene, { gpus: 1024, tp: 8, pp: 16, interleave: 2, schedule: 'zero-bubble' }), /--interleave 2 runs the interleaved schedule/);
  fails(() => resolveLayout(gpt3(), selene, { gpus: 8192, tp: 8, pp: 16 }), /--gpus 8192 is more than cluster selene has: 560 nodes x 8 GPUs = 4480; give --nodes 1024/);
  fails(() => scaleCluster(selene, 0), /--nodes must be a whole number of at least 1, got 0/);
  const c = structuredClone(selene) as unknown as Record<string, unknown>;
  c.network = { topology: 'torus', fullBisectionNodes: 4, oversubscription: 1 };
  fails(() => checkCluster(c), /key 'topology' must be 'rail-optimized' or 'fat-tree', got "torus"/);
  c.network = { topology: 'fat-tree', fullBisectionNodes: 4, oversubscription: 0.5 };
  fails(() => checkCluster(c), /key 'oversubscription' is down:up bandwidth and must be at least 1/);
});

test('any cluster size: a preset grows to more nodes with its topology, and oversubscription slows what leaves a pod', () => {
  const big = scaleCluster(CLUSTER_PRESETS['h100-cluster']!, 1536);
  assert.equal(big.nodes * big.node.gpusPerNode, 12288);
  assert.match(big.note!, /12288: rail-optimized, 3 full-bisection domain\(s\) of 512 nodes, 1:1 above them|1536 nodes x 8 GPUs = 12288/);
  const m = modelPreset('llama3-70b');
  const lay = { gpus: 12288, tp: 8, pp: 8, globalBatch: 1536, interleave: 2, recompute: 'selective' as const, sequenceParallel: true, zero: 1 as const };
  const flat = evaluate(m, big, resolveLayout(m, big, lay));
  // The DP group spans 192 nodes: with 32-node pods and 4:1 above them its reduce slows.
  const over = { ...big, network: { ...big.network!, fullBisectionNodes: 32, oversubscription: 4 } };
  const slow = evaluate(m, over, resolveLayout(m, over, lay));
  assert.ok(slow.time.dataParallel > flat.time.dataParallel, `${slow.time.dataParallel} vs ${flat.time.dataParallel}`);
  // Every GPU of the catalogue has per-precision peaks; the Azure 2020 machine is V100-class.
  const az = CLUSTER_PRESETS['azure-2020']!;
  assert.equal(az.node.gpu.peakTflops.fp16, 125);
  assert.equal(az.nodes * az.node.gpusPerNode, 10000);
  assert.equal(az.interNodeGbits, 400);
});

test('pipeline p2p: an unknown mode names the four; DeepSpeed partitioned slices cost less than whole tensors, more than async scatter-gather; Megatron 2021 synchronous exchanges sit between', () => {
  fails(() => resolveLayout(gpt3(), selene, { gpus: 1024, tp: 8, pp: 16, pipelineP2p: 'broadcast' as never }), /pipeline p2p must be one of scatter-gather, synchronous, blocking, blocking-full.*got 'broadcast'/);
  fails(() => resolveLayout(gpt3(), selene, { gpus: 1024, tp: 8, pp: 16, interleave: 2, pipelineP2p: 'blocking' }), /DeepSpeed's pipeline engine, whose TrainSchedule has no interleaving; give --interleave 1, got 2/);
  fails(() => resolveLayout(gpt3(), selene, { gpus: 1024, tp: 8, pp: 16, schedule: 'zero-bubble', pipelineP2p: 'synchronous' }), /pipeline p2p 'synchronous' models a framework's own 1F1B.*--schedule zero-bubble/);
  const step = (pipelineP2p: 'scatter-gather' | 'synchronous' | 'blocking' | 'blocking-full') =>
    evaluate(gpt3(), selene, resolveLayout(gpt3(), selene, { gpus: 1024, tp: 8, pp: 16, microBatch: 1, recompute: 'full', pipelineP2p })).time;
  const sg = step('scatter-gather'), sync = step('synchronous'), part = step('blocking'), full = step('blocking-full');
  assert.ok(sg.step < part.step && part.step < full.step, `${sg.step} < ${part.step} < ${full.step}`);
  // Megatron's exchanges bundle a send and a receive into one rendezvous; DeepSpeed makes them
  // two blocking calls and gathers twice in the backward.
  assert.ok(sg.step < sync.step && sync.step < part.step, `${sg.step} < ${sync.step} < ${part.step}`);
  // Whole tensors put tp = 8 times the bytes on the wire as the 1/tp slices; the slices pay
  // back part of it in the tensor-parallel all-gathers and PartitionedTensor's copies around them.
  assert.ok(full.pipelineSend > 2 * part.pipelineSend, `${full.pipelineSend} vs ${part.pipelineSend}`);
});
