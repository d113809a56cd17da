// The local layout model on programs timed at the layout's own shape: each instruction costs what
// the profile says, ranks computing at once pay the measured co-run slowdown, a profile of another
// shape is not used, and a damaged profile in a machine spec is refused naming its key.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { checkMachine, machineFromMeasurements } from '../../src/plan/calibrate.js';
import { predictLocalStepMs } from '../../src/plan/local-layout.js';
import { coRunSlowdown, type ProgramProfile } from '../../src/plan/program-profile.js';
import { oneFOneB } from '../../src/engine/pipeline/schedule.js';

const g = { nLayer: 4, nHead: 4, nEmbd: 128, blockSize: 64, vocab: 65 };
const seg = { blockForwardMs: 5, blockBackwardMs: 10, embedForwardMs: 1, embedBackwardMs: 1, headForwardMs: 0, headBackwardMs: 2 };
const profile = (coRun?: number): ProgramProfile => ({
  shape: { ...g, rows: 8 }, threads: 1,
  fused: { none: { microMs: 60, updateMs: 8 }, selective: { microMs: 55, updateMs: 9 } },
  stages: { none: seg, selective: { ...seg, blockBackwardMs: 11 }, full: { ...seg, blockBackwardMs: 15 } },
  ...(coRun ? { coRun: { ranks: 2, fused: coRun, stages: 2 * coRun } } : {}),
});
const spec = (p?: ProgramProfile) => machineFromMeasurements({ gemmGflopsByN: { 64: 8, 256: 30, 1024: 40 }, memBandwidthGBs: 10, elementwiseGBs: 2, loopbackBusbwGBs: 1, ...(p ? { programs: p } : {}) }, { name: 'box', threads: 1, memoryGB: 8 });
const layout = (dp: number, pp: number, recompute: 'none' | 'selective' | 'full' = 'none') => ({ dp, pp, v: 1, microBatches: 4, rows: 8, recompute });

test('one process: m micro-steps and the update, as profiled; another shape falls back on the rates', () => {
  const r = predictLocalStepMs(g, layout(1, 1), spec(profile()), 2);
  assert.equal(r.basis, 'profiled programs');
  assert.equal(r.ms, 4 * 60 + 8);
  const sel = predictLocalStepMs(g, layout(1, 1, 'selective'), spec(profile()), 2);
  assert.equal(sel.ms, 4 * 55 + 9);
  for (const other of [{ ...g, nEmbd: 256 }, { ...g, nLayer: 8 }]) assert.equal(predictLocalStepMs(other, layout(1, 1), spec(profile()), 2).basis, 'calibrated rates');
  assert.equal(predictLocalStepMs(g, { ...layout(1, 1), rows: 4, microBatches: 8 }, spec(profile()), 2).basis, 'calibrated rates');
});

test('a pipeline stage costs its blocks, embedding and head calls; 1F1B on 2 stages adds one stage-time of bubble', () => {
  const r = predictLocalStepMs(g, layout(1, 2, 'full'), spec(profile()), 2, undefined, oneFOneB(2, 4));
  assert.equal(r.basis, 'profiled programs');
  assert.deepEqual(r.stageMs, { forward: [2 * 5 + 1, 2 * 5], backward: [2 * 15 + 1, 2 * 15 + 2] });
  // The busiest rank computes 4 micro-batches of (forward + backward), and the step is at least
  // that plus the other stage's share of the first forward and last backward.
  assert.ok(r.parts.compute >= 4 * (11 + 31) - 1e-9, JSON.stringify(r.parts));
  assert.ok(r.ms > r.parts.compute + 10, `${r.ms}`);
  assert.equal(r.parts.stash, 0, 'the profiled calls already hold their copies');
});

test('ranks computing at once pay the measured co-run slowdown, in proportion up to the cores', () => {
  assert.equal(coRunSlowdown(profile(1.3), 'fused', 1, 2), 1);
  assert.equal(coRunSlowdown(profile(1.3), 'fused', 2, 2), 1.3);
  assert.equal(coRunSlowdown(profile(1.3), 'stages', 2, 2), 2.6);
  assert.equal(coRunSlowdown(profile(1.3), 'fused', 8, 2), 1.3, 'beyond the cores time slicing is charged apart');
  assert.equal(coRunSlowdown(undefined, 'fused', 2, 2), 1);
  const alone = predictLocalStepMs(g, layout(2, 1), spec(profile()), 2).parts.compute;
  const shared = predictLocalStepMs(g, layout(2, 1), spec(profile(1.3)), 2).parts.compute;
  assert.ok(Math.abs(shared - 1.3 * alone) < 1e-9, `${shared} vs ${alone}`);
  // Pipeline ranks computing at once pay the stage calls' slowdown: 2 ranks on 2 cores, both
  // computing in the steady state, take longer than with no co-run measured.
  const pp = (p: ProgramProfile) => predictLocalStepMs(g, layout(1, 2, 'full'), spec(p), 2, undefined, oneFOneB(2, 4)).ms;
  assert.ok(pp(profile(1.3)) > 1.5 * pp(profile()), `${pp(profile(1.3))} vs ${pp(profile())}`);
});

test('a damaged profile in a machine spec is refused naming the key', () => {
  const good = JSON.parse(JSON.stringify(spec(profile(1.2)))) as Record<string, unknown>;
  assert.equal(checkMachine(good).programs?.coRun?.stages, 2.4);
  const bad = (edit: (p: Record<string, any>) => void) => {
    const o = JSON.parse(JSON.stringify(good)) as Record<string, any>;
    edit(o.programs);
    return () => checkMachine(o, 'm.json');
  };
  assert.throws(bad((p) => delete p.stages.full), /m\.json: key 'programs\.stages\.full' must be an object/);
  assert.throws(bad((p) => (p.fused.none.microMs = -1)), /key 'programs\.fused\.none\.microMs' must be a number >= 0, got -1/);
  assert.throws(bad((p) => (p.shape.rows = 0)), /key 'programs\.shape\.rows' must be a number >= 1/);
  assert.throws(bad((p) => (p.coRun.stages = 'fast')), /key 'programs\.coRun\.stages'/);
});
