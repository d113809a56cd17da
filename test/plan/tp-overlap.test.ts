// Megatron-Core's communication overlaps in the time model: Transformer Engine's userbuffers
// (--tp-comm-overlap) and the distributed optimizer's --overlap-param-gather.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { evaluate } from '../../src/plan/evaluate.js';
import { resolveLayout } from '../../src/plan/layout.js';
import { CLUSTER_PRESETS } from '../../src/plan/presets.js';
import { searchLayouts } from '../../src/plan/search.js';
import { type ClusterSpec, type ModelSpec, type TrainingSpec, checkModel } from '../../src/plan/specs.js';

const h100 = CLUSTER_PRESETS['h100-cluster']!;
// The 32B GPT of Megatron-LM's weak-scaling table: TP 8 over NVLink, 48-way data parallel.
const gpt32b: ModelSpec = checkModel({ name: 'gpt-32b', layers: 48, hidden: 7168, heads: 56, vocab: 131072, seqLen: 4096, tiedEmbeddings: false });
const layout: Partial<TrainingSpec> = { gpus: 384, tp: 8, pp: 1, globalBatch: 192, microBatch: 1, recompute: 'none', zero: 1, sequenceParallel: true };
const at = (c: ClusterSpec, extra: Partial<TrainingSpec>) => evaluate(gpt32b, c, resolveLayout(gpt32b, c, { ...layout, ...extra })).time;

test('--tp-comm-overlap hides tensor-parallel traffic behind the GEMMs, never more than the GEMMs take', () => {
  const plain = at(h100, {}), ub = at(h100, { tpCommOverlap: true });
  assert.ok(ub.tensorParallel < plain.tensorParallel / 2, `exposed TP comm ${ub.tensorParallel} s vs ${plain.tensorParallel} s without overlap`);
  assert.ok(ub.step < plain.step, `${ub.step} s vs ${plain.step} s`);
  // Chunked GEMMs re-read their weights and share SMs with communication: never cheaper.
  assert.ok(ub.gemm >= plain.gemm);
  // Over a link 100 times slower the collectives dwarf the GEMMs: overlap saves at most the
  // GEMM time it runs beside, so most of the traffic stays exposed.
  const slow: ClusterSpec = { ...h100, node: { ...h100.node, intraNodeGBs: h100.node.intraNodeGBs / 100 } };
  const slowPlain = at(slow, {}), slowUb = at(slow, { tpCommOverlap: true });
  assert.ok(slowPlain.step - slowUb.step <= slowUb.gemm, `saved ${slowPlain.step - slowUb.step} s, GEMMs ${slowUb.gemm} s`);
  assert.ok(slowUb.tensorParallel > 0.5 * slowPlain.tensorParallel, `${slowUb.tensorParallel} s of ${slowPlain.tensorParallel} s still exposed`);
  assert.ok(slowUb.step <= slowPlain.step, 'the same bytes move either way; overlap only adds cover');
  // Without tensor parallelism there is nothing to overlap.
  const tp1 = { gpus: 48, tp: 1, sequenceParallel: false };
  assert.equal(at(h100, { ...tp1, tpCommOverlap: true }).step, at(h100, tp1).step);
});

test('--overlap-param-gather hides the distributed optimizer\'s weight all-gather behind the next forward', () => {
  const plain = at(h100, {}), overlapped = at(h100, { overlapParamGather: true });
  assert.ok(overlapped.dataParallel < plain.dataParallel, `${overlapped.dataParallel} s vs ${plain.dataParallel} s`);
  assert.ok(overlapped.dataParallel > 0, 'the gradient reduce-scatter and the first bucket stay exposed');
  assert.equal(overlapped.gemm, plain.gemm);
});

test('a search asked for the overlaps loses no layout for asking, and applies them only where they can run', () => {
  const pcie: ClusterSpec = { ...h100, name: 'h100-pcie', node: { ...h100.node, intraNodeGBs: 128, intraNodeLink: 'pcie' } };
  for (const c of [h100, pcie]) {
    const plain = searchLayouts(gpt32b, c, 384, { globalBatch: 192 }, 20);
    const asked = searchLayouts(gpt32b, c, 384, { globalBatch: 192, tpCommOverlap: true, overlapParamGather: true }, 20);
    // Layouts that cannot take an overlap run without it, not out of the search.
    assert.equal(asked.evaluated, plain.evaluated, c.name);
    for (const r of asked.best) {
      const t = r.training;
      assert.equal(t.tpCommOverlap === true, c === h100 && t.tp > 1 && t.sequenceParallel, `${c.name}: TP ${t.tp}, SP ${t.sequenceParallel}`);
      assert.equal(t.overlapParamGather === true, t.zero === 1, `ZeRO ${t.zero}`);
    }
  }
});

test('the overlaps are Megatron-Core\'s: refused with DeepSpeed\'s pipeline engine and without the distributed optimizer', () => {
  const deepspeed: Partial<TrainingSpec> = { ...layout, gpus: 768, pp: 2, pipelineP2p: 'blocking' };
  assert.throws(() => resolveLayout(gpt32b, h100, { ...deepspeed, tpCommOverlap: true }), /'blocking' is DeepSpeed's pipeline engine, which has neither/);
  assert.throws(() => resolveLayout(gpt32b, h100, { ...layout, zero: 2, overlapParamGather: true }), /needs --zero 1 \(the distributed optimizer\), got --zero 2/);
});
