// Where ranks collect garbage (runtime/gc-threads.ts): on the main thread only when the ranks on
// a host take every core, unless ATSCALE_GC_THREADS says otherwise; a bad value is named.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chooseGcThreads, coresTaken } from '../../src/runtime/gc-threads.js';

test('ranks collect on their main thread only when their compute threads cover the cores', () => {
  assert.equal(coresTaken(2, 1, 2), true);
  assert.equal(coresTaken(4, 1, 2), true);
  assert.equal(coresTaken(2, 4, 8), true);
  assert.equal(coresTaken(2, 1, 4), false, 'two one-thread ranks leave two of four cores free');
  assert.equal(coresTaken(1, 8, 8), false, 'one process: its pool idles between session runs, where V8 collects');
  assert.equal(chooseGcThreads(2, 1, {}, 2), 'main');
  assert.equal(chooseGcThreads(2, 1, { ATSCALE_GC_THREADS: 'auto' }, 4), 'background');
  assert.equal(chooseGcThreads(2, 1, { ATSCALE_GC_THREADS: 'background' }, 2), 'background');
  assert.equal(chooseGcThreads(1, 1, { ATSCALE_GC_THREADS: 'main' }, 8), 'main');
  assert.throws(() => chooseGcThreads(2, 1, { ATSCALE_GC_THREADS: 'yes' }, 2), /ATSCALE_GC_THREADS must be auto, main or background, got 'yes'/);
});

test('a process that collects on its main thread still frees what it drops', () => {
  // Churns 1 GiB of 4 MiB ArrayBuffers (what a pipeline rank's session outputs are) after
  // switching; the process must finish with its external memory back near where it began.
  const script = `
    const { collectOnMainThread } = await import(${JSON.stringify(new URL('../../src/runtime/gc-threads.js', import.meta.url).href)});
    collectOnMainThread();
    const start = process.memoryUsage().arrayBuffers;
    let sum = 0;
    for (let i = 0; i < 256; i++) { const b = new Float32Array(1 << 20); b[i] = i; sum += b[i]; }
    globalThis.gc();
    console.log(JSON.stringify({ sum, grown: process.memoryUsage().arrayBuffers - start }));`;
  const r = spawnSync(process.execPath, ['--expose-gc', '--input-type=module', '-e', script], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  const out = JSON.parse(r.stdout) as { sum: number; grown: number };
  assert.equal(out.sum, (255 * 256) / 2);
  assert.ok(out.grown < 16 << 20, `${out.grown} bytes of ArrayBuffers still held after a full collection`);
});
