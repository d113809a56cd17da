// Layout-independent dropout: the mask of rows [r0, r0 + b) drawn with dropoutKeyAt(key, r0)
// is exactly those rows of the mask one process draws for the whole batch, in ONNX Runtime and
// in the reference interpreter alike.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { buildProgram } from '../../../src/tensor/program.js';
import { compile } from '../../../src/runtime/execute.js';
import { runReference, refFromHost } from '../../../src/runtime/reference/interpreter.js';
import { hostValue } from '../../../src/ir/value.js';
import { dropoutKey, dropoutKeyAt } from '../../../src/engine/dropout-key.js';

const maskProgram = (rows: number) => buildProgram((t) => {
  const key = t.input('key', [], 'int64');
  return { inputs: [key], outputs: [key.op('dropout_mask', [], { shape: [rows, 3, 5], p: 0.3, salt: 7 }).cast('float32')] };
});

test('rows of a split batch draw the rows of the whole batch mask (ORT and reference)', async () => {
  const key = dropoutKey(1337, 4, 2);
  const whole = await compile(maskProgram(8), { optimize: false });
  const part = await compile(maskProgram(2), { optimize: false });
  const [full] = await whole.run([hostValue('int64', [], [dropoutKeyAt(key, 0)])]);
  const all = Array.from(full!.data as Float32Array);
  assert.ok(all.some((x) => x === 0) && all.some((x) => x === 1));
  // The plain key (row 0) is unchanged by the encoding.
  const [plain] = await whole.run([hostValue('int64', [], [key])]);
  assert.deepEqual(Array.from(plain!.data as Float32Array), all);
  for (const r0 of [0, 2, 4, 6]) {
    const [m] = await part.run([hostValue('int64', [], [dropoutKeyAt(key, r0)])]);
    assert.deepEqual(Array.from(m!.data as Float32Array), all.slice(r0 * 15, (r0 + 2) * 15), `rows ${r0}..${r0 + 2}`);
    const ref = runReference(maskProgram(2), [refFromHost(hostValue('int64', [], [dropoutKeyAt(key, r0)]))]);
    assert.deepEqual(Array.from(ref[0]!.data as ArrayLike<number>).map(Number), all.slice(r0 * 15, (r0 + 2) * 15));
  }
});
