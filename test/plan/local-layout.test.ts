// The local layout model's count of what a pipeline block hands out of ONNX Runtime for its
// backward, checked against the real block programs (engine/segments.ts cut by ir/remat.ts), and
// its cost: charged only where something is kept, and in proportion to the bytes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { GPT } from '../../src/models/gpt.js';
import { FlatLayout } from '../../src/nn/flat.js';
import { modelSegments } from '../../src/engine/segments.js';
import { machineFromMeasurements } from '../../src/plan/calibrate.js';
import { predictLocalStepMs } from '../../src/plan/local-layout.js';
import { oneFOneB } from '../../src/engine/pipeline/schedule.js';
import { stashedBytesPerLayer } from '../../src/plan/working-set.js';

const BYTES: Record<string, number> = { float32: 4, bool: 1, int32: 4, int64: 8 };

/** Bytes of the tensors block 0's forward returns besides y, from the traced programs. */
function savedBytes(model: GPT, batch: number, seq: number, g: 'none' | 'selective' | 'full'): number {
  const seg = modelSegments(model, new FlatLayout(model), { batch, seq }, g).segments.find((s) => s.name === 'block 0')!;
  return (seg.saved ?? []).reduce((a, t) => a + t.shape.reduce((x, y) => x * y, 1) * BYTES[t.dtype]!, 0);
}

for (const [C, H, T, B] of [[128, 4, 64, 8], [64, 2, 32, 3]] as const) {
  for (const dropout of [0, 0.1]) {
    test(`kept bytes per block (width ${C}, ${H} heads, context ${T}, ${B} rows, dropout ${dropout}) equal the compiled block's saved outputs`, () => {
      const model = new GPT({ nLayer: 2, nHead: H, nEmbd: C, blockSize: T, vocabSize: 65, dropout, bias: false });
      for (const g of ['none', 'selective', 'full'] as const) {
        assert.equal(stashedBytesPerLayer({ nHead: H, nEmbd: C, blockSize: T, vocab: 65, batch: B, dropout }, g), savedBytes(model, B, T, g), `recompute ${g}`);
      }
    });
  }
}

test('handing kept activations out of ONNX Runtime is charged to pipeline stages that keep them, at the copy bandwidth', () => {
  const g = { nLayer: 4, nHead: 4, nEmbd: 128, blockSize: 64, vocab: 65 };
  const at = (memBandwidthGBs: number) => machineFromMeasurements({ gemmGflopsByN: { 64: 8, 256: 30, 1024: 40 }, memBandwidthGBs, elementwiseGBs: 2, loopbackBusbwGBs: 1 }, { name: 'box', threads: 1, memoryGB: 8 });
  const layout = (recompute: 'none' | 'selective' | 'full', pp = 2) => ({ dp: 1, pp, v: 1, microBatches: 4, rows: 8, recompute });
  const spec = at(10);
  assert.equal(predictLocalStepMs(g, layout('full'), spec, 2, undefined, oneFOneB(2, 4)).parts.stash, 0);
  assert.equal(predictLocalStepMs(g, layout('none', 1), spec, 2, undefined, oneFOneB(2, 4)).parts.stash, 0, 'the fused one-process step keeps its activations inside ONNX Runtime');
  const none = predictLocalStepMs(g, layout('none'), spec, 2, undefined, oneFOneB(2, 4)).parts.stash;
  const selective = predictLocalStepMs(g, layout('selective'), spec, 2, undefined, oneFOneB(2, 4)).parts.stash;
  // 2 layers a stage, (m + p - 1) stage-times on the critical path, 3 bytes of traffic a byte.
  const expected = (bytes: number) => (1000 * 3 * 2 * bytes * (4 + 1)) / 10e9;
  assert.ok(Math.abs(none - expected(60 * 8 * 64 * 128 + 4 * 8 * 4 * 64 * 64)) < 1e-9 * none, `none: ${none}`);
  assert.ok(selective < none && selective > 0);
  // Half the bandwidth, twice the time.
  assert.ok(Math.abs(predictLocalStepMs(g, layout('none'), at(5), 2, undefined, oneFOneB(2, 4)).parts.stash - 2 * none) < 1e-9 * none);
  // A calibration that measured handing outputs out (1.79 GB/s, 17:45 UTC) is charged that rate.
  const handed = machineFromMeasurements({ gemmGflopsByN: { 64: 8, 256: 30, 1024: 40 }, memBandwidthGBs: 10, elementwiseGBs: 2, loopbackBusbwGBs: 1, outputCopySecondsPerByte: 1 / 1.79e9 }, { name: 'box', threads: 1, memoryGB: 8 });
  const measuredStash = predictLocalStepMs(g, layout('none'), handed, 2, undefined, oneFOneB(2, 4)).parts.stash;
  assert.ok(Math.abs(measuredStash - (none * 10e9) / 3 / 1.79e9) < 1e-9 * none, `${measuredStash}`);
});
