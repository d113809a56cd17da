import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { checkMachine, forwardFractionFromSteps, gemmFlopsPerS, machineFromMeasurements, predictCpuStepMs } from '../../src/plan/calibrate.js';
import { loadCluster } from '../../src/plan/presets.js';

// Numbers of the order DESIGN.md reports for the 2-core development machine.
const meas = { gemmGflopsByN: { 64: 20, 256: 90, 1024: 140, 2048: 180 }, memBandwidthGBs: 12 };
const spec = machineFromMeasurements(meas, { name: 'test-box', threads: 2, memoryGB: 8, measuredAt: '2026-01-01T00:00:00Z' });

test('machine spec: JSON round trip, and bad files name the key', () => {
  assert.deepEqual(checkMachine(JSON.parse(JSON.stringify(spec))), spec);
  assert.throws(() => checkMachine({ ...spec, memBandwidthGBs: -1 } as unknown as Record<string, unknown>), /key 'memBandwidthGBs' must be a positive number/);
  assert.throws(() => checkMachine({ ...spec, kind: 'other' } as unknown as Record<string, unknown>), /key 'kind' must be 'atscale-machine'/);
  assert.throws(() => checkMachine({ ...spec, gemmGflopsByN: { big: 3 } } as unknown as Record<string, unknown>), /gemmGflopsByN key 'big'/);
});

test('GEMM throughput: the run overhead comes out, then monotone log-size interpolation', () => {
  // The 64^3 call (26 us at 20 GFLOP/s) is the fastest: all of it counts as run overhead.
  const overhead = (2 * 64 ** 3) / 20e9;
  const pure = (n: number, g: number) => (2 * n ** 3) / ((2 * n ** 3) / (g * 1e9) - overhead);
  assert.ok(Math.abs(gemmFlopsPerS(spec, 256, 256, 256) / pure(256, 90) - 1) < 1e-12);
  assert.ok(Math.abs(gemmFlopsPerS(spec, 4096, 4096, 4096) / pure(2048, 180) - 1) < 1e-12);
  const mid = gemmFlopsPerS(spec, 512, 512, 512);
  assert.ok(Math.abs(mid - (pure(256, 90) + pure(1024, 140)) / 2) < 1e3, `${mid}`);
  // The 64^3 entry is all overhead: below 256 the 256 rate holds.
  assert.equal(gemmFlopsPerS(spec, 8, 8, 8), gemmFlopsPerS(spec, 256, 256, 256));
  // A dip in a noisy table does not make bigger matrices slower.
  const noisy = machineFromMeasurements({ ...meas, gemmGflopsByN: { ...meas.gemmGflopsByN, 1024: 50 } }, { name: 'n', threads: 2, memoryGB: 8 });
  assert.equal(gemmFlopsPerS(noisy, 1024, 1024, 1024), gemmFlopsPerS(noisy, 256, 256, 256));
  assert.ok(gemmFlopsPerS(spec, 256, 256, 256) > 90e9);
});

test('CPU step prediction: grows with batch and model; shakespeare-char is seconds, cpu-small tens of ms', () => {
  const small = predictCpuStepMs({ nLayer: 4, nHead: 4, nEmbd: 128, blockSize: 64, vocab: 65, batch: 12 }, spec);
  const big = predictCpuStepMs({ nLayer: 6, nHead: 6, nEmbd: 384, blockSize: 256, vocab: 65, batch: 64 }, spec);
  const small2 = predictCpuStepMs({ nLayer: 4, nHead: 4, nEmbd: 128, blockSize: 64, vocab: 65, batch: 24 }, spec);
  assert.ok(small > 5 && small < 300, `cpu-small ${small} ms`);
  assert.ok(big > 2000 && big < 30000, `shakespeare-char ${big} ms`);
  assert.ok(small2 > small * 1.5);
});

test('a machine spec file is a one-node cluster for the planner', () => {
  const dir = mkdtempSync(join(tmpdir(), 'atscale-plan-'));
  const file = join(dir, 'machine.json');
  writeFileSync(file, JSON.stringify(spec));
  const c = loadCluster(file);
  assert.equal(c.nodes, 1);
  assert.equal(c.node.gpu.peakTflops.fp32, 0.18);
  writeFileSync(file, '{ not json');
  assert.throws(() => loadCluster(file), /is not valid JSON/);
});

test('the forward share comes from the growth of step and forward with rows; contradicting timings give none', () => {
  // A real calibration (17:45 UTC, load 5.2): 2 rows, forward 12.7 of a 53.2 ms step; 8 rows, 39.1 of 134.4.
  const f = forwardFractionFromSteps({ msPerIter: 53.2, forwardMs: 12.7 }, { msPerIter: 134.4, forwardMs: 39.1 });
  assert.ok(Math.abs(f! - 26.4 / 81.2) < 1e-12, `${f}`);
  // Taken on the whole steps instead, AdamW's fixed cost would hide in the denominator: 12.7 / 53.2 = 0.24.
  assert.ok(f! > 12.7 / 53.2);
  assert.equal(forwardFractionFromSteps({ msPerIter: 53.2, forwardMs: 12.7 }, { msPerIter: 50, forwardMs: 39.1 }), undefined);
  assert.equal(forwardFractionFromSteps({ msPerIter: 53.2, forwardMs: 40 }, { msPerIter: 134.4, forwardMs: 39.1 }), undefined);
  assert.throws(() => checkMachine({ ...spec, forwardFraction: 1.5 } as unknown as Record<string, unknown>), /key 'forwardFraction' must be a number between 0 and 1/);
  assert.throws(() => checkMachine({ ...spec, elementwiseAt: [{ workingSetBytes: 1e7 }] } as unknown as Record<string, unknown>), /elementwiseAt\[0\]\.GBs/);
});
