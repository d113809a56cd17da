// Asynchronous universal saves on a real pp2 pipeline: the same case as the ZeRO-3 one
// (../async-save-case.ts): rank 1 killed while a save is staged but unpublished leaves the
// previous checkpoint as the newest complete one, and resume finishes bit-exactly.
import { test } from 'node:test';
import { rmSync } from 'node:fs';
import { meshCase } from './mesh-case.js';
import { asyncSaveCase } from '../async-save-case.js';

const { work, FLAGS } = meshCase('atscale-async-pp-');

test('pp2, async saves: rank 1 killed with a save in flight; the previous checkpoint loads and resume is bit-exact', () => asyncSaveCase(work, 'pp2', [...FLAGS, '--pipeline-model-parallel-size', '2']));

test.after(() => rmSync(work, { recursive: true, force: true }));
