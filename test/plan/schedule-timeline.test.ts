// The planner's timeline of the trainer's own pipeline schedules (engine/pipeline/schedule.ts):
// each send costs one handoff on the path it lies on, interleaving pays one per chunk
// boundary, ranks that wait take no core, and a schedule that cannot finish is named.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { buildSchedule, interleaved, oneFOneB } from '../../src/engine/pipeline/schedule.js';
import { simulateTimeline, type TimelineCosts, type TimelineInstr } from '../../src/plan/schedule-timeline.js';
import { machineFromMeasurements } from '../../src/plan/calibrate.js';
import { handoffSeconds, predictLocalStepMs } from '../../src/plan/local-layout.js';

const costs = (stages: number, o: Partial<TimelineCosts> = {}): TimelineCosts => ({
  forward: new Array(stages).fill(1), backward: new Array(stages).fill(2), handoff: 0, reduceMembers: [0], reduce: 0, stepCollective: 0, update: 0, slowdown: () => 1, ...o,
});

test('every send of the schedule is one handoff; interleaving sends across each of its chunk boundaries', () => {
  for (const [p, v, m] of [[2, 1, 4], [2, 2, 4], [4, 1, 8], [4, 2, 8], [3, 1, 5]] as const) {
    const s = buildSchedule(v > 1 ? 'interleaved' : '1f1b', p, v, m);
    const sends = s.ranks.flat().filter((i) => i.op === 'send').length;
    const r = simulateTimeline(s.ranks, costs(p * v, { reduceMembers: [0, p - 1] }));
    assert.equal(r.handoffs, sends);
    // An activation and a gradient per micro-batch and boundary between virtual stages.
    assert.equal(r.handoffs, 2 * m * (p * v - 1), `p ${p} v ${v} m ${m}`);
  }
  assert.equal(simulateTimeline(interleaved(2, 2, 4).ranks, costs(4)).handoffs, 3 * simulateTimeline(oneFOneB(2, 4).ranks, costs(2)).handoffs);
});

test('a handoff is charged on the critical path: one micro-batch crosses twice at pp2 and six times at pp2 v2', () => {
  const h = 0.25;
  const one = (ranks: TimelineInstr[][], stages: number) => simulateTimeline(ranks, costs(stages, { handoff: h })).makespan - simulateTimeline(ranks, costs(stages)).makespan;
  // pp2, one micro-batch: forward to rank 1, gradient back: two handoffs in a row.
  assert.ok(Math.abs(one(oneFOneB(2, 1).ranks, 2) - 2 * h) < 1e-12);
  // With nothing to compute, the step is the chain of handoffs of a micro-batch (they overlap
  // between micro-batches): 2 (p v - 1) of them, three times as many with v = 2 at p = 2.
  const bare = (ranks: TimelineInstr[][], stages: number) => simulateTimeline(ranks, costs(stages, { handoff: h, forward: new Array(stages).fill(0), backward: new Array(stages).fill(0) })).makespan;
  assert.ok(Math.abs(bare(oneFOneB(2, 2).ranks, 2) - 2 * h) < 1e-12);
  assert.ok(Math.abs(bare(interleaved(2, 2, 2).ranks, 4) - 6 * h) < 1e-12);
});

test('ranks share cores only while they compute, and collectives wait for their last member', () => {
  const s = oneFOneB(2, 4);
  const work = 4 * (1 + 2) * 2;
  // One core: the two ranks' work is done one after the other whenever both compute, so the
  // step takes at least all of it; two cores overlap them.
  const oneCore = simulateTimeline(s.ranks, costs(2, { slowdown: (a) => a }));
  const twoCores = simulateTimeline(s.ranks, costs(2));
  assert.ok(oneCore.makespan >= work - 1e-9, `${oneCore.makespan}`);
  assert.ok(twoCores.makespan < work);
  // 1F1B at p 2, m 4 with forward 1 and backward 2: 4 x 3 of the last stage plus the first
  // stage's forward before it and backward after it.
  assert.ok(Math.abs(twoCores.makespan - (12 + 1 + 2)) < 1e-9, `${twoCores.makespan}`);
  // The reduce's members wait for the slowest, then pay its latency; the step adds its
  // collective and the update.
  const r = simulateTimeline(s.ranks, costs(2, { reduceMembers: [0, 1], reduce: 0.5, stepCollective: 0.25, update: 1 }));
  assert.ok(Math.abs(r.makespan - (15 + 0.5 + 0.25 + 1)) < 1e-9, `${r.makespan}`);
});

