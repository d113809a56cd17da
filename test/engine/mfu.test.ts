// MFU of a job of several ranks counts every rank's peak: two data-parallel ranks, each as fast
// as one process alone, read the same MFU as one process (a dp2 run once read 100%, clamped).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MfuMeter } from '../../src/engine/mfu.js';

test('the peak of a job is one rank\'s times the ranks; it is raised only past that', () => {
  const one = new MfuMeter({ gflops: 50, source: 'test' });
  const two = new MfuMeter({ gflops: 50, source: 'test' }, 2);
  // 40 GFLOP/s on one rank, 80 on two: both at 80% of what they have.
  assert.equal(one.measure(40e9, 1), 0.8);
  assert.equal(two.measure(80e9, 1), 0.8);
  assert.equal(two.raised, false);
  assert.match(two.describe(), /50\.0 GFLOP\/s per rank, 100\.0 GFLOP\/s for the 2 ranks/);
  // Beating the job's peak raises it (so MFU never passes 100%) and says so.
  assert.equal(two.measure(120e9, 1), 1);
  assert.equal(two.raised, true);
  assert.equal(two.peakGflops, 120);
});
