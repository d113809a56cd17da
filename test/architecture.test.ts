// The layering of DESIGN.md, enforced: every import in src/ points down this list (or stays
// in its own folder), plan/ needs nothing of the runtime, and no source file is over 500 lines.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative, dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const SRC = join(ROOT, 'src');
const LAYERS = ['cli', 'dashboard', 'engine', 'monitor', 'launch', 'dist', 'plan', 'models', 'nn', 'optim', 'data', 'checkpoint', 'autodiff', 'tensor', 'runtime', 'ir'];

function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name);
    return statSync(p).isDirectory() ? sources(p) : p.endsWith('.ts') ? [p] : [];
  });
}

const layerOf = (file: string) => relative(SRC, file).split('/')[0]!;

test('imports only point down the layers (plan/ imports no runtime code)', () => {
  const bad: string[] = [];
  for (const file of sources(SRC)) {
    const from = layerOf(file);
    if (!LAYERS.includes(from)) continue; // src/index.ts re-exports the public API
    const text = readFileSync(file, 'utf8');
    for (const m of text.matchAll(/(?:from|import)\s*\(?\s*'(\.[^']+)'/g)) {
      const target = resolve(dirname(file), m[1]!);
      const to = layerOf(target);
      if (to === from || !LAYERS.includes(to)) continue;
      if (LAYERS.indexOf(to) < LAYERS.indexOf(from)) bad.push(`${relative(ROOT, file)} (${from}) imports ${m[1]} (${to})`);
      if (from === 'plan') bad.push(`${relative(ROOT, file)}: plan/ must not import ${m[1]}`);
    }
  }
  assert.deepEqual(bad, []);
});

test('no source file is over 500 lines', () => {
  const long = sources(SRC).map((f) => [relative(ROOT, f), readFileSync(f, 'utf8').split('\n').length] as const).filter(([, n]) => n > 500);
  assert.deepEqual(long, []);
});
