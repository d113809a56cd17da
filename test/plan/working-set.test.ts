// The planner's rule for where non-GEMM bytes come from (plan/working-set.ts): a program whose
// tensors fit in the last-level cache gets the rate the small calibration step showed, one far
// beyond it the DRAM rate the two steps imply, ranks running together split the cache. The
// machine figures are a real `atscale plan --calibrate --threads 1` on the 2-core development
// host (32 MiB L3); the cli test checks that a fresh calibration writes such points.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CALIBRATION_PROXY, CALIBRATION_PROXY_SMALL, gptParams, machineFromMeasurements } from '../../src/plan/calibrate.js';
import { predictLocalStepMs } from '../../src/plan/local-layout.js';
import { oneFOneB } from '../../src/engine/pipeline/schedule.js';
import { elementwiseSecondsPerByte, lastLevelCacheBytes, stashedBytesPerLayer, stepWorkingSetBytes } from '../../src/plan/working-set.js';

const MiB = 2 ** 20;
// Calibration of 2026-11-30 17:28 UTC (load average 4.1): the large step's tensors span 56.4 MB
// at 6.58 GB/s, the small one's 18.8 MB at 11.79 GB/s.
const measured = {
  gemmGflopsByN: { 64: 26.6, 128: 57.4, 256: 67.5, 512: 62.5, 1024: 56.5, 2048: 44.2 },
  memBandwidthGBs: 10.76,
  elementwiseGBs: 6.578,
  elementwiseAt: [{ workingSetBytes: 56434688, GBs: 6.578 }, { workingSetBytes: 18802688, GBs: 11.789 }],
  cacheBytes: 32 * MiB,
  loopbackBusbwGBs: 0.9,
};
const spec = machineFromMeasurements(measured, { name: 'dev', threads: 1, memoryGB: 24 });
const rate = (ws: number, sharers = 1) => 1e-9 / elementwiseSecondsPerByte(spec, ws, sharers)!;

test('the calibration steps straddle the L3: the small one fits in 32 MiB, the large one does not', () => {
  assert.equal(stepWorkingSetBytes(CALIBRATION_PROXY, gptParams(CALIBRATION_PROXY)), 56434688);
  assert.equal(stepWorkingSetBytes(CALIBRATION_PROXY_SMALL, gptParams(CALIBRATION_PROXY_SMALL)), 18802688);
});

test('non-GEMM rate by working set: each calibration step gets its own rate back, in-cache programs the small step\'s, bigger ones less', () => {
  assert.ok(Math.abs(rate(56434688) / 6.578 - 1) < 1e-9, `large step: ${rate(56434688)}`);
  assert.ok(Math.abs(rate(18802688) / 11.789 - 1) < 1e-9, `small step: ${rate(18802688)}`);
  // Anything within the cache streams at the in-cache rate.
  assert.ok(Math.abs(rate(4 * MiB) / 11.789 - 1) < 1e-9);
  assert.ok(Math.abs(rate(32 * MiB) / 11.789 - 1) < 1e-9);
  // Past it the rate falls, towards the DRAM rate the two steps imply (below the large step's).
  const sizes = [32, 40, 56, 100, 400, 4000].map((x) => x * MiB);
  const rates = sizes.map((ws) => rate(ws));
  for (let i = 1; i < rates.length; i++) assert.ok(rates[i]! < rates[i - 1]!, `${rates}`);
  assert.ok(rates.at(-1)! < 6.578 && rates.at(-1)! > 2, `DRAM rate ${rates.at(-1)}`);
  // Two ranks running at once each get half of the L3: a program that fits alone no longer does.
  assert.ok(rate(31 * MiB, 2) < rate(31 * MiB, 1));
  assert.equal(rate(8 * MiB, 2), rate(8 * MiB, 1));
});

