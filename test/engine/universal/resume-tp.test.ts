// Resharding round trips that train with tensor parallelism (resume-case.ts says what is
// checked): a real tp2 x pp2 run's checkpoint (each rank its tp shard, the padded vocabulary
// split in the manifest) -> dp4 with ZeRO-1 and -> dp2 x tp2, pp2 -> tp2, and 1 process (a
// plain checkpoint) -> dp2 x tp2 x pp2. The corpus's vocabulary (31) is odd, so the tp2
// embedding has a padding row that the checkpoint must drop and restore.
import { test } from 'node:test';
import { dsConfig, ONE, roundTrip } from './resume-case.js';

const TP2 = ['--tensor-model-parallel-size', '2'];
const PP2 = ['--pipeline-model-parallel-size', '2'];

test('tp2 x pp2 (trained) -> dp4 ZeRO-1: bitwise state, same losses as one process', (t) => {
  t.diagnostic(roundTrip('tp2pp2-dp4z1', { nproc: 4, flags: [...TP2, ...PP2] }, { nproc: 4, flags: ['--deepspeed-config', dsConfig('z1-dp4', 1, 1)] }, ONE, { source: { dp: 1, tp: 2, pp: 2, zero: 0 }, target: { dp: 4, tp: 1, pp: 1, zero: 1 } }));
});

test('tp2 x pp2 (trained) -> dp2 x tp2: the same tp degree reads its shards as written; bitwise state, same losses as one process', (t) => {
  t.diagnostic(roundTrip('tp2pp2-dp2tp2', { nproc: 4, flags: [...TP2, ...PP2] }, { nproc: 4, flags: [...TP2, '--deepspeed-config', dsConfig('z0-dp2', 2, 0)] }, ONE, { source: { dp: 1, tp: 2, pp: 2, zero: 0 }, target: { dp: 2, tp: 2, pp: 1, zero: 0 } }));
});

test('pp2 -> tp2: bitwise state, same losses as one process', (t) => {
  t.diagnostic(roundTrip('pp2-tp2', { nproc: 2, flags: PP2 }, { nproc: 2, flags: TP2 }, ONE, { source: { dp: 1, tp: 1, pp: 2, zero: 0 }, target: { dp: 1, tp: 2, pp: 1, zero: 0 } }));
});

test('1 process -> dp2 x tp2 x pp2 (ZeRO-1, 8 processes): bitwise state, same losses as one process', (t) => {
  t.diagnostic(roundTrip('one-dp2tp2pp2', ONE, { nproc: 8, flags: [...TP2, ...PP2, '--deepspeed-config', dsConfig('z1-dp2', 2, 1)] }, ONE, { target: { dp: 2, tp: 2, pp: 2, zero: 1 } }));
});
