// The published-run validation table: what it covers, that every row is cited and evaluates,
// and that leave-one-source-out re-derives nothing (the model has no constant fitted to it).
// The errors themselves are reported by `npm run bench -- plan`.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { checkRun, leaveOneSourceOut, slotResidual, summarize } from '../../src/plan/published.js';
import { PUBLISHED_RUNS } from './published-runs.js';

const checks = PUBLISHED_RUNS.map(checkRun);

test('at least 30 cited runs: A100 and H100; Megatron-LM, DeepSpeed and FSDP; 1B to 1T; 8 to over 10,000 GPUs', () => {
  assert.ok(PUBLISHED_RUNS.length >= 30);
  assert.equal(new Set(PUBLISHED_RUNS.map((r) => r.id)).size, PUBLISHED_RUNS.length, 'ids are unique');
  for (const r of PUBLISHED_RUNS) {
    assert.match(r.cite, /(Table|section|README)/, `${r.id} names its table or section`);
    assert.ok(r.published > 0);
  }
  const gpus = new Set(checks.map((c) => c.result.cluster));
  const names = checks.map((c) => c.result.training.gpus);
  assert.ok(Math.min(...names) <= 8 && Math.max(...names) > 10000, `GPUs ${Math.min(...names)}..${Math.max(...names)}`);
  assert.ok([...gpus].some((g) => /a100|selene|jean/.test(g)) && [...gpus].some((g) => /h100/.test(g)));
  const fw = PUBLISHED_RUNS.map((r) => r.framework).join(' ');
  for (const f of ['Megatron-LM', 'DeepSpeed', 'FSDP']) assert.ok(fw.includes(f), f);
  const params = checks.map((c) => c.params);
  assert.ok(Math.min(...params) < 1.5e9 && Math.max(...params) > 1e12);
});

test('every row evaluates with the published layout, and our parameter count matches the source\'s within 8%', () => {
  for (const c of checks) {
    assert.ok(Number.isFinite(c.predicted) && c.predicted > 0, c.run.id);
    // Sources round ("1.7B", "about 150"); MPT's names are nominal (the 1B has 1.3B).
    if (!c.run.id.startsWith('mosaicml')) assert.ok(Math.abs(c.params / 1e9 / c.run.paramsB - 1) < 0.08, `${c.run.id}: ${(c.params / 1e9).toFixed(2)}B`);
  }
});

test('leave-one-source-out: no constant is derived from the table, so each source keeps its full-table error', () => {
  const held = leaveOneSourceOut(PUBLISHED_RUNS);
  assert.equal(held.length, new Set(PUBLISHED_RUNS.map((r) => r.source)).size);
  for (const h of held) {
    assert.equal(h.derivedConstants, 0);
    const same = summarize(checks.filter((c) => c.run.source === h.source));
    assert.equal(h.summary.meanAbs, same.meanAbs);
  }
});

test('errors against the published runs stay where the fixed constants put them (issue target: mean 5%, max 15%)', () => {
  // Both targets are met, the max narrowly: mean 4.79% over 36 rows, max 14.82%. The worst
  // rows are MT-NLG's three runs on DeepSpeed's pipeline engine, predicted 11.5-14.8% short.
  // Their measured times grow by the same ~0.19 s per micro-batch as the model's but carry
  // 32-36 of the model's pipeline slots more per step, with p - 1 = 34; BLOOM, the other
  // DeepSpeed-engine row, is 10.7 slots short with p - 1 = 11 (bench: "gap in slots").
  // Checked against DeepSpeed v0.5.4's code and found as simulated: the TrainSchedule step
  // mapping and command order, the blocking p2p calls and partitioned sends, 'type:transformer'
  // partitioning (3 layers a stage for MT-NLG, [5, 6 x 10, 5] for BLOOM), the tied-gradient,
  // data-parallel and optimizer steps after the flush; CPU syncs (tolist() on received
  // metadata, CUDA_LAUNCH_BLOCKING in BLOOM's script) reorder nothing on a GPU that runs one
  // stream in order. Every other row is within 10%. A change to the time model that makes the
  // table worse fails here.
  const s = summarize(checks);
  assert.ok(s.meanAbs <= 0.0485, `mean |error| ${(s.meanAbs * 100).toFixed(2)}%`);
  const deepSpeedPipeline = (id: string) => id.startsWith('smith2022') || id.startsWith('bigscience2022');
  for (const c of checks) assert.ok(Math.abs(c.error) <= (deepSpeedPipeline(c.run.id) ? 0.15 : 0.1), `${c.run.id}: ${(c.error * 100).toFixed(1)}%`);
  // Hopper rows (sustained-clock GEMMs, FlashAttention by generation, Megatron-Core's
  // communication overlaps) are within 10%.
  for (const c of checks.filter((x) => /h100/.test(x.result.cluster))) assert.ok(Math.abs(c.error) <= 0.1, `${c.run.id}: ${(c.error * 100).toFixed(1)}%`);
});

test('slotResidual counts what a pipelined row leaves unexplained in the model\'s own pipeline slots', () => {
  const mt = PUBLISHED_RUNS.find((r) => r.id === 'smith2022-mtnlg-280nodes')!;
  const base = slotResidual(mt);
  assert.equal(base.stages, 35);
  assert.ok(base.slot > 0 && base.slot < base.predictedStep / 100, `slot ${base.slot}`);
  // A step published exactly three slots longer than predicted is three slots off.
  assert.ok(Math.abs(slotResidual({ ...mt, published: base.predictedStep + 3 * base.slot }).slots - 3) < 1e-9);
  // The other MT-NLG rows run the same stages with other dp and micro-batch counts: same slot.
  for (const id of ['smith2022-mtnlg-350nodes', 'smith2022-mtnlg-420nodes']) {
    assert.ok(Math.abs(slotResidual(PUBLISHED_RUNS.find((r) => r.id === id)!).slot - base.slot) < 1e-9, id);
  }
  // A throughput row published at exactly the predicted throughput is no slot off.
  const bloom = PUBLISHED_RUNS.find((r) => r.id === 'bigscience2022-bloom-176b')!;
  assert.ok(Math.abs(slotResidual({ ...bloom, published: checkRun(bloom).predicted }).slots) < 1e-9);
});
