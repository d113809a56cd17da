import { test } from 'node:test';
import assert from 'node:assert/strict';
import { dalyInterval, expectedWallSeconds, planReliability, youngInterval } from '../../src/plan/reliability.js';

test('Young: sqrt(2 delta M); Daly agrees when checkpoints are cheap', () => {
  assert.equal(youngInterval(60, 3600), Math.sqrt(2 * 60 * 3600));
  const d = 1, m = 1e6;
  assert.ok(Math.abs(dalyInterval(d, m) / youngInterval(d, m) - 1) < 0.01);
  assert.equal(dalyInterval(10, 4), 4, 'delta >= 2M: checkpoint every MTBF');
});

test('the Daly interval minimises expected wall time', () => {
  const delta = 120, restart = 600, m = 3 * 3600, work = 30 * 86400;
  const best = expectedWallSeconds(work, dalyInterval(delta, m), delta, restart, m);
  for (const f of [0.5, 0.8, 1.25, 2]) {
    assert.ok(expectedWallSeconds(work, f * dalyInterval(delta, m), delta, restart, m) > best, `interval x${f}`);
  }
});

test('goodput falls with scale: 10,000 GPUs fail far more often than 1,000', () => {
  const small = planReliability({ nodes: 125, nodeMtbfHours: 6000, checkpointSeconds: 60, restartSeconds: 600, computeSeconds: 30 * 86400 });
  const large = planReliability({ nodes: 1250, nodeMtbfHours: 6000, checkpointSeconds: 60, restartSeconds: 600, computeSeconds: 30 * 86400 });
  assert.ok(Math.abs(large.systemMtbfHours - 4.8) < 1e-9);
  assert.ok(small.goodput > large.goodput && large.goodput > 0.5 && small.goodput < 1);
  assert.ok(large.expectedFailures > 9 * small.expectedFailures);
  assert.throws(() => planReliability({ nodes: 0, nodeMtbfHours: 1, checkpointSeconds: 1, restartSeconds: 1, computeSeconds: 1 }), /nodes must be positive/);
});
