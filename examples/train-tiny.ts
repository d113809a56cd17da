// Train a tiny GPT from code, sample it, export it to ONNX and load it back: the library's
// whole path with no deep imports. Run after `npm run build` with `node dist/examples/train-tiny.js`
// (or, in a project that installed atscale, compile it with tsc and run the output).
// Environment: ATSCALE_MAX_ITERS caps the steps (default 60), EXAMPLE_OUT the output folder.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  runTraining,
  Generator,
  exportOnnx,
  loadTrainedModel,
  additionCorpus,
  type TrainHyper,
  type SampleOptions,
} from 'atscale';

const out = process.env.EXAMPLE_OUT ?? 'out/example-tiny';
const maxIters = Number(process.env.ATSCALE_MAX_ITERS ?? 60);
mkdirSync(out, { recursive: true });
const data = join(out, 'addition.txt');
writeFileSync(data, additionCorpus(2, 2000, 10, 1).text); // a corpus the library generates itself

const hyper: TrainHyper = {
  batchSize: 8, gradAccum: 1, maxIters, lr: 2e-3, minLr: 2e-4, warmupIters: 5, decayIters: maxIters,
  beta1: 0.9, beta2: 0.99, weightDecay: 0.1, gradClip: 1, evalInterval: maxIters, evalIters: 2, logInterval: 10,
};
const run = await runTraining({
  model: { nLayer: 1, nHead: 2, nEmbd: 32, blockSize: 16, dropout: 0, bias: true },
  hyper, data, tokenizer: 'char', out, seed: 1, quiet: true,
});
console.log(`trained ${run.losses.length} steps: loss ${run.losses[0]!.loss.toFixed(3)} -> ${run.losses.at(-1)!.loss.toFixed(3)}, val ${run.valLoss.toFixed(3)}`);

// Sample from the checkpoint the run wrote (what `atscale sample` does).
const { model, params, tokenizer } = loadTrainedModel(run.checkpoint);
const options: SampleOptions = { maxNewTokens: 24, temperature: 0.8, topK: 10, seed: 7 };
const ids = await new Generator(model, params).generate(tokenizer.encode('12+34='), options);
console.log(`sample: 12+34=${tokenizer.decode(ids)}`);

// Export: input_ids int64 [1, 16] -> logits float32 [1, 16, vocab], for any ONNX Runtime.
const onnx = exportOnnx(model, params, 1, model.dims.blockSize);
writeFileSync(join(out, 'model.onnx'), onnx);
console.log(`exported ${join(out, 'model.onnx')} (${onnx.length} bytes)`);
