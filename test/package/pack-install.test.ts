// The package as a user gets it: `npm pack`, install the tarball into a fresh project (the npm
// registry or its cache is the only source; onnxruntime-node's CUDA download is denied through
// npm's allowScripts), compile a strict TypeScript program there that trains a tiny GPT,
// samples and exports it, run it, and run the installed `atscale --version`.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync, type SpawnSyncOptions } from 'node:child_process';
import { copyFileSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string; devDependencies: Record<string, string> };
const work = mkdtempSync(join(tmpdir(), 'atscale-pack-'));

function sh(cmd: string, args: string[], opts: SpawnSyncOptions = {}): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: 600_000, ...opts });
  assert.equal(r.status, 0, `${cmd} ${args.join(' ')} failed (${r.status ?? r.signal}):\n${String(r.stdout).slice(-3000)}\n${String(r.stderr).slice(-3000)}`);
  return String(r.stdout);
}

test('the packed tarball installs into a fresh project and its typed API trains, samples and exports', (t) => {
  // dist/ is already built by `npm test`; --ignore-scripts skips prepack's rebuild of it.
  const packed = JSON.parse(sh('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', work], { cwd: ROOT })) as { filename: string; size: number; files: { path: string }[] }[];
  const files = packed[0]!.files.map((f) => f.path);
  for (const want of ['package.json', 'README.md', 'bin/atscale.js', 'dist/src/index.js', 'dist/src/index.d.ts', 'dist/src/cli/main.js', 'examples/train-tiny.ts', 'examples/ds.json']) assert.ok(files.includes(want), `the tarball lacks ${want}`);
  for (const f of files) assert.ok(!/^(src|test|dist\/test)\//.test(f) && !f.endsWith('.map'), `the tarball should not carry ${f}`);
  t.diagnostic(`package: ${packed[0]!.filename}, ${(packed[0]!.size / 1024).toFixed(0)} kB packed, ${files.length} files`);

  const app = join(work, 'app');
  sh('mkdir', ['-p', app]);
  // allowScripts false: npm (11) skips onnxruntime-node's postinstall, which would fetch the
  // CUDA provider from outside the registry; the CPU and WebGPU providers ship in the package.
  writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'app', version: '1.0.0', private: true, type: 'module', allowScripts: { 'onnxruntime-node': false } }, null, 2));
  sh('npm', ['install', '--no-audit', '--no-fund', '--prefer-offline', join(work, packed[0]!.filename), `typescript@${pkg.devDependencies.typescript}`, `@types/node@${pkg.devDependencies['@types/node']}`], { cwd: app });
  const ortBin = join(app, 'node_modules', 'onnxruntime-node', 'bin', 'napi-v6', 'linux', 'x64');
  if (existsSync(ortBin)) assert.ok(!readdirSync(ortBin).some((f) => f.includes('cuda')), 'the CUDA provider was downloaded: the install script ran');

  for (const f of ['train-tiny.ts', 'autodiff.ts']) copyFileSync(join(ROOT, 'examples', f), join(app, f));
  writeFileSync(join(app, 'tsconfig.json'), JSON.stringify({ compilerOptions: { target: 'ES2022', module: 'NodeNext', moduleResolution: 'NodeNext', strict: true, noEmitOnError: true, types: ['node'] }, include: ['*.ts'] }));
  sh(process.execPath, [join(app, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', app]);

  const out = sh(process.execPath, ['train-tiny.js'], { cwd: app, env: { ...process.env, ATSCALE_MAX_ITERS: '20', EXAMPLE_OUT: join(app, 'run') } });
  assert.match(out, /trained 20 steps/);
  assert.match(out, /sample: 12\+34=.{24}/s);
  assert.ok(statSync(join(app, 'run', 'model.onnx')).size > 10_000, 'no exported model');
  assert.ok(existsSync(join(app, 'run', 'ckpt', 'model.safetensors')), 'no checkpoint');
  assert.match(sh(process.execPath, ['autodiff.js'], { cwd: app }), /dL\/dw Float32Array\(3\) \[ 1, 2, 0 \]/);

  assert.equal(sh(join(app, 'node_modules', '.bin', 'atscale'), ['--version'], { cwd: app }).trim(), pkg.version);
});

test.after(() => rmSync(work, { recursive: true, force: true }));
