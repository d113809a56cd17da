// Resharding round trips over pipeline and tensor-parallel layouts (resume-case.ts says what is
// checked): 1 process -> dp2 x pp2 with ZeRO-1, pp2 -> 1 process, and a tp2 x pp2 checkpoint
// (written by `atscale ckpt convert`: the engine does not train tp > 1 yet) -> dp4 with ZeRO-1.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { dsConfig, ONE, roundTrip, train, work } from './resume-case.js';

const CLI = fileURLToPath(new URL('../../../src/cli/main.js', import.meta.url));

test('1 process -> dp2 x pp2 (ZeRO-1): bitwise state, same losses as one process', () => {
  roundTrip('one-dp2pp2', ONE, { nproc: 4, flags: ['--pipeline-model-parallel-size', '2', '--deepspeed-config', dsConfig('z1', 2, 1)] }, ONE, { target: { dp: 2, tp: 1, pp: 2, zero: 1 } });
});

test('pp2 -> 1 process: bitwise state, same losses as the pp2 run continued', () => {
  const pp2 = { nproc: 2, flags: ['--pipeline-model-parallel-size', '2'] };
  roundTrip('pp2-one', pp2, ONE, pp2, { source: { dp: 1, tp: 1, pp: 2, zero: 0 } });
});

test('tp2 x pp2 -> dp4 ZeRO-1: bitwise state, same losses as one process', () => {
  train(join(work, 'tp-one'), 1, [], 2);
  const tp2pp2 = join(work, 'tp2pp2');
  const r = spawnSync(process.execPath, [CLI, 'ckpt', 'convert', join(work, 'tp-one', 'ckpt'), tp2pp2, '--layout', 'dp=1,tp=2,pp=2,zero=0'], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  roundTrip('tp2pp2-dp4z1', tp2pp2, { nproc: 4, flags: ['--deepspeed-config', dsConfig('z1-dp4', 1, 1)] }, ONE, { source: { dp: 1, tp: 2, pp: 2, zero: 0 }, target: { dp: 4, tp: 1, pp: 1, zero: 1 } });
});
