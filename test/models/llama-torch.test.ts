// The Llama decoder against an independent PyTorch reference (bench/peers/llama_torch.py, float64)
// on the same random weights written as a Hugging Face folder: logits and every gradient agree
// to 1e-5 relative, for grouped-query ratios 1, 2 and 4 and with Llama 3 rope scaling on and off.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { torchAvailable } from '../../bench/peers/torch-peer.js';
import { compareLlamaWithTorch } from '../../bench/peers/llama-equivalence.js';
import type { LlamaConfig } from '../../src/models/llama-config.js';

const torch = torchAvailable();
const skip = torch.ok ? false : `PyTorch is not installed here (${torch.reason})`;
// Wavelengths 6 to 664 positions against an original context of 8: one frequency in the
// blended band, three slowed by the factor.
const scaling = { factor: 8, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositionEmbeddings: 8 };

const cases: [string, Partial<LlamaConfig>][] = [];
for (const ratio of [1, 2, 4]) {
  for (const rope of [null, scaling]) {
    // Qwen2 (q/k/v biases, untied head) at ratio 2; Llama with a tied head otherwise.
    const extra: Partial<LlamaConfig> = ratio === 2 ? { modelType: 'qwen2', qkvBias: true, tieWordEmbeddings: false } : { tieWordEmbeddings: true };
    cases.push([`GQA ratio ${ratio} (4 query heads on ${4 / ratio} kv heads), rope scaling ${rope ? 'llama3' : 'off'}${ratio === 2 ? ', qwen2 biases, untied' : ', tied'}`,
      { nLayer: 2, nHead: 4, nKvHead: 4 / ratio, nEmbd: 32, intermediateSize: 48, vocabSize: 37, blockSize: 16, ropeTheta: 500, ropeScaling: rope, ...extra }]);
  }
}

test('Llama family: logits and gradients equal the PyTorch reference to 1e-5 relative', { skip }, async () => {
  const results = await compareLlamaWithTorch(cases.map(([, c]) => c), 2);
  results.forEach((r, i) => {
    const name = cases[i]![0];
    console.log(`${name}: logits ${r.logitsRelError.toExponential(2)}, loss ${(Math.abs(r.loss - r.torchLoss) / r.torchLoss).toExponential(2)}, worst gradient ${r.gradRelError.toExponential(2)} (${r.worstParam})`);
    assert.ok(r.logitsRelError < 1e-5, `${name}: logits differ by ${r.logitsRelError} relative`);
    assert.ok(Math.abs(r.loss - r.torchLoss) / r.torchLoss < 1e-5, `${name}: loss ${r.loss} vs PyTorch ${r.torchLoss}`);
    assert.ok(r.gradRelError < 1e-5, `${name}: gradient of ${r.worstParam} differs by ${r.gradRelError} relative`);
  });
});
