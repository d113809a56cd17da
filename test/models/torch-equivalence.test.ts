// Correctness against a real peer: PyTorch loads atscale's initial weights and computes loss
// and gradients on the same batch; they match atscale's to 1e-4 relative.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { torchAvailable } from '../../bench/peers/torch-peer.js';
import { compareWithTorch } from '../../bench/peers/torch-equivalence.js';

const torch = torchAvailable();
const skip = torch.ok ? false : `PyTorch is not installed here (${torch.reason})`;

for (const [name, cfg, batch] of [
  ['cpu-small GPT (4 layers, 128 wide, no bias)', { nLayer: 4, nHead: 4, nEmbd: 128, blockSize: 64, vocabSize: 65, bias: false }, 4],
  ['small GPT with biases', { nLayer: 2, nHead: 2, nEmbd: 48, blockSize: 16, vocabSize: 50, bias: true }, 3],
] as const) {
  test(`${name}: loss and gradients equal PyTorch's to 1e-4`, { skip }, async () => {
    const r = await compareWithTorch(cfg, batch);
    assert.ok(r.lossRelError < 1e-4, `loss ${r.loss} vs PyTorch ${r.torchLoss}`);
    assert.ok(r.gradRelError < 1e-4, `gradient of ${r.worstParam} differs from PyTorch by ${r.gradRelError} relative`);
  });
}
