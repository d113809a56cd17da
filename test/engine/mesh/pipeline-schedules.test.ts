// The other schedules and deeper pipelines on real processes: GPipe at pp2 and 1F1B at pp4
// (middle stages hold neither embedding nor head) give one process's losses with dropout on;
// the pp4 checkpoint resumes on pp2 and continues exactly as the one process does.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const CLI = fileURLToPath(new URL('../../../src/cli/main.js', import.meta.url));
const work = mkdtempSync(join(tmpdir(), 'atscale-pipe-sched-'));
const corpus = join(work, 'corpus.txt');
writeFileSync(corpus, Array.from({ length: 300 }, (_, i) => `${i} little pigs went to market, ${i * 7} stayed home.\n`).join(''));
const FLAGS = ['train', '--data', corpus, '--n-layer', '4', '--n-head', '4', '--n-embd', '32', '--block-size', '16', '--dropout', '0.1', '--eval-interval', '10', '--eval-iters', '1', '--log-interval', '1', '--threads', '1', '--peak-gflops', '10', '--quiet', '--lr', '0.003', '--min-lr', '0.003', '--warmup-iters', '2', '--batch-size', '2', '--grad-accum', '4'];

function losses(args: string[], nproc: number, out: string): { loss: number[]; log: string } {
  const cmd = nproc === 1 ? [CLI, ...args, '--out', out] : [CLI, 'launch', '--nproc-per-node', String(nproc), '--', process.execPath, CLI, ...args, '--out', out];
  const r = spawnSync(process.execPath, cmd, { encoding: 'utf8', timeout: 120_000, env: { ...process.env, WORLD_SIZE: '1' } });
  assert.equal(r.status, 0, r.stdout + r.stderr);
  const loss = readFileSync(join(out, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { loss?: number }).filter((x) => x.loss !== undefined).map((x) => x.loss!);
  return { loss, log: r.stdout };
}

test('GPipe at pp2 and 1F1B at pp4 train like one process; pp4 resumes on pp2', () => {
  // Constant learning rate after warm-up: the first 10 of 14 steps are those of a 10-step run.
  const one = losses([...FLAGS, '--max-iters', '14'], 1, join(work, 'one')).loss;
  assert.equal(one.length, 14);
  const gpipe = losses([...FLAGS, '--max-iters', '10', '--pipeline-model-parallel-size', '2', '--pipeline-schedule', 'gpipe'], 2, join(work, 'gpipe'));
  assert.match(gpipe.log, /pp 2 x tp 1, gpipe schedule/);
  const pp4 = losses([...FLAGS, '--max-iters', '10', '--pipeline-model-parallel-size', '4'], 4, join(work, 'pp4'));
  assert.match(pp4.log, /pp 4 x tp 1, 1f1b schedule, v 1, layers per stage \[1, 1, 1, 1\]/);
  for (const [what, l] of [['gpipe pp2', gpipe.loss], ['1f1b pp4', pp4.loss]] as const) {
    assert.equal(l.length, 10, what);
    l.forEach((x, i) => assert.ok(Math.abs(x - one[i]!) / x < 1e-5, `${what}, step ${i}: 1 process ${one[i]}, pipeline ${x}`));
  }
  // The consolidated checkpoint of pp4 (step 10) resumes on another layout.
  const resumed = losses([...FLAGS, '--max-iters', '14', '--pipeline-model-parallel-size', '2', '--resume', join(work, 'pp4', 'ckpt')], 2, join(work, 'pp4'));
  assert.equal(resumed.loss.length, 14);
  resumed.loss.forEach((x, i) => assert.ok(Math.abs(x - one[i]!) / x < 1e-5, `resumed, step ${i}: 1 process ${one[i]}, pipeline ${x}`));
});

test.after(() => rmSync(work, { recursive: true, force: true }));
