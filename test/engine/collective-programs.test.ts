// Programs with collectives, run for real: two rank processes on loopback each trace the cases
// of tp-cases.ts with their shards (tensor-parallel MLP, sequence-parallel MLP along dim 1 and
// dim 0, vocabulary-parallel log-sum-exp with all_reduce_max) and run them with NamedExecutable
// on their process group. Every output and gradient must equal the matching slice of the same
// computation on one process with the full weights (no collectives), within 1e-6 relative
// (float32; a variant sends its activations in float16).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { NamedExecutable } from '../../src/engine/named-program.js';
import type { HostValue } from '../../src/ir/value.js';
import { relError } from '../core/check.js';
import { runRanks } from './spawn-ranks.js';
import { CASES, sliceAlong } from './tp-cases.js';

const WORKER = fileURLToPath(new URL('./collective-worker.js', import.meta.url));
const TP = 2;

/** How rank r's output relates to the one-process output: equal (replicated) or its part along a dim. */
const SPLIT: Record<keyof typeof CASES, Record<string, number | null>> = {
  tp_mlp: { loss: null, y: null, hsum: null, d_x: null, d_w1: 1, d_w2: 0, d_b: null },
  sp_mlp_dim1: { loss: null, o: 1, d_x: 1, d_w1: 1, d_w2: 0 },
  sp_mlp_dim0: { loss: null, o: 0, d_x: 0, d_w1: 1, d_w2: 0 },
  sp_mlp_dim1_f16: { loss: null, o: 1, d_x: 1, d_w1: 1, d_w2: 0 },
  vocab_lse: { loss: null, m: null, lse: null, d_logits: 1 },
};
/** ONNX parts each case is cut into (partition.test.ts explains the levels). */
const PARTS: Record<keyof typeof CASES, number> = { tp_mlp: 3, sp_mlp_dim1: 5, sp_mlp_dim0: 5, sp_mlp_dim1_f16: 5, vocab_lse: 3 };

/** float32 everywhere; the float16 case rounds partial sums to half precision before the
 * reduce-scatter, where one process rounds the full sum: about one half-precision ulp. */
const TOL: Record<keyof typeof CASES, number> = { tp_mlp: 1e-6, sp_mlp_dim1: 1e-6, sp_mlp_dim0: 1e-6, sp_mlp_dim1_f16: 2e-3, vocab_lse: 1e-6 };

interface RankCase {
  parts: number;
  same: boolean;
  outputs: Record<string, { shape: number[]; data: number[] }>;
}

test('tensor- and sequence-parallel programs on 2 real ranks equal one process, gradients included', async () => {
  const runs = await runRanks(WORKER, TP, {}, 60_000);
  for (const r of runs) assert.equal(r.code, 0, `rank ${r.rank} failed:\n${r.stderr}`);
  for (const [name, make] of Object.entries(CASES) as [keyof typeof CASES, (typeof CASES)[keyof typeof CASES]][]) {
    const one = make({ name: 'tp', size: 1, rank: 0 });
    const exe = await NamedExecutable.compile(one.program, one.outputs, { threads: 1 });
    assert.equal(exe.partCount, 1, `${name}: without collectives the program is one ONNX session`);
    const want = await exe.run(one.feeds);
    assert.deepEqual(Object.keys(SPLIT[name]).sort(), [...one.outputs].sort(), `${name}: every output is compared`);
    for (const run of runs) {
      const got = run.result![name] as RankCase;
      assert.equal(got.parts, PARTS[name], `${name}: ONNX parts`);
      assert.ok(got.same, `${name}: rank ${run.rank} gave different values on its second run`);
      for (const [out, dim] of Object.entries(SPLIT[name])) {
        const full: HostValue = want[out]!;
        const expected = dim === null ? full : sliceAlong(full, dim, TP, run.rank);
        const g = got.outputs[out]!;
        assert.deepEqual(g.shape, expected.shape, `${name}.${out}: shape on rank ${run.rank}`);
        const err = relError(g.data, Array.from(expected.data as Float32Array));
        assert.ok(err <= TOL[name], `${name}.${out} on rank ${run.rank}: relative error ${err} > ${TOL[name]} against one process`);
      }
    }
  }
  // The shift of the vocabulary-parallel softmax is the global max, bit for bit.
  const full = CASES.vocab_lse({ name: 'tp', size: 1, rank: 0 });
  const logits = full.feeds.logits!;
  const rows = logits.shape[0]!;
  const cols = logits.shape[1]!;
  const rowMax = Array.from({ length: rows }, (_, i) => Math.max(...(logits.data as Float32Array).subarray(i * cols, (i + 1) * cols)));
  for (const run of runs) assert.deepEqual((run.result!.vocab_lse as RankCase).outputs.m!.data, Array.from(Float32Array.from(rowMax)));
  // The profiler reads every ONNX part's trace of a partitioned program.
  for (const run of runs) {
    const prof = run.result!.profile as { files: number; kernels: number; ops: string[]; stepUs: number };
    assert.equal(prof.files, PARTS.tp_mlp, 'one ONNX Runtime trace per part');
    assert.ok(prof.kernels > 0 && prof.stepUs > 0, `profile of the parts: ${JSON.stringify(prof)}`);
    assert.ok(prof.ops.includes('MatMul') && prof.ops.includes('Gelu'), `kernels of both the forward and the backward parts: ${prof.ops.join(', ')}`);
  }
  // Compiled without the process group its collectives need: refused, naming the axis and the fix.
  for (const run of runs) assert.match(String(run.result!.wrongSize), /mesh axis 'tp': the program was traced for 2 ranks but its process group has 1/);
  for (const run of runs) assert.match(String(run.result!.missingGroup), /all_reduce_sum over mesh axis 'tp' \(2 ranks\).*without a process group.*\{ tp: <the ProcessGroup of that axis> \}.*NamedExecutable\.compile/);
});