test('a schedule that cannot finish is named, with the rank and where it waits', () => {
  const ranks: TimelineInstr[][] = [[{ op: 'recv', kind: 'act', mb: 0, stage: 0, peer: 1 }], [{ op: 'recv', kind: 'grad', mb: 0, stage: 1, peer: 0 }]];
  assert.throws(() => simulateTimeline(ranks, costs(2)), /deadlocked: rank 0 at instruction 0 \(recv\); rank 1 at instruction 0 \(recv\)/);
});

test('the local layout model charges the calibrated handoff per send and the small all-reduce per collective', () => {
  const g = { nLayer: 4, nHead: 4, nEmbd: 128, blockSize: 64, vocab: 65 };
  const base = { gemmGflopsByN: { 64: 8, 256: 30, 1024: 40 }, memBandwidthGBs: 10, elementwiseGBs: 2, loopbackBusbwGBs: 1 };
  const about = { name: 'box', threads: 1, memoryGB: 8 };
  const quiet = machineFromMeasurements(base, about);
  const slow = machineFromMeasurements({ ...base, handoffSeconds: 0.004, handoffSecondsPerByte: 1e-9, smallAllReduceSeconds: 0.003 }, about);
  // latency + bytes x rate; without a measured latency, the loopback link's bytes alone.
  assert.ok(Math.abs(handoffSeconds(slow, 1000) - (0.004 + 1e-6)) < 1e-15);
  assert.ok(Math.abs(handoffSeconds(quiet, 1e9) - 1) < 1e-12);
  const at = (spec: typeof quiet, dp: number, pp: number, v: number) => predictLocalStepMs(g, { dp, pp, v, microBatches: 4, rows: 8, recompute: 'full' }, spec, 4, 0, pp > 1 ? buildSchedule(v > 1 ? 'interleaved' : '1f1b', pp, v, 4) : undefined);
  const [v1, v2] = [at(slow, 1, 2, 1), at(slow, 1, 2, 2)];
  assert.equal(v1.handoffs, 8);
  assert.equal(v2.handoffs, 24);
  for (const r of [v1, v2]) assert.ok(r.parts.pointToPoint > 4 && Number.isFinite(r.parts.pointToPoint), `${r.parts.pointToPoint} ms`);
  // More handoffs on the critical path with v2: its point-to-point part is the larger.
  assert.ok(v2.parts.pointToPoint > v1.parts.pointToPoint, `v2 ${v2.parts.pointToPoint} vs v1 ${v1.parts.pointToPoint}`);
  assert.ok(at(slow, 1, 2, 1).ms > at(quiet, 1, 2, 1).ms);
  // The reduce (tied embedding) and the step's norm-and-loss all-reduce: two latencies at least.
  assert.ok(v1.parts.allReduce >= 2 * 3 - 1e-9, `${v1.parts.allReduce}`);
  // Data parallelism pays the small all-reduce beside the gradients' ring.
  assert.ok(Math.abs(at(slow, 2, 1, 1).parts.allReduce - at(quiet, 2, 1, 1).parts.allReduce - 3) < 1e-9);
  assert.throws(() => at(slow, 1, 2, 1) && predictLocalStepMs(g, { dp: 1, pp: 2, v: 1, microBatches: 4, rows: 8, recompute: 'full' }, slow, 4), /timed on the schedule the trainer runs/);
});
