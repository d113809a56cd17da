// The pipeline schedules as an event timeline: against the closed forms where they exist.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { simulatePipeline, stageOrder } from '../../src/plan/pipeline-sim.js';
import type { Schedule } from '../../src/plan/specs.js';

const uniform = (schedule: Schedule, p: number, v: number, m: number, f = 1, b = 2, send = 0, w = 1) =>
  simulatePipeline({
    schedule, stages: p, chunks: v, microBatches: m,
    forward: new Array(p * v).fill(f / v), backward: new Array(p * v).fill(b / v), weightGrad: new Array(p * v).fill(w / v), send: new Array(p * v - 1).fill(send),
  });

test('1F1B and GPipe on equal stages: (m + p - 1)(F + B), the bubble is (p - 1)(F + B)', () => {
  for (const [p, m] of [[4, 8], [8, 32], [16, 16], [1, 5]] as const) {
    for (const s of ['1f1b', 'gpipe'] as const) {
      const r = uniform(s, p, 1, m);
      assert.ok(Math.abs(r.makespan - (m + p - 1) * 3) < 1e-9, `${s} p ${p} m ${m}: ${r.makespan}`);
      assert.ok(r.busy.every((x) => Math.abs(x - 3 * m) < 1e-9));
    }
  }
});

test('sends lengthen the pipeline: at least the 2(p - 1) of the fill and drain, at most one round trip per slot', () => {
  const r = uniform('1f1b', 4, 1, 8, 1, 2, 0.1);
  // In 1F1B's steady state a stage waits for the next stage's backward, so sends also
  // stretch the steady slots, not only the fill and drain.
  assert.ok(r.makespan >= (8 + 3) * 3 + 2 * 3 * 0.1 - 1e-9 && r.makespan <= (8 + 3) * 3 + 2 * (8 + 3) * 0.1 + 1e-9, `${r.makespan}`);
});

test('interleaving divides the bubble by the chunk count (Narayanan et al. 2021)', () => {
  const p = 8, m = 32;
  const plain = uniform('1f1b', p, 1, m).makespan - 3 * m;
  for (const v of [2, 4]) {
    const bubble = uniform('interleaved', p, v, m).makespan - 3 * m;
    assert.ok(Math.abs(bubble - plain / v) < 1e-9, `v ${v}: bubble ${bubble} vs ${plain / v}`);
  }
});

test('zero-bubble fills the idle time with deferred weight gradients', () => {
  const p = 8, m = 32;
  const plain = uniform('1f1b', p, 1, m).makespan - 3 * m;
  const zb = uniform('zero-bubble', p, 1, m).makespan - 3 * m;
  assert.ok(zb < plain / 2, `zero-bubble bubble ${zb} vs 1F1B ${plain}`);
  assert.ok(zb >= 0);
});

test('the first stage of 1F1B holds p micro-batches in flight; interleaving runs extra warm-up forwards', () => {
  const ops = stageOrder('1f1b', 4, 1, 8, 0);
  let live = 0, peak = 0;
  for (const o of ops) { live += o.kind === 'F' ? 1 : -1; peak = Math.max(peak, live); }
  assert.equal(peak, 4);
  assert.equal(ops.length, 16);
  const inter = stageOrder('interleaved', 4, 2, 8, 0);
  assert.equal(inter.length, 32);
  assert.equal(inter.slice(0, 10).every((o) => o.kind === 'F'), true);
});
