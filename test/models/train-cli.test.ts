// atscale train end to end in real processes: resume after a kill gives the uninterrupted
// run's losses exactly; damaged checkpoints and bad inputs are refused before training.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { lossesByIter, savedIter } from '../launch/helpers.js';

const CLI = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));
const work = mkdtempSync(join(tmpdir(), 'atscale-train-'));
const corpus = join(work, 'corpus.txt');
writeFileSync(corpus, Array.from({ length: 200 }, (_, i) => `line ${i}: the quick brown fox jumps over the lazy dog.\n`).join(''));
const SMALL = ['--n-layer', '2', '--n-head', '2', '--n-embd', '32', '--block-size', '16', '--batch-size', '4', '--eval-iters', '2', '--log-interval', '1', '--threads', '1', '--peak-gflops', '10', '--quiet'];

function train(args: string[]): { code: number | null; out: string } {
  const r = spawnSync(process.execPath, [CLI, 'train', ...args], { encoding: 'utf8', timeout: 240_000 });
  return { code: r.status, out: r.stdout + r.stderr };
}

test('killed mid-run and resumed, training gives exactly the uninterrupted losses', async () => {
  const a = join(work, 'a');
  const r = train(['--data', corpus, '--max-iters', '40', '--eval-interval', '10', '--out', a, ...SMALL]);
  assert.equal(r.code, 0, r.out);
  const b = join(work, 'b');
  const child = spawn(process.execPath, [CLI, 'train', '--data', corpus, '--max-iters', '40', '--eval-interval', '10', '--out', b, ...SMALL], { stdio: 'ignore' });
  const ckpt = join(b, 'ckpt');
  const deadline = Date.now() + 180_000;
  while (savedIter(ckpt) < 20) {
    assert.ok(Date.now() < deadline, 'the run never reached its second checkpoint');
    assert.equal(child.exitCode, null, 'the run ended before it could be killed');
    await new Promise((res) => setTimeout(res, 20));
  }
  child.kill('SIGKILL');
  await new Promise((res) => child.once('exit', res));
  const resumedFrom = savedIter(ckpt);
  assert.ok(resumedFrom >= 20 && resumedFrom < 40, `killed after the checkpoint of iteration ${resumedFrom}`);
  const r2 = train(['--data', corpus, '--max-iters', '40', '--eval-interval', '10', '--out', b, '--resume', ckpt, ...SMALL]);
  assert.equal(r2.code, 0, r2.out);
  const la = lossesByIter(a);
  const lb = lossesByIter(b);
  for (let i = resumedFrom + 1; i <= 40; i++) assert.equal(lb.get(i), la.get(i), `iteration ${i}: resumed loss ${lb.get(i)} vs uninterrupted ${la.get(i)}`);
  assert.ok(la.get(40)! < la.get(1)!, 'the model did not learn');
});

test('a truncated or tampered checkpoint is refused with a clear message', () => {
  const dir = join(work, 'c');
  assert.equal(train(['--data', corpus, '--max-iters', '4', '--eval-interval', '4', '--out', dir, ...SMALL]).code, 0);
  const ck = join(dir, 'ckpt');
  const file = join(ck, 'model.safetensors');
  const bytes = readFileSync(file);
  writeFileSync(file, bytes.subarray(0, bytes.length - 100));
  let r = train(['--data', corpus, '--max-iters', '8', '--out', join(work, 'c2'), '--resume', ck, ...SMALL]);
  assert.equal(r.code, 1);
  assert.match(r.out, /model\.safetensors/);
  const tampered = Buffer.from(bytes);
  tampered[tampered.length - 5] ^= 0xff;
  writeFileSync(file, tampered);
  r = train(['--data', corpus, '--max-iters', '8', '--out', join(work, 'c3'), '--resume', ck, ...SMALL]);
  assert.equal(r.code, 1);
  assert.match(r.out, /model\.safetensors/);
  assert.match(r.out, /sha256|checksum|modified|does not match/i);
});

