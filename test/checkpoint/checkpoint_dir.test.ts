import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { saveCheckpoint, loadCheckpoint } from '../../src/checkpoint/checkpoint_dir.js';
import type { TensorEntry } from '../../src/checkpoint/safetensors.js';

const CHECKPOINT_MODULE = new URL('../../src/checkpoint/checkpoint_dir.js', import.meta.url).href;

function contents(step: number, n = 1000) {
  const tensors: Record<string, TensorEntry> = {
    'wte.weight': { dtype: 'F32', shape: [n], data: new Float32Array(n).fill(step) },
    'optim.m': { dtype: 'F32', shape: [n], data: new Float32Array(n).fill(step / 2) },
  };
  return { tensors, meta: { step, rng: [1, 2, 3, step], config: { n_layer: 4 } }, files: { 'tokenizer.json': JSON.stringify({ kind: 'char', chars: ['a'] }) } };
}

function withDir(fn: (root: string) => void | Promise<void>): () => Promise<void> {
  return async () => {
    const root = mkdtempSync(join(tmpdir(), 'atscale-ckpt-'));
    try {
      await fn(root);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  };
}

test('checkpoint: save/load round trip; a second save keeps the first as DIR.prev', withDir((root) => {
  const dir = join(root, 'ckpt');
  saveCheckpoint(dir, contents(1));
  const a = loadCheckpoint(dir);
  assert.deepEqual(a.meta, { step: 1, rng: [1, 2, 3, 1], config: { n_layer: 4 } });
  assert.deepEqual(a.tensors['wte.weight']!.data, new Float32Array(1000).fill(1));
  assert.equal(a.files['tokenizer.json'], JSON.stringify({ kind: 'char', chars: ['a'] }));
  assert.deepEqual(readdirSync(dir).sort(), ['manifest.json', 'meta.json', 'model.safetensors', 'tokenizer.json']);
  const manifest = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8'));
  assert.match(manifest.files['model.safetensors'].sha256, /^[0-9a-f]{64}$/);

  saveCheckpoint(dir, contents(2));
  assert.equal(loadCheckpoint(dir).meta['step'], 2);
  assert.equal(loadCheckpoint(`${dir}.prev`).meta['step'], 1);
  assert.deepEqual(readdirSync(root).sort(), ['ckpt', 'ckpt.prev']); // no staging left behind
  // The crash window between the two renames: DIR is gone, DIR.prev is whole and is used.
  rmSync(dir, { recursive: true });
  const fallback = loadCheckpoint(dir);
  assert.equal(fallback.meta['step'], 1);
  assert.equal(fallback.dir, `${dir}.prev`);
}));

test('checkpoint: truncated, tampered, missing and incomplete checkpoints are refused whole', withDir((root) => {
  const dir = join(root, 'ckpt');
  const fresh = (): void => {
    rmSync(dir, { recursive: true, force: true });
    saveCheckpoint(dir, contents(3));
  };
  fresh();
  const size = readFileSync(join(dir, 'model.safetensors')).length;
  truncateSync(join(dir, 'model.safetensors'), size - 100);
  assert.throws(() => loadCheckpoint(dir), new RegExp(`model\\.safetensors has ${size - 100} bytes but manifest\\.json says ${size}; the file is truncated, refusing to load`));

  fresh();
  const bytes = readFileSync(join(dir, 'model.safetensors'));
  bytes[bytes.length - 5]! ^= 0x01; // one flipped bit in a weight
  writeFileSync(join(dir, 'model.safetensors'), bytes);
  assert.throws(() => loadCheckpoint(dir), /model\.safetensors does not match its sha256 in manifest\.json; the file was modified or damaged/);

  fresh();
  writeFileSync(join(dir, 'meta.json'), readFileSync(join(dir, 'meta.json'), 'utf8').replace('"step": 3', '"step": 9'));
  assert.throws(() => loadCheckpoint(dir), /meta\.json does not match its sha256/);

  fresh();
  rmSync(join(dir, 'tokenizer.json'));
  assert.throws(() => loadCheckpoint(dir), /tokenizer\.json is listed in manifest\.json but missing/);

  fresh();
  rmSync(join(dir, 'manifest.json'));
  assert.throws(() => loadCheckpoint(dir), /is incomplete or not a checkpoint: manifest\.json is missing/);
  assert.throws(() => loadCheckpoint(join(root, 'nothing')), /checkpoint .*nothing not found/);
}));

test('checkpoint: bad contents are refused before anything is written', withDir((root) => {
  const dir = join(root, 'ckpt');
  assert.throws(() => saveCheckpoint(dir, { ...contents(1), files: { '../evil': 'x' } }), /must be a plain file name/);
  assert.throws(() => saveCheckpoint(dir, { ...contents(1), files: { 'meta.json': 'x' } }), /"meta\.json" is reserved/);
  assert.throws(() => saveCheckpoint(dir, { tensors: { a: { dtype: 'F32', shape: [2], data: new Float32Array(3) } }, meta: {} }), /shape \[2\] has 2 elements but the data has 3/);
  assert.equal(existsSync(dir), false);
  assert.deepEqual(readdirSync(root), []); // the failed save cleaned up its staging directory
}));

test('checkpoint: a writer killed at arbitrary moments never leaves an unloadable or mixed checkpoint', withDir(async (root) => {
  const dir = join(root, 'ckpt');
  // A child process saves checkpoints 1, 2, 3, ... in a loop (1 MB each) until it is killed.
  const script = `
    const { saveCheckpoint } = await import(${JSON.stringify(CHECKPOINT_MODULE)});
    const n = 1 << 18;
    for (let step = 1; ; step++) {
      saveCheckpoint(${JSON.stringify(dir)}, { tensors: { w: { dtype: 'F32', shape: [n], data: new Float32Array(n).fill(step) } }, meta: { step } });
      if (step === 1) process.stdout.write('saved\\n');
    }`;
  for (const delayMs of [0, 37, 91, 150, 260]) {
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
    await new Promise<void>((resolve, reject) => {
      child.stdout.once('data', () => resolve());
      child.once('exit', (code) => reject(new Error(`checkpoint writer exited early with code ${code}`)));
    });
    await new Promise((r) => setTimeout(r, delayMs));
    child.kill('SIGKILL');
    await new Promise((r) => child.once('exit', r));
    const loaded = loadCheckpoint(dir);
    const step = loaded.meta['step'] as number;
    assert.ok(step >= 1);
    const w = loaded.tensors['w']!.data as Float32Array;
    assert.equal(w[0], step);
    assert.equal(w[w.length - 1], step, 'weights and meta come from the same save');
    console.log(`# killed after ${delayMs} ms: loaded step ${step} from ${loaded.dir === dir ? 'DIR' : 'DIR.prev'}`);
  }
}));
