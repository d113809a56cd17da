import { test } from 'node:test';
import assert from 'node:assert/strict';
import { bf16BitsToFloat32, f16BitsToFloat32, float32ToBf16Bits, float32ToF16Bits } from '../../src/checkpoint/half.js';

test('F16: known bit patterns, rounding to nearest even, subnormals, overflow, NaN', () => {
  const cases: [number, number][] = [
    [0, 0x0000], [-0, 0x8000], [1, 0x3c00], [-2, 0xc000], [0.5, 0x3800], [65504, 0x7bff],
    [65520, 0x7c00], [1e6, 0x7c00], [-Infinity, 0xfc00], [2 ** -24, 0x0001], [2 ** -14, 0x0400],
    [2 ** -25, 0x0000], [3 * 2 ** -26, 0x0001], [1 + 2 ** -11, 0x3c00], [1 + 3 * 2 ** -11, 0x3c02], [0.1, 0x2e66],
  ];
  const bits = float32ToF16Bits(cases.map((c) => c[0]));
  cases.forEach(([v, b], i) => assert.equal(bits[i], b, `${v} -> 0x${b.toString(16)}, got 0x${bits[i]!.toString(16)}`));
  assert.ok(Number.isNaN(f16BitsToFloat32(float32ToF16Bits([NaN]))[0]));
  // Every finite half survives half -> float -> half.
  const all = Uint16Array.from({ length: 65536 }, (_, i) => i).filter((h) => (h & 0x7c00) !== 0x7c00);
  assert.deepEqual(float32ToF16Bits(f16BitsToFloat32(all)), all);
});

test('BF16: known bit patterns, rounding to nearest even, round trip', () => {
  const bits = float32ToBf16Bits([1, -2, 3.140625, 1 + 2 ** -8, 1 + 3 * 2 ** -8, Infinity]);
  assert.deepEqual(Array.from(bits), [0x3f80, 0xc000, 0x4049, 0x3f80, 0x3f82, 0x7f80]);
  assert.ok(Number.isNaN(bf16BitsToFloat32(float32ToBf16Bits([NaN]))[0]));
  const all = Uint16Array.from({ length: 65536 }, (_, i) => i).filter((h) => (h & 0x7f80) !== 0x7f80);
  assert.deepEqual(float32ToBf16Bits(bf16BitsToFloat32(all)), all);
});