test('bad inputs are clear errors before any training starts', () => {
  const out = join(work, 'bad');
  const cases: [string[], RegExp][] = [
    [['--data', join(work, 'missing.txt')], /data file .*missing\.txt not found; pass --data PATH or a URL/],
    [['--data', (() => { const p = join(work, 'empty.txt'); writeFileSync(p, ''); return p; })()], /empty/],
    [['--data', (() => { const p = join(work, 'tiny.txt'); writeFileSync(p, 'abcdefghij'.repeat(3)); return p; })(), '--block-size', '64'], /block size 64 is larger than the .* split/],
    [['--data', corpus, '--n-embd', '30', '--n-head', '4'], /n_embd \(30\) must be divisible by n_head \(4\)/],
    [['--data', corpus, '--tokenizer', 'bpe', '--resume', join(work, 'a', 'ckpt')], /char tokenizer but --tokenizer bpe was given/],
    [['--data', corpus, '--frobnicate', '3'], /unknown flag --frobnicate/],
    [['--data', corpus, '--init-from', 'gpt2'], /--init-from must be one of scratch, resume, got "gpt2"/],
    [['--data', corpus, '--compile=false'], /--compile false is not available: every training step is compiled/],
  ];
  for (const [args, want] of cases) {
    const r = train([...SMALL, '--max-iters', '5', '--out', out, ...args]);
    assert.notEqual(r.code, 0, `expected failure for ${args.join(' ')}`);
    assert.match(r.out, want);
    assert.doesNotMatch(r.out, /^iter /m, 'training started');
    assert.ok(!existsSync(join(out, 'metrics.jsonl')), 'metrics were written before the error');
  }
});

test('progress lines, val lines, metrics.jsonl and the checkpoint number iterations alike (from 1)', () => {
  const dir = join(work, 'numbering');
  const args = SMALL.filter((a) => a !== '--quiet');
  const r = train(['--data', corpus, '--max-iters', '4', '--eval-interval', '2', '--out', dir, ...args]);
  assert.equal(r.code, 0, r.out);
  const progress = [...r.out.matchAll(/^iter (\d+)\/4  loss/gm)].map((m) => Number(m[1]));
  const val = [...r.out.matchAll(/^iter (\d+)\/4: eval: .*val loss/gm)].map((m) => Number(m[1]));
  const recs = readFileSync(join(dir, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { iter: number; loss?: number; val_loss?: number });
  assert.deepEqual(progress, [1, 2, 3, 4]);
  assert.deepEqual(recs.filter((x) => x.loss !== undefined).map((x) => x.iter), progress);
  assert.deepEqual(val, [2, 4]);
  assert.deepEqual(recs.filter((x) => x.val_loss !== undefined).map((x) => x.iter), val);
  assert.equal((JSON.parse(readFileSync(join(dir, 'ckpt', 'meta.json'), 'utf8')) as { iter: number }).iter, 4);

  // nanoGPT's --init-from resume continues from OUT/ckpt; --decay-iters stretches the cosine
  // decay for the extended run (the checkpoint's decay ended at step 4, which would pin min-lr).
  const r2 = train(['--data', corpus, '--max-iters', '6', '--decay-iters', '6', '--warmup-iters', '0', '--init-from', 'resume', '--compile', '--out', dir, ...SMALL]);
  assert.equal(r2.code, 0, r2.out);
  const after = readFileSync(join(dir, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { iter: number; lr?: number });
  const lr5 = after.find((x) => x.iter === 5 && x.lr !== undefined)!.lr!;
  const want = 1e-4 + 0.5 * (1 + Math.cos((Math.PI * 4) / 6)) * (1e-3 - 1e-4); // cpu-small: lr 1e-3, min-lr 1e-4
  assert.ok(Math.abs(lr5 - want) < 1e-9, `step 5 lr ${lr5}, want ${want}`);
  assert.deepEqual(after.filter((x) => x.lr !== undefined).map((x) => x.iter), [1, 2, 3, 4, 5, 6]);
});

test('atscale --version and --help', () => {
  const v = spawnSync(process.execPath, [CLI, '--version'], { encoding: 'utf8' });
  assert.equal(v.status, 0);
  assert.match(v.stdout, /^\d+\.\d+\.\d+/);
  const h = spawnSync(process.execPath, [CLI, '--help'], { encoding: 'utf8' });
  assert.equal(h.status, 0);
  for (const cmd of ['train', 'sample', 'launch', 'plan', 'bench', 'export']) assert.match(h.stdout, new RegExp(`\\b${cmd}\\b`));
  // The default prompt is a line break: shown escaped, on the flag's own line.
  const s = spawnSync(process.execPath, [CLI, 'sample', '--help'], { encoding: 'utf8' });
  assert.match(s.stdout, /--prompt VALUE +text to continue \(default "\\n"\)\n/);
});

test.after(() => rmSync(work, { recursive: true, force: true }));

