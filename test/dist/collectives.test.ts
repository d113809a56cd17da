// Every collective, in 2 and 4 real processes over real sockets, checked against arithmetic.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { runWorkers } from './spawn.js';

for (const n of [2, 3, 4]) {
  test(`collectives in ${n} processes match the arithmetic (uneven sizes, subgroups, p2p)`, async () => {
    const results = await runWorkers(n, ['collectives']);
    for (const r of results) {
      assert.ok(r.report, `rank ${r.rank} printed no report (exit ${r.code}): ${r.stderr}`);
      assert.equal(r.report.ok, true, `rank ${r.rank}: ${r.report.error}`);
      assert.equal(r.code, 0);
    }
  });
}

test('float64 buffers travel as 8-byte elements in every collective (3 processes)', async () => {
  const results = await runWorkers(3, ['float64']);
  for (const r of results) assert.equal(r.report?.ok, true, `rank ${r.rank}: ${r.report?.error ?? r.stderr}`);
});

test('TCP between ranks that are on different hosts (distinct host ids)', async () => {
  const results = await runWorkers(2, ['collectives'], {}, (r) => ({ ATSCALE_HOST_ID: `host-${r}` }));
  for (const r of results) assert.equal(r.report?.ok, true, `rank ${r.rank}: ${r.report?.error ?? r.stderr}`);
});

test('segments larger than the staging buffer, streamed into place (4 processes, 256 KiB segments)', async () => {
  const results = await runWorkers(4, ['collectives'], { TEST_SEGMENT_BYTES: String(256 * 1024) });
  for (const r of results) assert.equal(r.report?.ok, true, `rank ${r.rank}: ${r.report?.error ?? r.stderr}`);
});
