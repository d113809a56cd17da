// A two-layer MLP and a single causal self-attention block: gradients computed by the
// compiled ONNX graph equal the reference interpreter's, and both pass finite differences.
import { test } from 'node:test';
import type { Tensor } from '../../src/tensor/tensor.js';
import { crossEntropy, gelu, layerNorm, softmax, where, causalMask, split } from '../../src/tensor/functional.js';
import { checkCompiledGradient, checkGradient, type InputSpec } from './check.js';

const small = (r: { normal(): number }) => 0.3 * r.normal();

function mlpLoss(x: Tensor, w1: Tensor, b1: Tensor, w2: Tensor, b2: Tensor, y: Tensor): Tensor {
  const h = gelu(x.matmul(w1).add(b1));
  return crossEntropy(h.matmul(w2).add(b2), y);
}
const mlpSpecs: InputSpec[] = [
  { shape: [6, 5] },
  { shape: [5, 8], gen: small },
  { shape: [8], gen: small },
  { shape: [8, 4], gen: small },
  { shape: [4], gen: small },
  { shape: [6], dtype: 'int32', gen: (r) => r.int(4), grad: false },
];

function attentionLoss(x: Tensor, wqkv: Tensor, wo: Tensor, lnw: Tensor, lnb: Tensor): Tensor {
  const [b, t, c] = x.shape as [number, number, number];
  const heads = 2;
  const hs = c / heads;
  const h = layerNorm(x, lnw, lnb);
  const [q, k, v] = split(h.matmul(wqkv), 3, -1).map((z) => z.reshape([b, t, heads, hs]).permute([0, 2, 1, 3]));
  const att = softmax(where(causalMask(t, t, x.graph), q!.matmul(k!.transpose(-2, -1)).mul(1 / Math.sqrt(hs)), -1e9), -1);
  const y = att.matmul(v!).permute([0, 2, 1, 3]).reshape([b, t, c]).matmul(wo);
  return x.add(y).square().mean();
}
const attnSpecs: InputSpec[] = [
  { shape: [2, 4, 6] },
  { shape: [6, 18], gen: small },
  { shape: [6, 6], gen: small },
  { shape: [6], gen: (r) => 1 + 0.1 * r.normal() },
  { shape: [6], gen: small },
];

test('two-layer MLP: compiled gradients equal the reference', async () => {
  await checkCompiledGradient(mlpLoss as never, mlpSpecs);
});

test('two-layer MLP: gradients pass finite differences', () => {
  checkGradient((...xs) => (mlpLoss as (...a: Tensor[]) => Tensor)(...xs), mlpSpecs, 11, 1e-6);
});

test('attention block: compiled gradients equal the reference', async () => {
  await checkCompiledGradient(attentionLoss as never, attnSpecs);
});

test('attention block: gradients pass finite differences', () => {
  checkGradient((...xs) => (attentionLoss as (...a: Tensor[]) => Tensor)(...xs), attnSpecs, 12, 1e-6);
});
