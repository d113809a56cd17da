// LoRA against a real peer: PyTorch wraps the same base weights with the same adapter and
// computes the loss (a third of the targets masked) and the adapter's gradients.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { torchAvailable } from '../../bench/peers/torch-peer.js';
import { compareLoraWithTorch } from '../../bench/peers/lora-equivalence.js';

const torch = torchAvailable();
const skip = torch.ok ? false : `PyTorch is not installed here (${torch.reason})`;

for (const [name, lora] of [
  ['LoRA r=4 on c_attn', { r: 4, alpha: 8, dropout: 0, targetModules: ['c_attn'], useRslora: false }],
  ['rsLoRA r=8 on c_attn, c_fc and c_proj', { r: 8, alpha: 16, dropout: 0, targetModules: ['c_attn', 'c_fc', 'c_proj'], useRslora: true }],
] as const) {
  test(`${name}: loss and adapter gradients equal PyTorch's to 1e-5`, { skip }, async () => {
    const r = await compareLoraWithTorch({ nLayer: 2, nHead: 2, nEmbd: 48, blockSize: 16, vocabSize: 50, bias: true }, { ...lora, targetModules: [...lora.targetModules] }, 3);
    assert.ok(r.lossRelError < 1e-5, `loss ${r.loss} vs PyTorch ${r.torchLoss}`);
    assert.ok(r.gradRelError < 1e-5, `gradient of ${r.worst} differs from PyTorch by ${r.gradRelError} relative`);
    // A test's peer keeps the machine's OpenBLAS pin, where it has one (only benchmarks drop it).
    const pin = process.env['OPENBLAS_CORETYPE'];
    assert.ok(r.blasCore.length > 0 && r.blasCore !== 'unknown', `blas_core ${r.blasCore}`);
    if (pin) assert.equal(r.blasCore.toLowerCase(), pin.toLowerCase());
  });
}
