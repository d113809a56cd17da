// A sharded save that crashed between its two renames leaves only DIR.prev: it is still found
// and loaded (the same rule as single-file checkpoints), not reported as missing.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, renameSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { saveShardedCheckpoint, finalizeShardedCheckpoint, isShardedCheckpoint, ShardedCheckpoint } from '../../src/checkpoint/index.js';

test('a sharded checkpoint left only as DIR.prev is recognised and loads', () => {
  const root = mkdtempSync(join(tmpdir(), 'atscale-sprev-'));
  try {
    const dir = join(root, 'ckpt');
    saveShardedCheckpoint(dir, 0, 1, 'one', { tensors: { w: { dtype: 'F32', shape: [3], data: Float32Array.of(1, 2, 3) } }, meta: { iter: 7 }, files: { 'tokenizer.json': '{}' } });
    finalizeShardedCheckpoint(dir, 1, 'one');
    renameSync(dir, `${dir}.prev`);
    assert.ok(isShardedCheckpoint(dir));
    const ck = new ShardedCheckpoint(dir);
    assert.equal(ck.meta.iter, 7);
    assert.deepEqual(Array.from(ck.readTensor('w').data as Float32Array), [1, 2, 3]);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});
