// Graceful departure: a rank that destroys its group right after its last collective must not
// fail peers that are still finishing that collective but need nothing more from it, while
// anything started after it left fails at once naming it. Each run has 32 rounds over fresh
// meshes with the leaving rank, the collective and the lags varying (see leave-worker.ts).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { runWorkers } from './spawn.js';

for (const n of [3, 4]) {
  test(`${n} ranks: a rank that destroys its group right after a collective does not fail slower peers (32 rounds)`, async () => {
    const results = await runWorkers(n, [], { ATSCALE_TIMEOUT_MS: '10000', LEAVE_ROUNDS: '32' }, () => ({}), 'leave-worker.js');
    const failures: string[] = [];
    for (const r of results) {
      assert.ok(r.report, `rank ${r.rank} printed no report (exit ${r.code}, signal ${r.signal}): ${r.stderr}`);
      failures.push(...((r.report.failures as string[] | undefined) ?? []).map((f) => `rank ${r.rank}: ${f}`));
    }
    assert.deepEqual(failures, [], `${failures.length} failures in ${n} x 32 rank-rounds`);
  });
}

test('destroy() flushes a send still in progress before it closes: the peer receives all 8 MB after the sender exited', async () => {
  const results = await runWorkers(2, ['send-then-exit'], { ATSCALE_TIMEOUT_MS: '10000' }, () => ({}), 'leave-worker.js');
  for (const r of results) {
    assert.ok(r.report, `rank ${r.rank} printed no report (exit ${r.code}, signal ${r.signal}): ${r.stderr}`);
    assert.deepEqual(r.report.failures, [], `rank ${r.rank}`);
    assert.equal(r.code, 0);
  }
});
