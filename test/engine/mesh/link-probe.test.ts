// The calibration's pipeline link terms, measured between two real processes through the
// executor's handoff path and the transport: positive and finite, the large message dearer
// than the small one, the per-byte rate no faster than the copy floor it was given; and a
// spec carrying them is read back, a bad value named by its key.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { measureLinks, PROBE_SIZES } from '../../../src/engine/pipeline/link-probe.js';
import { checkMachine, machineFromMeasurements } from '../../../src/plan/calibrate.js';
import { PlanInputError } from '../../../src/plan/specs.js';

test('a handoff and a small all-reduce are measured between two processes', async () => {
  const floor = 1 / 100e9;
  const r = await measureLinks({ minSecondsPerByte: floor, iters: 5 });
  for (const k of ['handoffSeconds', 'handoffSecondsPerByte', 'smallAllReduceSeconds'] as const) assert.ok(r[k] > 0 && Number.isFinite(r[k]), `${k} ${r[k]}`);
  assert.ok(r.handoffSecondsPerByte >= floor);
  const [small, large] = PROBE_SIZES.map((n) => r.handoffSecondsByBytes[4 * n]!);
  assert.equal(r.handoffSeconds, small);
  assert.ok(large! > small!, `1 MiB ${large} s vs 8 bytes ${small} s`);
  const spec = machineFromMeasurements({ gemmGflopsByN: { 64: 8 }, memBandwidthGBs: 10, handoffSeconds: r.handoffSeconds, handoffSecondsPerByte: r.handoffSecondsPerByte, smallAllReduceSeconds: r.smallAllReduceSeconds }, { name: 'box', threads: 1, memoryGB: 8 });
  const back = checkMachine(JSON.parse(JSON.stringify(spec)) as Record<string, unknown>);
  assert.equal(back.handoffSeconds, r.handoffSeconds);
  assert.equal(back.smallAllReduceSeconds, r.smallAllReduceSeconds);
  assert.throws(() => checkMachine({ ...JSON.parse(JSON.stringify(spec)), handoffSeconds: 0 }), (e: Error) => e instanceof PlanInputError && /key 'handoffSeconds' must be a positive number, got 0/.test(e.message));
});
