// The checkpoint fuzzer in CI: 100 mutations of a real checkpoint, plain and universal (every
// kind at least twice), each in a child process; every one is refused with an error naming the file or the
// checkpoint, none loads, crashes or hangs. `npm run bench -- ckpt-fuzz` runs 1,000 or more.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fuzzCheckpoints } from '../../bench/ckpt-fuzz.js';
import { ALL_MUTATIONS } from '../../bench/ckpt-fuzz-universal.js';

test('100 checkpoint mutations: all refused naming the file, none loaded, crashed or hung', async () => {
  const s = await fuzzCheckpoints(100, 7);
  assert.equal(s.mutations, 100);
  assert.deepEqual({ loaded: s.loaded, crashed: s.crashed, hung: s.hung, unnamed: s.unnamed }, { loaded: 0, crashed: 0, hung: 0, unnamed: 0 }, s.examples.join('\n'));
  assert.equal(s.refused, 100);
  assert.equal(Object.keys(s.byKind).length, ALL_MUTATIONS.length);
});
