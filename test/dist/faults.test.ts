// Faults with real processes: a killed worker makes every other rank fail promptly, naming it
// (detected by the dropped links, long before the timeout); a silent worker makes its
// neighbour fail at the configured timeout, naming it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { runWorkers } from './spawn.js';

test('a killed worker makes the others fail promptly, naming the dead rank', async () => {
  const t0 = Date.now();
  const results = await runWorkers(4, ['kill', '2'], { ATSCALE_TIMEOUT_MS: '60000' });
  const elapsed = Date.now() - t0;
  assert.equal(results[2]!.signal, 'SIGKILL');
  for (const r of results.filter((x) => x.rank !== 2)) {
    assert.ok(r.report, `rank ${r.rank} printed nothing: ${r.stderr}`);
    assert.equal(r.report.ok, false);
    assert.match(r.report.error!, /^rank 2 disconnected .*during all_reduce/);
    assert.equal(r.code, 1);
  }
  assert.ok(elapsed < 20_000, `took ${elapsed} ms; the timeout was 60000 ms`);
});

test('a silent worker makes its neighbour time out naming it', async () => {
  const results = await runWorkers(2, ['hang', '1'], { ATSCALE_TIMEOUT_MS: '1500' });
  const r0 = results[0]!;
  assert.equal(r0.report?.ok, false, r0.stderr);
  assert.equal(r0.report!.error, 'rank 1 did not answer within 1500 ms during all_reduce');
});
