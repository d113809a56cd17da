// The partition pass (ir/partition.ts): a program with communicating collectives is cut by
// level into ONNX parts and communication steps; identity collectives stay inside a part; a
// program without communication stays one part. Running the parts on real process groups is
// test/engine/collective-programs.test.ts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Graph, type Program } from '../../src/ir/graph.js';
import { hostValue } from '../../src/ir/value.js';
import { partitionProgram, hasCommunication, type Partition } from '../../src/ir/partition.js';
import { compile } from '../../src/runtime/execute.js';
import { runReference, refFromHost } from '../../src/runtime/reference/interpreter.js';
import { NamedExecutable } from '../../src/engine/named-program.js';
import { Tensor } from '../../src/tensor/tensor.js';
import { withGraph } from '../../src/tensor/trace.js';
import { copyToParallel, reduceFromParallel, type ParallelAxis } from '../../src/tensor/collective.js';
import { CASES } from '../engine/tp-cases.js';

const TP: ParallelAxis = { name: 'tp', size: 2, rank: 0 };

function program(shapes: Record<string, number[]>, body: (x: Record<string, Tensor>) => Tensor[]): Program {
  const graph = new Graph();
  return withGraph(graph, () => {
    const ins = Object.fromEntries(Object.entries(shapes).map(([k, s]) => [k, new Tensor(graph, graph.input(k, s, 'float32'))]));
    return { graph, inputs: Object.values(ins).map((t) => t.id), outputs: body(ins).map((t) => t.id) };
  });
}

const kinds = (p: Partition) => p.steps.map((s) => (s.kind === 'comm' ? `comm${s.level}:${s.calls.map((c) => c.kind).join('+')}` : `part${s.level}`));
const partInputs = (p: Partition, level: number) => {
  const s = p.steps.find((x) => x.kind === 'compute' && x.level === level);
  assert.ok(s && s.kind === 'compute', `no compute part of level ${level}`);
  return s.program.inputs.map((id) => String(s.program.graph.node(id).attrs.name));
};

/** Every value a step reads was fed or made by an earlier step; every output is made somewhere. */
function assertWellFormed(p: Partition): void {
  const ready = new Set(p.inputs);
  for (const s of p.steps) {
    const reads = s.kind === 'compute' ? s.inputs : s.calls.map((c) => c.input);
    for (const id of reads) assert.ok(ready.has(id), `step ${kinds(p)[p.steps.indexOf(s)]} reads node ${id} before any step makes it`);
    for (const id of s.kind === 'compute' ? s.outputs : s.calls.map((c) => c.id)) ready.add(id);
  }
  for (const o of p.outputs) assert.ok(ready.has(o) || p.constants.has(o), `output node ${o} is made by no step`);
}

test('a program without collectives stays one part', () => {
  const p = program({ x: [2, 3] }, (t) => [t.x!.exp().sum()]);
  assert.equal(hasCommunication(p), false);
  const part = partitionProgram(p);
  assert.deepEqual(kinds(part), ['part0']);
  assert.equal(part.levels, 0);
  assertWellFormed(part);
});

test("an identity collective (Megatron's f forward) stays inside its part and runs as Identity", async () => {
  const p = program({ x: [2, 3] }, (t) => [copyToParallel(t.x!, TP).mul(2)]);
  assert.equal(p.graph.nodes.filter((n) => n.op === 'collective').length, 1);
  assert.equal(hasCommunication(p), false);
  assert.deepEqual(kinds(partitionProgram(p)), ['part0']);
  const exe = await NamedExecutable.compile(p, ['y'], { threads: 1 });
  assert.equal(exe.partCount, 1);
  const { y } = await exe.run({ x: hostValue('float32', [2, 3], [1, 2, 3, 4, 5, 6]) });
  assert.deepEqual(Array.from(y!.data as Float32Array), [2, 4, 6, 8, 10, 12]);
});

test('the tensor-parallel MLP and its backward: 2 levels, the two forward all-reduces in one step', () => {
  const c = CASES.tp_mlp(TP);
  const p = partitionProgram(c.program);
  assert.equal(p.levels, 2);
  // Forward: x W1 -> gelu -> W2 (part 0); g and the hidden sum, both of level 1 (one fused
  // step); bias, loss and backward to the partial dx (part 1); f's backward all-reduce of dx;
  // the weight gradients, made in the last part (nothing reads them earlier).
  assert.deepEqual(kinds(p), ['part0', 'comm1:all_reduce_sum+all_reduce_sum', 'part1', 'comm2:all_reduce_sum', 'part2']);
  // Original inputs go only to the parts that read them: the bias is not needed before the reduce.
  assert.deepEqual(partInputs(p, 0).sort(), ['w1', 'w2', 'x']);
  assert.ok(partInputs(p, 1).includes('b'));
  assert.ok(!partInputs(p, 2).includes('b'));
  assertWellFormed(p);
  for (const make of Object.values(CASES)) assertWellFormed(partitionProgram(make(TP).program));
});

test('levels count collectives on the longest path; dead collectives are dropped; constants are re-created', () => {
  const p = program({ x: [4] }, (t) => {
    reduceFromParallel(t.x!.exp(), TP); // read by nothing
    const a = reduceFromParallel(t.x!, TP); // level 1
    const b = reduceFromParallel(reduceFromParallel(t.x!.mul(2), TP).add(1), TP); // levels 1, 2
    return [a.mul(3), b];
  });
  const part = partitionProgram(p);
  assert.equal(part.levels, 2);
  assert.deepEqual(kinds(part), ['part0', 'comm1:all_reduce_sum+all_reduce_sum', 'part1', 'comm2:all_reduce_sum', 'part2']);
  // The constants 3 and 1 are made inside the parts that use them, not fed across.
  for (const s of part.steps) {
    if (s.kind !== 'compute' || s.level === 0) continue;
    assert.ok(s.program.graph.nodes.some((n) => n.op === 'const'), `part ${s.level} re-creates its constant`);
    assert.ok(s.program.inputs.every((id) => String(s.program.graph.node(id).attrs.name).startsWith('crossing_')));
  }
  assertWellFormed(part);
});

test('one process refuses communication with the fix: the lowering, the reference and the engine', async () => {
  const p = program({ x: [4] }, (t) => [reduceFromParallel(t.x!, TP)]);
  await assert.rejects(compile(p, { threads: 1 }), /all_reduce_sum over 'tp' cannot run inside one ONNX program.*NamedExecutable\.compile\(program, outputNames, opts, \{ tp: processGroup \}\)/);
  assert.throws(() => runReference(p, [refFromHost(hostValue('float32', [4]))]), /reference interpreter: collective all_reduce_sum over 'tp' \(2 ranks\) needs the other ranks/);
  await assert.rejects(NamedExecutable.compile(p, ['y'], { threads: 1 }), /all_reduce_sum over mesh axis 'tp' \(2 ranks\) but was compiled without a process group for it \(groups given: none\)/);
});

test('a value returned twice, directly and through an identity collective, reaches every output', async () => {
  const p = program({ x: [3] }, (t) => {
    const y = t.x!.mul(2);
    return [y, y, copyToParallel(y, TP)];
  });
  const exe = await compile(p, { threads: 1 });
  const outs = await exe.run([hostValue('float32', [3], [1, 2, 3])]);
  for (const o of outs) assert.deepEqual(Array.from(o.data as Float32Array), [2, 4, 6]);
});
