// Progress displays of long commands, seen as a user sees them: real `atscale train` (BPE
// tokenizer training, data preparation, evaluation) and `atscale export` processes, once with
// stderr a pipe (plain lines, no carriage returns, one clean final line per job) and once on a
// real terminal (a pty from script(1): the line is redrawn in place with a rate and an ETA).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { etaSeconds, formatCount, formatDuration } from '../../src/monitor/index.js';

const CLI = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));
const work = mkdtempSync(join(tmpdir(), 'atscale-progress-'));
const corpus = join(work, 'corpus.txt');
writeFileSync(corpus, Array.from({ length: 300 }, (_, i) => `line ${i}: the quick brown fox jumps over the lazy dog.\n`).join(''));
const TRAIN = ['train', '--data', corpus, '--tokenizer', 'bpe', '--bpe-vocab', '300', '--n-layer', '1', '--n-head', '2', '--n-embd', '16', '--block-size', '16', '--batch-size', '4', '--max-iters', '4', '--eval-interval', '4', '--eval-iters', '3', '--log-interval', '2', '--threads', '1', '--peak-gflops', '10'];
const SCRIPT = ['/usr/bin/script', '/bin/script'].find((p) => existsSync(p));

test('durations, counts and ETA read well', () => {
  assert.equal(formatDuration(3.25), '3.3s');
  assert.equal(formatDuration(75), '1m15s');
  assert.equal(formatDuration(7300), '2h01m');
  assert.equal(formatDuration(NaN), '?');
  assert.equal(formatCount(12_345), '12.3k');
  assert.equal(formatCount(2_500_000), '2.50M');
  assert.equal(formatCount(42), '42');
  assert.equal(etaSeconds(25, 100, 10), 30);
  assert.equal(etaSeconds(0, 100, 10), undefined);
});

test('not a terminal: plain lines, no carriage returns, a clean final line per job', () => {
  const out = join(work, 'pipe');
  const r = spawnSync(process.execPath, [CLI, ...TRAIN, '--out', out], { encoding: 'utf8', timeout: 120_000 });
  assert.equal(r.status, 0, r.stderr);
  assert.doesNotMatch(r.stderr, /[\r\x1b]/, 'no carriage returns or escape codes in a log');
  assert.match(r.stderr, /^BPE tokenizer: \d+ merges in [\d.]+s \([\d.]+k? merges\/s\); vocabulary 300$/m);
  assert.match(r.stderr, /^prepare data: [\d.]+k? chars in [\d.]+s \([\d.]+[kM]? chars\/s\); \d+ tokens in .*data$/m);
  assert.match(r.stderr, /^iter 4\/4: eval: 3 batches in [\d.]+s \([\d.]+k? batches\/s\); val loss \d+\.\d{4}$/m);
  assert.match(r.stderr, /^iter 4\/4 {2}loss \d+\.\d{4} {2}\d+ tok\/s {2}MFU [\d.]+% {2}ETA [\d.]+s$/m);
  const e = spawnSync(process.execPath, [CLI, 'export', '--ckpt', join(out, 'ckpt'), '--out', join(work, 'm.onnx')], { encoding: 'utf8', timeout: 60_000 });
  assert.equal(e.status, 0, e.stderr);
  assert.match(e.stderr, /^export: 3 stages in [\d.]+s \([\d.]+ stages\/s\); [\d.]+ MB\n$/);
});

test('on a terminal: the line is redrawn in place with rate and ETA, then a final line', { skip: SCRIPT ? false : 'script(1) is not installed (bsdutils)' }, () => {
  const out = join(work, 'tty');
  const cmd = [process.execPath, CLI, ...TRAIN, '--out', out].map((a) => `'${a}'`).join(' ');
  const r = spawnSync(SCRIPT!, ['-qec', cmd, '/dev/null'], { encoding: 'utf8', timeout: 120_000 });
  assert.equal(r.status, 0, r.stdout + r.stderr);
  assert.match(r.stdout, /\r\x1b\[KBPE tokenizer \[[#-]{20}\] \d+% \d+\/\d+ merges {2}[\d.]+k? merges\/s {2}ETA [\d.?]+s?/);
  assert.match(r.stdout, /\r\x1b\[KBPE tokenizer: \d+ merges in [\d.]+s .*; vocabulary 300\r\n/);
  assert.match(r.stdout, /\r\x1b\[Kiter \d\/4 {2}loss \d+\.\d{4} .*ETA /);
  assert.match(r.stdout, /\r\x1b\[Kiter 4\/4: eval: 3 batches in .*val loss \d+\.\d{4}\r\n/);
});
