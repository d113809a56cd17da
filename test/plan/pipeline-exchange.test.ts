// Pipelines whose transfers are rendezvous (Megatron-LM 2021, DeepSpeed's engine): against
// the asynchronous event timeline and the closed forms.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { type ExchangeFramework, simulateExchanges } from '../../src/plan/pipeline-exchange.js';
import { simulatePipeline } from '../../src/plan/pipeline-sim.js';

const run = (framework: ExchangeFramework, p: number, v: number, m: number, wire = 0, gather = 0, f = 1, b = 3) =>
  simulateExchanges({ framework, stages: p, chunks: v, microBatches: m, forward: new Array(p * v).fill(f / v), backward: new Array(p * v).fill(b / v), wire, gather });

test('free transfers: every framework\'s schedule takes the closed form (m + (p - 1) / v)(F + B), for many shapes', () => {
  for (const [p, v, m] of [[2, 1, 2], [4, 1, 8], [4, 1, 3], [8, 1, 64], [35, 1, 240], [4, 3, 28], [8, 2, 48], [4, 2, 4], [16, 2, 144], [35, 3, 70]] as const) {
    const ideal = (m + (p - 1) / v) * 4;
    const megatron = run('megatron-2021', p, v, m);
    assert.ok(Math.abs(megatron.makespan - ideal) < 1e-9, `megatron p ${p} v ${v} m ${m}: ${megatron.makespan} vs ${ideal}`);
    assert.ok(megatron.busy.every((x) => Math.abs(x - 4 * m) < 1e-9));
    if (v === 1) {
      const ds = run('deepspeed', p, v, m);
      assert.ok(Math.abs(ds.makespan - ideal) < 1e-9, `deepspeed p ${p} m ${m}: ${ds.makespan} vs ${ideal}`);
    }
  }
});

test('transfers occupy both stages: more than the asynchronous timeline with the same send time, and counted per stage', () => {
  const p = 8, m = 32, wire = 0.02;
  const async = simulatePipeline({ schedule: '1f1b', stages: p, chunks: 1, microBatches: m, forward: new Array(p).fill(1), backward: new Array(p).fill(3), weightGrad: new Array(p).fill(0), send: new Array(p - 1).fill(wire) });
  const sync = run('megatron-2021', p, 1, m, wire);
  const ds = run('deepspeed', p, 1, m, wire, 0.01);
  assert.ok(sync.makespan > async.makespan, `${sync.makespan} vs ${async.makespan}`);
  // A middle stage exchanges twice per micro-batch in Megatron (after its forward, after its
  // backward; its warm-up and cool-down forwards and backwards send and receive apart);
  // DeepSpeed sends and receives in four blocking calls and gathers three slices.
  assert.ok(sync.comm[3]! >= 2 * m * wire - 1e-9 && sync.comm[3]! <= (2 * m + 2 * p) * wire, `${sync.comm[3]}`);
  assert.ok(Math.abs(ds.comm[3]! - m * (4 * wire + 3 * 0.01)) < 1e-9, `${ds.comm[3]}`);
  assert.ok(ds.makespan > sync.makespan);
  // The ends talk to one neighbour only.
  assert.ok(sync.comm[0]! < sync.comm[3]! && sync.comm[p - 1]! < sync.comm[3]!);
});

test('the interleaved exchange sends a forward\'s output only after the backward that follows it: a slow stage stalls its neighbours more than asynchronous sends would', () => {
  const p = 4, v = 2, m = 16;
  const forward = new Array(p * v).fill(0.5), backward = new Array(p * v).fill(1.5);
  forward[2] = 1; backward[2] = 3; // stage 2's first chunk is twice as slow
  const sync = simulateExchanges({ framework: 'megatron-2021', stages: p, chunks: v, microBatches: m, forward, backward, wire: 0, gather: 0 });
  const async = simulatePipeline({ schedule: 'interleaved', stages: p, chunks: v, microBatches: m, forward, backward, weightGrad: new Array(p * v).fill(0), send: new Array(p * v - 1).fill(0) });
  assert.ok(sync.makespan >= async.makespan - 1e-9, `${sync.makespan} vs ${async.makespan}`);
  // The slow stage sets the pace in both: its busy time is the floor.
  assert.ok(sync.makespan >= sync.busy[2]!);
});

test('DeepSpeed has no interleaved schedule', () => {
  assert.throws(() => run('deepspeed', 4, 2, 8), /DeepSpeed's TrainSchedule has no interleaving/);
});
