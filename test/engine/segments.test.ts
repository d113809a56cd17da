// The per-block segments (used by ZeRO stages 2-3), chained on one process, give the same loss
// and flat gradient as the whole-model micro-step graph: the forward of each segment feeds the
// next, the backward of each (recomputing its forward) feeds the previous, and wte's gradient is
// the sum of its embedding and head contributions.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { hostValue, type HostValue } from '../../src/ir/value.js';
import { NamedExecutable, type Named } from '../../src/engine/named-program.js';
import { FlatLayout } from '../../src/nn/flat.js';
import { GPT } from '../../src/models/gpt.js';
import { microstepProgram } from '../../src/engine/step-graphs.js';
import { modelSegments, modelUnits, segmentOutputs, type Segment } from '../../src/engine/segments.js';
import { MODEL, SEQ } from './zero-case.js';

const f32 = (d: Float32Array, shape = [d.length]): HostValue => ({ dtype: 'float32', shape, data: d });

test('segments chained on one process = microstepProgram (loss and flat gradient)', async () => {
  const model = new GPT({ ...MODEL, bias: true });
  const layout = new FlatLayout(model);
  const B = 3;
  const params = layout.initialise(7);
  const x = Int32Array.from({ length: B * SEQ }, (_, i) => (i * 7 + 3) % 65);
  const y = Int32Array.from({ length: B * SEQ }, (_, i) => (i * 11 + 5) % 65);
  const idx = hostValue('int32', [B, SEQ], x);
  const tgt = hostValue('int32', [B, SEQ], y);

  const ref = await NamedExecutable.of(microstepProgram(model, layout, { batch: B, seq: SEQ }), { threads: 1 });
  const r = await ref.run({ params: f32(params), grad_acc: f32(new Float32Array(layout.size)), idx, targets: tgt, scale: hostValue('float32', [1], [1]) });
  const refGrad = r.grad_acc!;
  const refLoss = r.loss!;

  const { segments } = modelSegments(model, layout, { batch: B, seq: SEQ });
  // Every segment program runs by name: its units' parameters plus its activation inputs.
  const run = async (seg: Segment, which: 'forward' | 'backward', extra: Named) => {
    const outs = segmentOutputs(seg)[which];
    const exe = await NamedExecutable.compile(seg[which]!, outs, { threads: 1 });
    return exe.run({ ...Object.fromEntries(seg.units.map((u) => [u.name, f32(params.subarray(u.offset, u.offset + u.size))])), ...extra });
  };
  const grad = new Float32Array(layout.size);
  const addGrads = (seg: Segment, out: Named) =>
    seg.units.forEach((u) => (out[u.name]!.data as Float32Array).forEach((g, i) => (grad[u.offset + i]! += g)));
  const acts: HostValue[] = [];
  let h = (await run(segments[0]!, 'forward', { idx })).x!;
  for (const seg of segments.slice(1, -1)) {
    acts.push(h);
    h = (await run(seg, 'forward', { x: h })).y!;
  }
  const head = segments.at(-1)!;
  const headOut = await run(head, 'backward', { x: h, targets: tgt, seed: hostValue('float32', [], [1]) });
  const loss = headOut.loss!;
  addGrads(head, headOut);
  let dy = headOut.dx!;
  for (let i = segments.length - 2; i >= 1; i--) {
    const out = await run(segments[i]!, 'backward', { x: acts[i - 1]!, dy });
    addGrads(segments[i]!, out);
    dy = out.dx!;
  }
  addGrads(segments[0]!, await run(segments[0]!, 'backward', { idx, dy }));

  const l0 = (refLoss!.data as Float32Array)[0]!;
  assert.ok(Math.abs((loss!.data as Float32Array)[0]! - l0) <= 1e-6 * Math.abs(l0), 'same loss');
  const rg = refGrad!.data as Float32Array;
  let maxErr = 0;
  let maxRef = 0;
  for (let i = 0; i < rg.length; i++) {
    maxErr = Math.max(maxErr, Math.abs(grad[i]! - rg[i]!));
    maxRef = Math.max(maxRef, Math.abs(rg[i]!));
  }
  assert.ok(maxErr <= 1e-5 * maxRef, `max gradient difference ${maxErr} vs max |grad| ${maxRef}`);
  assert.ok(maxRef > 0);
});

test('units tile the flat layout: wte, wpe, one per block, ln_f', () => {
  const model = new GPT(MODEL);
  const layout = new FlatLayout(model);
  const units = modelUnits(model, layout);
  assert.deepEqual(units.map((u) => u.name), ['transformer.wte', 'transformer.wpe', 'transformer.h.0', 'transformer.h.1', 'transformer.ln_f']);
  assert.equal(units.reduce((a, u) => a + u.size, 0), layout.size);
});
