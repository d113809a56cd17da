// Export: the standalone ONNX model runs in plain onnxruntime-node and gives the same logits
// as atscale's own forward; the KV-cache decoder agrees with the full forward.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as ort from 'onnxruntime-node';
import { GPT } from '../../src/models/gpt.js';
import { FlatLayout } from '../../src/nn/flat.js';
import { exportOnnx } from '../../src/engine/export-onnx.js';
import { Generator } from '../../src/engine/generate.js';
import { jit } from '../../src/tensor/jit.js';
import { hostValue, type HostValue } from '../../src/ir/value.js';
import type { Tensor } from '../../src/tensor/tensor.js';

const model = new GPT({ nLayer: 2, nHead: 2, nEmbd: 32, blockSize: 8, vocabSize: 11, bias: true });
const layout = new FlatLayout(model);
const params = layout.initialise(3);
const ids = [1, 5, 2, 9, 3, 3, 0, 7];

const forward = jit((p, idx) => {
  for (const s of layout.slots) s.param.bind((p as Tensor).slice([s.offset, s.offset + s.size]).reshape(s.shape));
  try {
    return model.forward(idx as Tensor);
  } finally {
    for (const s of layout.slots) s.param.bind(undefined);
  }
});

async function ourLogits(tokens: number[]): Promise<Float32Array> {
  const r = (await forward(hostValue('float32', [layout.size], params), hostValue('int32', [1, tokens.length], tokens))) as HostValue;
  return r.data as Float32Array;
}

test('exported ONNX model equals atscale forward in plain onnxruntime-node', async () => {
  const bytes = exportOnnx(model, params, 1, ids.length);
  const session = await ort.InferenceSession.create(bytes);
  assert.deepEqual(session.inputNames, ['input_ids']);
  assert.deepEqual(session.outputNames, ['logits']);
  const r = await session.run({ input_ids: new ort.Tensor('int64', BigInt64Array.from(ids.map(BigInt)), [1, ids.length]) });
  const theirs = r.logits!.data as Float32Array;
  const ours = await ourLogits(ids);
  assert.equal(theirs.length, ours.length);
  for (let i = 0; i < ours.length; i++) assert.ok(Math.abs(theirs[i]! - ours[i]!) < 1e-4, `logit ${i}: ${theirs[i]} vs ${ours[i]}`);
});

test('KV-cache greedy decoding, then the sliding window past the block size, equals greedy decoding with the full forward', async () => {
  const gen = new Generator(model, params);
  const prompt = ids.slice(0, 3);
  // A tokenizer's encode() gives a Uint32Array; generate takes it as it is.
  const got = await gen.generate(Uint32Array.from(prompt), { maxNewTokens: 20, temperature: 0, seed: 0 });
  assert.equal(got.length, 20);
  const ctx = [...prompt];
  const want: number[] = [];
  for (let i = 0; i < 20; i++) {
    const window = ctx.slice(-model.config.blockSize);
    const logits = await ourLogits(window);
    const last = logits.subarray((window.length - 1) * 11, window.length * 11);
    const next = last.indexOf(Math.max(...last));
    want.push(next);
    ctx.push(next);
  }
  assert.deepEqual(got, want);
});
