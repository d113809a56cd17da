// Order of events under a crash: `atscale train` (one process, a checkpoint after every step)
// is SIGKILLed 20 times while it is writing a checkpoint (frozen the moment its staging
// directory appears, so the kill lands mid-write), alternating synchronous saves and the
// background writer. After every kill the newest complete checkpoint loads and is the one
// published just before; each restart resumes from it (--resume auto), and the run that
// finishes is bit-identical (weights, AdamW moments, every logged loss) to one never killed.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, watch, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadCheckpoint } from '../../src/checkpoint/index.js';
import { sameTensors } from '../../bench/chaos-trial.js';
import { CLI, lossesByIter } from '../launch/helpers.js';

const REPEATS = 20;
const STEPS = REPEATS + 6;

const work = mkdtempSync(join(tmpdir(), 'atscale-kill-save-'));
const corpus = join(work, 'corpus.txt');
writeFileSync(corpus, Array.from({ length: 200 }, (_, i) => `line ${i}: pack my box with five dozen liquor jugs.\n`).join(''));
const args = (out: string, async: boolean) => [CLI, 'train', '--data', corpus, '--out', out, '--n-layer', '1', '--n-head', '2', '--n-embd', '32', '--block-size', '16', '--batch-size', '4', '--max-iters', String(STEPS), '--eval-interval', '1000', '--checkpoint-interval', '1', '--eval-iters', '1', '--log-interval', '1', '--threads', '1', '--peak-gflops', '1', '--quiet', '--resume', 'auto', ...(async ? ['--async-checkpoint'] : [])];

function runToEnd(out: string, async: boolean): Promise<number | null> {
  return new Promise((resolve) => {
    const c = spawn(process.execPath, args(out, async), { stdio: ['ignore', 'ignore', 'inherit'] });
    const t = setTimeout(() => c.kill('SIGKILL'), 60_000);
    c.once('close', (code) => (clearTimeout(t), resolve(code)));
  });
}

/** Starts a run and kills it while it stages its second checkpoint; resolves whether the kill landed mid-write. */
function killDuringSecondSave(out: string, async: boolean): Promise<boolean> {
  return new Promise((resolve, reject) => {
    const c = spawn(process.execPath, args(out, async), { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    c.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    let saves = 0;
    let landed = false;
    const w = watch(out, (_ev, name) => {
      if (!name || !String(name).startsWith('ckpt.tmp-') || !existsSync(join(out, String(name)))) return;
      if (++saves < 2) return;
      w.close();
      c.kill('SIGSTOP');
      landed = existsSync(join(out, String(name)));
      c.kill('SIGKILL');
    });
    const t = setTimeout(() => c.kill('SIGKILL'), 60_000);
    c.once('close', (_code, signal) => {
      clearTimeout(t);
      w.close();
      if (signal !== 'SIGKILL') reject(new Error(`the run ended before its second save was killed (${signal ?? 'exit'}): ${stderr.slice(-1000)}`));
      else resolve(landed);
    });
  });
}

test(`kill during a checkpoint write, ${REPEATS} times: the newest complete checkpoint always loads and the resumed run is bit-exact`, async () => {
  try {
    const ref = join(work, 'ref');
    assert.equal(await runToEnd(ref, false), 0);
    const out = join(work, 'killed');
    // The first run publishes step 1 before any kill can matter; the watcher needs OUT to exist.
    rmSync(out, { recursive: true, force: true });
    mkdirSync(out);
    let published = 0;
    let midWrite = 0;
    for (let k = 0; k < REPEATS; k++) {
      const async = k % 2 === 1;
      if (await killDuringSecondSave(out, async)) midWrite++;
      const ck = loadCheckpoint(join(out, 'ckpt'));
      const iter = (ck.meta as { iter: number }).iter;
      assert.ok(iter >= published + 1, `repeat ${k}: the newest complete checkpoint is step ${iter}, but step ${published + 1} had been published`);
      published = iter;
    }
    console.log(`${midWrite} of ${REPEATS} kills landed while the staging directory was open; last published step ${published}`);
    assert.ok(midWrite > 0, 'no kill landed during a write');
    assert.equal(await runToEnd(out, false), 0);
    const cmp = sameTensors(join(out, 'ckpt'), join(ref, 'ckpt'));
    assert.ok(cmp.same, cmp.why);
    const a = lossesByIter(ref);
    const b = lossesByIter(out);
    assert.equal(a.size, STEPS);
    for (const [iter, loss] of a) assert.equal(b.get(iter), loss, `step ${iter}`);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
});
