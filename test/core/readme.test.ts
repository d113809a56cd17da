// The README's code example, as written there, type-checks and runs.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { grad, valueAndGrad, softmax, hostValue, type Tensor, type HostValue } from '../../src/index.js';

test('README example: grad and valueAndGrad over a tensor and a parameter record', async () => {
  const f = (x: Tensor) => softmax(x).mul(x).sum();
  // No casts: grad and valueAndGrad are typed from f's signature (a HostValue per Tensor).
  const dfdx: HostValue = await grad(f)(hostValue('float32', [3], [1, 2, 3]));
  assert.deepEqual(dfdx.shape, [3]);
  const loss = (p: { w: Tensor; b: Tensor }, x: Tensor) => x.matmul(p.w).add(p.b).square().mean();
  const [value, grads] = await valueAndGrad(loss)({ w: hostValue('float32', [3, 1], [1, 2, 3]), b: hostValue('float32', [1], [0]) }, hostValue('float32', [2, 3], [1, 0, 0, 0, 1, 0]));
  const gw: HostValue = grads.w;
  assert.deepEqual(gw.shape, [3, 1]);
  // rows give 1 and 2: mean(1, 4) = 2.5; d/db = mean(2 * [1, 2]) = 3; d/dw = [1, 2, 0]
  assert.equal((value.data as Float32Array)[0], 2.5);
  assert.deepEqual(Array.from(grads.b.data as Float32Array), [3]);
  assert.deepEqual(Array.from(grads.w.data as Float32Array), [1, 2, 0]);
});
