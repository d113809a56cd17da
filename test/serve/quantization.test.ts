// `atscale serve --quantization int8` against the same checkpoint served in float32, both real
// processes asked through the `openai` client: the int8 server runs every weight GEMM on int8
// weights (it says how many per decode step), answers with the float32 server's greedy text,
// and its log-probabilities stay close to the float32 ones. The checkpoint is trained (briefly,
// on a generated corpus): the serving fixture's random weights, scaled up for peaked logits,
// make activations that one int8 scale per tensor cannot hold (log-probabilities 0.45 apart).
// Below the server: graphs that read one weight share one int8 form of it, which the weights
// file holds instead of each graph's model bytes.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import OpenAI from 'openai';
import { type HostValue, hostValue } from '../../src/ir/value.js';
import { runTraining } from '../../src/engine/train-loop.js';
import { GPT } from '../../src/models/gpt.js';
import { preset } from '../../src/models/presets.js';
import { FlatLayout } from '../../src/nn/flat.js';
import { compile, lowerForSession, toModel } from '../../src/runtime/execute.js';
import type { Int8Weight } from '../../src/runtime/onnx/quantize.js';
import { WeightsFile } from '../../src/runtime/weights-file.js';
import { Batcher } from '../../src/serve/batcher.js';
import { buildProgram } from '../../src/tensor/program.js';
import { constant } from '../../src/tensor/tensor.js';
import { startServer, type RunningServer } from './spawn-server.js';

let fp32: RunningServer;
let int8: RunningServer;
const client = (s: RunningServer) => new OpenAI({ baseURL: `${s.url}/v1`, apiKey: 'unused', maxRetries: 0, timeout: 30_000 });

before(async () => {
  const work = mkdtempSync(join(tmpdir(), 'atscale-int8-'));
  const corpus = join(work, 'corpus.txt');
  writeFileSync(corpus, Array.from({ length: 300 }, (_, i) => `${i % 2 ? 'Hello there' : 'The quick brown fox'}, said line ${i}; the lazy dog slept.\n`).join(''));
  const hyper = { ...preset('cpu-small').train, batchSize: 8, maxIters: 150, evalInterval: 150, evalIters: 1, logInterval: 50, warmupIters: 10, decayIters: 150 };
  await runTraining({ model: { nLayer: 2, nHead: 2, nEmbd: 64, blockSize: 64, dropout: 0, bias: true }, hyper, data: corpus, tokenizer: 'char', seed: 3, threads: 1, quiet: true, out: join(work, 'run') });
  const ck = join(work, 'run', 'ckpt');
  [fp32, int8] = await Promise.all([startServer(['--model', ck, '--slots', '2']), startServer(['--model', ck, '--slots', '2', '--quantization', 'int8'])]);
});
after(async () => {
  assert.equal(await fp32.stop(), 0, fp32.log());
  assert.equal(await int8.stop(), 0, int8.log());
});

test('serve --quantization int8: weight GEMMs on int8, the float32 server\'s greedy text, log-probabilities within 0.1', async () => {
  // 2 layers x (QKV, attention output, MLP up, MLP down) + the LM head.
  assert.match(int8.log(), /int8 weights \(9 GEMMs per decode step\)/);
  assert.doesNotMatch(fp32.log(), /int8 weights/);
  let worst = 0;
  for (const prompt of ['Hello there', 'The quick', 'said line 1']) {
    const [a, b] = await Promise.all([fp32, int8].map((s) => client(s).completions.create({ model: 'ckpt', prompt, max_tokens: 12, temperature: 0, logprobs: 3 })));
    const x = a.choices[0]!, y = b.choices[0]!;
    assert.equal(y.text, x.text, `greedy text for ${JSON.stringify(prompt)}`);
    x.logprobs!.token_logprobs!.forEach((lp, i) => (worst = Math.max(worst, Math.abs(lp - y.logprobs!.token_logprobs![i]!))));
  }
  assert.ok(worst > 0, 'the int8 server computes something other than float32 (its log-probabilities differ)');
  assert.ok(worst < 0.1, `chosen tokens' log-probabilities differ by up to ${worst}`);
});

test('Batcher refuses an unknown quantization by name', () => {
  const model = new GPT({ nLayer: 1, nHead: 1, nEmbd: 8, blockSize: 8, vocabSize: 5, bias: true, dropout: 0 });
  const params = new FlatLayout(model).initialise(1);
  assert.throws(() => new Batcher(model, params, { slots: 1, prefillChunk: 4, quantization: 'int4' as never }), /quantization must be 'none' or 'int8', got "int4"/);
});

test('int8 weights shared by graphs: quantized once, read from the weights file, the float32 product within 2%', async () => {
  const K = 256, N = 128;
  let seed = 12345;
  const uniform = () => ((seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648) * 2 - 1;
  const W = Float32Array.from({ length: K * N }, () => uniform() * 0.05);
  const x = Float32Array.from({ length: 4 * K }, () => uniform());
  // One weight value that every graph's constant views, as the server's graphs view its parameters.
  const weight = hostValue('float32', [K, N], W);
  const prog = (rows: number) => buildProgram((t) => {
    const input = t.input('x', [rows, K], 'float32');
    return { inputs: [input], outputs: [input.matmul(constant(weight, t.graph))] };
  });
  const cache = new Map<HostValue['data'], Int8Weight>();
  lowerForSession(prog(1), { quantization: 'int8', int8Cache: cache });
  lowerForSession(prog(4), { quantization: 'int8', int8Cache: cache });
  assert.equal(cache.size, 1, 'one int8 form for the weight both graphs read');
  const file = new WeightsFile([...cache.values()].map((w) => w.bytes));
  try {
    const opts = { quantization: 'int8' as const, int8Cache: cache, weights: file };
    // The graph's model bytes leave the 32 KB of int8 weights in the file; without it they are inside.
    assert.ok(toModel(prog(4), opts).model.length < 8192, 'int8 weights written into the model');
    assert.ok(toModel(prog(4), { quantization: 'int8' }).model.length > K * N);
    const [y] = await (await compile(prog(4), { ...opts, threads: 1 })).run([hostValue('float32', [4, K], x)]);
    let worst = 0, top = 0;
    for (let r = 0; r < 4; r++) for (let c = 0; c < N; c++) {
      let want = 0;
      for (let k = 0; k < K; k++) want += x[r * K + k]! * W[k * N + c]!;
      top = Math.max(top, Math.abs(want));
      worst = Math.max(worst, Math.abs(want - (y!.data as Float32Array)[r * N + c]!));
    }
    assert.ok(worst > 0 && worst < 0.02 * top, `int8 product off by ${worst} (largest value ${top})`);
  } finally {
    file.remove();
  }
});
