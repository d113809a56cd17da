// `atscale launch --max-restarts`: a rank killed mid-run brings the whole group down and back
// up, `atscale train` resumes from its newest checkpoint with the same command line, and the
// losses are exactly those of an uninterrupted run; the launcher's last line counts the
// restarts and says why. When restarts run out, the last failure's status is the job's.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CLI, collect, launch, startLauncher, waitFor, lossesByIter, savedIter } from './helpers.js';

const work = mkdtempSync(join(tmpdir(), 'atscale-elastic-'));
const corpus = join(work, 'corpus.txt');
writeFileSync(corpus, Array.from({ length: 200 }, (_, i) => `line ${i}: the quick brown fox jumps over the lazy dog.\n`).join(''));
const train = (out: string) => [process.execPath, CLI, 'train', '--data', corpus, '--out', out, '--n-layer', '1', '--n-head', '2', '--n-embd', '16', '--block-size', '16', '--batch-size', '4', '--max-iters', '30', '--eval-interval', '5', '--eval-iters', '1', '--log-interval', '1', '--threads', '1', '--peak-gflops', '1', '--quiet'];

/** Direct children of a process (Linux). */
function children(pid: number): number[] {
  const text = readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim();
  return text ? text.split(/\s+/).map(Number) : [];
}

test('a rank killed mid-run: the group restarts, training resumes from the newest checkpoint, losses are bit-identical', async () => {
  const a = join(work, 'a');
  const ref = await launch(['--nproc-per-node', '2', '--timeout-ms', '20000', '--', ...train(a)]);
  assert.equal(ref.code, 0, ref.stderr);

  const b = join(work, 'b');
  const child = startLauncher(['--nproc-per-node', '2', '--timeout-ms', '20000', '--max-restarts', '2', '--stop-grace-ms', '1000', '--', ...train(b)]);
  const run = collect(child, 120_000);
  await waitFor('the second checkpoint', () => savedIter(join(b, 'ckpt')) >= 10, 60_000);
  const victim = children(child.pid!)[1]!;
  process.kill(victim, 'SIGKILL');
  const r = await run;
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, new RegExp(`worker group failed \\(rank 1 \\(pid ${victim}\\) was killed by signal SIGKILL.*\\); restarting it, attempt 2 of 3`));
  assert.match(r.stderr, /restart 1: resuming from .*ckpt/);
  assert.match(r.stderr, new RegExp(`atscale launch: job succeeded after 1 of at most 2 restarts \\(restart 1: rank 1 \\(pid ${victim}\\) was killed by signal SIGKILL`));
  const la = lossesByIter(a);
  const lb = lossesByIter(b);
  assert.equal(la.size, 30);
  for (let i = 0; i < 30; i++) assert.equal(lb.get(i), la.get(i), `iteration ${i}: ${lb.get(i)} after the restart vs ${la.get(i)} uninterrupted`);
});

test('when the restarts run out, the job fails with the last failure, and the summary counts them', async () => {
  const r = await launch(['--nproc-per-node', '2', '--max-restarts', '2', '--stop-grace-ms', '500', '--', process.execPath, '-e', 'process.exit(process.env.RANK === "1" ? 3 : 0)']);
  assert.equal(r.code, 3);
  assert.equal((r.stderr.match(/restarting it, attempt/g) ?? []).length, 2);
  assert.match(r.stderr, /job failed: rank 1 \(pid \d+\) exited with status 3.* after 2 of at most 2 restarts \(restart 1: rank 1 .*; restart 2: rank 1 /);
});
