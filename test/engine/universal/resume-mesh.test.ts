// Resharding round trips over pipeline and tensor-parallel layouts (resume-case.ts says what is
// checked): 1 process -> dp2 x pp2 with ZeRO-1 and pp2 -> 1 process (the layouts that train
// with tensor parallelism are in resume-tp.test.ts).
import { test } from 'node:test';
import { dsConfig, ONE, roundTrip } from './resume-case.js';

test('1 process -> dp2 x pp2 (ZeRO-1): bitwise state, same losses as one process', () => {
  roundTrip('one-dp2pp2', ONE, { nproc: 4, flags: ['--pipeline-model-parallel-size', '2', '--deepspeed-config', dsConfig('z1', 2, 1)] }, ONE, { target: { dp: 2, tp: 1, pp: 2, zero: 1 } });
});

test('pp2 -> 1 process: bitwise state, same losses as the pp2 run continued', () => {
  const pp2 = { nproc: 2, flags: ['--pipeline-model-parallel-size', '2'] };
  roundTrip('pp2-one', pp2, ONE, pp2, { source: { dp: 1, tp: 1, pp: 2, zero: 0 } });
});

