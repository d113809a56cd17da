// Resharding round trips over data parallelism and ZeRO (resume-case.ts says what is checked):
// dp4 -> dp2, and dp2 with ZeRO-3 -> one process.
import { test } from 'node:test';
import { dsConfig, ONE, roundTrip } from './resume-case.js';

test('dp4 -> dp2: bitwise state, same losses as one process from that state', () => {
  roundTrip('dp4-dp2', { nproc: 4, flags: [] }, { nproc: 2, flags: [] }, ONE, { source: { dp: 4, tp: 1, pp: 1, zero: 0 }, target: { dp: 2, tp: 1, pp: 1, zero: 0 } });
});

test('dp2 ZeRO-3 -> 1 process: bitwise state, same losses as the ZeRO-3 run continued', () => {
  const z3 = ['--deepspeed-config', dsConfig('z3', 2, 3)];
  roundTrip('z3-one', { nproc: 2, flags: z3 }, ONE, { nproc: 2, flags: z3 }, { source: { dp: 2, tp: 1, pp: 1, zero: 3 } });
});