test('without a cache size or a second point the one calibrated rate holds; a noisy inversion buys nothing from the cache', () => {
  const { cacheBytes: _, ...noCache } = measured;
  const single = machineFromMeasurements(noCache, { name: 'dev', threads: 1, memoryGB: 24 });
  assert.equal(elementwiseSecondsPerByte(single, 1 * MiB), 1 / 6.578e9);
  assert.equal(elementwiseSecondsPerByte(single, 1000 * MiB), 1 / 6.578e9);
  // A busy moment made the small step slower per byte than the large one.
  const inverted = machineFromMeasurements({ ...measured, elementwiseAt: [{ workingSetBytes: 56434688, GBs: 6.578 }, { workingSetBytes: 18802688, GBs: 5.1 }] }, { name: 'dev', threads: 1, memoryGB: 24 });
  for (const ws of [4, 32, 56, 400]) assert.ok(Math.abs(elementwiseSecondsPerByte(inverted, ws * MiB)! * 6.578e9 - 1) < 1e-9);
});

test('the layout model charges each program the rate of its own working set', () => {
  const g = { nLayer: 4, nHead: 4, nEmbd: 128, blockSize: 64, vocab: 65 };
  const layout = (dp: number, pp: number, recompute: 'none' | 'full') => ({ dp, pp, v: 1, microBatches: 4, rows: 8, recompute });
  // cpu-small's one-process micro-step (31 MB) fits the L3; two data-parallel ranks do not.
  const oneWs = stepWorkingSetBytes({ ...g, batch: 8 }, gptParams({ ...g, batch: 8 }));
  assert.ok(oneWs < 32 * MiB && oneWs > 16 * MiB, `${oneWs}`);
  const one = predictLocalStepMs(g, layout(1, 1, 'none'), spec, 2, undefined, oneFOneB(2, 4));
  const dp2 = predictLocalStepMs(g, layout(2, 1, 'none'), spec, 2, undefined, oneFOneB(2, 4));
  // Same work per rank and a core each (no background load here): only the split cache differs.
  assert.ok(dp2.parts.compute > one.parts.compute * 1.1, `dp2 ${dp2.parts.compute} vs one ${one.parts.compute}`);
  // A pipeline stage keeping every activation of its in-flight micro-batches touches more than
  // one recomputing them, so its non-GEMM bytes come slower than under one flat rate.
  assert.ok(stashedBytesPerLayer({ ...g, batch: 8 }, 'none') > stashedBytesPerLayer({ ...g, batch: 8 }, 'full'));
  const { elementwiseAt: _, ...flat } = measured;
  const flatSpec = machineFromMeasurements(flat, { name: 'dev', threads: 1, memoryGB: 24 });
  const noneOverFull = (s: typeof spec) => predictLocalStepMs(g, layout(1, 2, 'none'), s, 2, undefined, oneFOneB(2, 4)).parts.compute / predictLocalStepMs(g, layout(1, 2, 'full'), s, 2, undefined, oneFOneB(2, 4)).parts.compute;
  assert.ok(noneOverFull(spec) > noneOverFull(flatSpec) * 1.05, `none / full: ${noneOverFull(spec)} by working set, ${noneOverFull(flatSpec)} at one rate`);
});

test('the L3 size is read from sysfs: the highest cache level\'s size; unreadable is undefined', () => {
  const root = mkdtempSync(join(tmpdir(), 'atscale-cache-'));
  for (const [d, level, size] of [['index0', 1, '32K'], ['index2', 2, '512K'], ['index3', 3, '32768K']] as const) {
    mkdirSync(join(root, d));
    writeFileSync(join(root, d, 'level'), `${level}\n`);
    writeFileSync(join(root, d, 'size'), `${size}\n`);
  }
  assert.equal(lastLevelCacheBytes(root), 32 * MiB);
  assert.equal(lastLevelCacheBytes(join(root, 'missing')), undefined);
  const here = lastLevelCacheBytes();
  if (here !== undefined) assert.ok(here >= 256 * 1024, `this machine's last-level cache: ${here} bytes`);
});
