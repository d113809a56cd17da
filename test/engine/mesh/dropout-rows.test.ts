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

const blockProgram = (shape: number[], global?: number[], offset?: number[]) => buildProgram((t) => {
  const key = t.input('key', [], 'int64');
  const where: Record<string, number[]> = global ? { global, offset: offset! } : {};
  return { inputs: [key], outputs: [key.op('dropout_mask', [], { shape, p: 0.3, salt: 5, ...where }).cast('float32')] };
});

/** Elements of a [2, 4, 3, 5] array inside the block at `off` of size `size`, in order. */
function block(all: number[], size: number[], off: number[]): number[] {
  const out: number[] = [];
  for (let a = 0; a < size[0]!; a++) for (let b = 0; b < size[1]!; b++) for (let c = 0; c < size[2]!; c++) for (let d = 0; d < size[3]!; d++) {
    out.push(all[(((a + off[0]!) * 4 + b + off[1]!) * 3 + c + off[2]!) * 5 + d + off[3]!]!);
  }
  return out;
}

test('a block of heads or of the sequence draws that block of the global mask (ORT and reference)', async () => {
  const key = dropoutKeyAt(dropoutKey(99, 1, 3), 2);
  const keyV = hostValue('int64', [], [key]);
  const [full] = await (await compile(blockProgram([2, 4, 3, 5]), { optimize: false })).run([keyV]);
  const all = Array.from(full!.data as Float32Array);
  assert.ok(all.some((x) => x === 0) && all.some((x) => x === 1));
  // Tensor-parallel heads [2, 4) and a sequence-parallel part [1, 2) of axis 2.
  for (const [size, off] of [[[2, 2, 3, 5], [0, 2, 0, 0]], [[2, 4, 1, 5], [0, 0, 1, 0]], [[1, 2, 2, 5], [1, 0, 1, 0]]] as number[][][]) {
    const want = block(all, size!, off!);
    const [m] = await (await compile(blockProgram(size!, [2, 4, 3, 5], off!), { optimize: false })).run([keyV]);
    assert.deepEqual(Array.from(m!.data as Float32Array), want, `block ${size} at ${off}`);
    const ref = runReference(blockProgram(size!, [2, 4, 3, 5], off!), [refFromHost(keyV)]);
    assert.deepEqual(Array.from(ref[0]!.data as ArrayLike<number>).map(Number), want, `reference, block ${size} at ${off}`);
  }
  // The whole tensor as its own block is the plain mask.
  const [same] = await (await compile(blockProgram([2, 4, 3, 5], [2, 4, 3, 5], [0, 0, 0, 0]), { optimize: false })).run([keyV]);
  assert.deepEqual(Array.from(same!.data as Float32Array), all);
  // A block outside the global tensor is refused at trace time, naming the axis.
  assert.throws(() => blockProgram([2, 3, 3, 5], [2, 4, 3, 5], [0, 2, 0, 0]), /axis 1: the block \[2, 5\) does not lie inside the global size 4/);
});
