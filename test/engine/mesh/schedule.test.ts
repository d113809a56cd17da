// Pipeline schedules as data: every schedule for a range of (p, v, m) is simulated; every send
// is received in order, nobody waits forever or on itself, and the idle time is the bubble of
// the papers: (p-1)/m for GPipe and 1F1B, (p-1)/(v*m) for interleaved 1F1B.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { gpipe, interleaved, oneFOneB, formatInstr, type PipelineSchedule } from '../../../src/engine/pipeline/schedule.js';
import { simulate, ScheduleError } from '../../../src/engine/pipeline/simulate.js';

const close = (a: number, b: number) => Math.abs(a - b) < 1e-9;

function checkCounts(s: PipelineSchedule): void {
  // Each rank: m*v forwards, m*v backwards, one reduce and one step, the step last.
  for (const is of s.ranks) {
    assert.equal(is.filter((i) => i.op === 'forward').length, s.m * s.v);
    assert.equal(is.filter((i) => i.op === 'backward').length, s.m * s.v);
    assert.equal(is.at(-1)!.op, 'step');
    assert.equal(is.filter((i) => i.op === 'reduce').length, 1);
  }
}

test('GPipe and 1F1B: matched messages, no deadlock, bubble (p-1)/m on every rank', () => {
  let n = 0;
  for (let p = 1; p <= 6; p++) {
    for (const m of [1, 2, 3, 4, 7, 8, 16]) {
      for (const s of [gpipe(p, m), oneFOneB(p, m)]) {
        checkCounts(s);
        const r = simulate(s);
        for (const b of r.bubble) assert.ok(close(b, (p - 1) / m), `${s.name} p=${p} m=${m}: bubble ${b} != ${(p - 1) / m}`);
        n++;
      }
    }
  }
  assert.equal(n, 84);
});

test('1F1B keeps at most p - r micro-batches in flight on rank r (GPipe keeps m)', () => {
  const inFlight = (s: PipelineSchedule, r: number) => {
    let live = 0;
    let peak = 0;
    for (const i of s.ranks[r]!) {
      if (i.op === 'forward') peak = Math.max(peak, ++live);
      if (i.op === 'backward') live--;
    }
    return peak;
  };
  const s = oneFOneB(4, 16);
  assert.deepEqual([0, 1, 2, 3].map((r) => inFlight(s, r)), [4, 3, 2, 1]);
  assert.equal(inFlight(gpipe(4, 16), 0), 16);
});

test('interleaved 1F1B: matched, no deadlock, bubble (p-1)/(v*m), for p 2..4, v 1..4, m multiples of p', () => {
  let n = 0;
  for (let p = 2; p <= 4; p++) {
    for (let v = 1; v <= 4; v++) {
      for (const m of [p, 2 * p, 4 * p, 16]) {
        if (m % p) continue;
        const s = interleaved(p, v, m);
        checkCounts(s);
        const r = simulate(s);
        const want = (p - 1) / (v * m);
        // Rank 0 and the last rank hit the formula exactly; the others idle no more than it.
        assert.ok(close(Math.max(...r.bubble), want), `p=${p} v=${v} m=${m}: bubbles ${r.bubble.map((b) => b.toFixed(4))} vs ${want}`);
        n++;
      }
    }
  }
  assert.ok(n >= 40, `${n} interleaved schedules`);
  assert.throws(() => interleaved(2, 2, 3), /multiple of pp 2/);
});

test('the simulator catches a schedule whose receives are out of order, or that waits forever', () => {
  const s = oneFOneB(2, 2);
  // Swap rank 1's two activation receives (and the forwards after them): out of order.
  const bad: PipelineSchedule = { ...s, ranks: [s.ranks[0]!, [...s.ranks[1]!]] };
  const r1 = bad.ranks[1]!;
  const recvs = r1.flatMap((i, k) => (i.op === 'recv' && i.kind === 'act' ? [k] : []));
  const a = r1[recvs[0]!]!;
  r1[recvs[0]!] = r1[recvs[1]!]!;
  r1[recvs[1]!] = a;
  assert.throws(() => simulate(bad), (e: Error) => e instanceof ScheduleError && /expected micro-batch 1/.test(e.message));
  // Rank 0 waiting for a gradient before sending the activation it depends on: deadlock.
  const dead: PipelineSchedule = { ...s, ranks: [[s.ranks[0]!.find((i) => i.op === 'recv')!, ...s.ranks[0]!.filter((i) => i.op !== 'recv')], s.ranks[1]!] };
  assert.throws(() => simulate(dead), /deadlock: rank 0 .*rank 1/);
  // A schedule prints one readable line per instruction.
  assert.deepEqual(s.ranks[1]!.slice(0, 3).map(formatInstr), ['recv act mb0 s1 from r0', 'F mb0 s1', 'B mb0 s1']);
});
