// The embedding's gradient is a scatter-add of one row per token into the table. Tokens repeat
// (a batch of text uses a few hundred distinct ones), so many updates land on the same row; with
// ONNX Runtime's ScatterND, which applies updates in parallel, those adds raced at two threads
// and lost contributions (at 2048 updates of 128 values and more: 14-21% of the largest value here,
// exact at one thread). This runs the trainers' own micro-step program on real ONNX Runtime at
// two threads, three times, and checks the gradient against the reference interpreter's.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { GPT } from '../../src/models/gpt.js';
import { FlatLayout } from '../../src/nn/flat.js';
import { Rng } from '../../src/tensor/rng.js';
import { microstepProgram } from '../../src/engine/step-graphs.js';
import { NamedExecutable } from '../../src/engine/named-program.js';
import { hostValue } from '../../src/ir/value.js';
import { runReference, refFromHost } from '../../src/runtime/reference/interpreter.js';

test('the embedding gradient of a batch with repeated tokens is exact at two threads, run after run', async () => {
  const model = new GPT({ nLayer: 1, nHead: 2, nEmbd: 128, blockSize: 128, vocabSize: 512, bias: false, dropout: 0 });
  const layout = new FlatLayout(model);
  const params = layout.initialise(1);
  const rng = new Rng(2);
  const batch = 16, seq = 128, n = batch * seq;
  // Skewed towards small ids, as token frequencies are: every row is hit many times.
  const idx = Int32Array.from({ length: n }, () => Math.min(rng.int(512), rng.int(512), rng.int(512)));
  const targets = Int32Array.from({ length: n }, () => rng.int(512));
  const step = microstepProgram(model, layout, { batch, seq });
  const feeds = {
    params: hostValue('float32', [layout.size], params),
    grad_acc: hostValue('float32', [layout.size]),
    idx: hostValue('int32', [batch, seq], idx),
    targets: hostValue('int32', [batch, seq], targets),
    scale: hostValue('float32', [1], [1]),
  };
  const names = step.program.inputs.map((id) => String(step.program.graph.node(id).attrs.name)) as (keyof typeof feeds)[];
  const reference = runReference(step.program, names.map((k) => refFromHost(feeds[k])))[step.outputs.indexOf('grad_acc')]!.data;
  const exe = await NamedExecutable.compile(step.program, step.outputs, { threads: 2 });
  const wte = layout.slots.find((s) => s.name === 'transformer.wte.weight')!;
  for (let run = 0; run < 3; run++) {
    const got = (await exe.run(feeds)).grad_acc!.data as Float32Array;
    let diff = 0, largest = 0;
    for (let i = wte.offset; i < wte.offset + wte.size; i++) {
      diff = Math.max(diff, Math.abs(got[i]! - reference[i]!));
      largest = Math.max(largest, Math.abs(reference[i]!));
    }
    assert.ok(diff <= 1e-5 * largest, `run ${run}: the embedding gradient is off by ${diff.toExponential(2)}, ${(diff / largest).toExponential(2)} of its largest value`);
  }
});
