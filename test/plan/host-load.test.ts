// The background load the planner is told about comes from CPU time, not the load average:
// a real sample of this host, and the fair-share arithmetic on given samples.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { backgroundThreads, cpuSample } from '../../src/cli/host-load.js';

test('other programs\' threads from CPU time: idle cores count as they are, saturated cores by fair share', () => {
  const at = (all: number, mine: number, seconds: number) => ({ all, mine, at: seconds });
  // 10 s on 2 cores: we ran 10 s, others 5 s: not saturated, half a core of others.
  assert.equal(backgroundThreads(at(0, 0, 0), at(15, 10, 10), 1, 2), 0.5);
  // Saturated: our one thread got 6 s, others 14 s: 14 / 6 of a thread per our thread.
  assert.ok(Math.abs(backgroundThreads(at(0, 0, 0), at(20, 6, 10), 1, 2) - 14 / 6) < 1e-12);
  // Two ranks got 8 s between them, others 12 s: 3 threads.
  assert.ok(Math.abs(backgroundThreads(at(0, 0, 0), at(20, 8, 10), 2, 2) - 3) < 1e-12);
  // Nobody else: zero.
  assert.equal(backgroundThreads(at(100, 50, 0), at(110, 60, 10), 1, 2), 0);
});

test('a real sample: our own busy loop shows up as ours, not as others\'', () => {
  if (!existsSync('/proc/stat')) return;
  const a = cpuSample()!;
  // Spin until Node says this process has used 0.3 s of CPU, however busy the host is.
  const start = process.cpuUsage();
  let x = 0;
  while ((process.cpuUsage(start).user + process.cpuUsage(start).system) / 1e6 < 0.3) x += Math.sqrt(x + 1);
  const b = cpuSample()!;
  assert.ok(x > 0);
  // /proc counts the same 0.3 s as ours (in jiffies of 10 ms: allow for the rounding).
  assert.ok(b.mine - a.mine >= 0.25, `ours: ${b.mine - a.mine} s`);
  assert.ok(b.all - a.all >= b.mine - a.mine - 0.05);
});
