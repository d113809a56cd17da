// The asynchronous-save case shared by the ZeRO and pipeline tests (not a test itself): a run
// with --async-checkpoint saving after every step, its twin killed while a save is staged but not
// yet published, and the checks that the previous checkpoint is the newest complete one and that
// `--resume auto` finishes the run bitwise like the twin never killed.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, watch } from 'node:fs';
import { join } from 'node:path';
import { committedDir, UniversalCheckpoint } from '../../src/checkpoint/index.js';
import { freePort } from './spawn-ranks.js';
import { CLI, runTrain, sameStateBits } from './mesh/mesh-case.js';
import { lossesByIter } from '../launch/helpers.js';

export const STEPS = 12;
const ASYNC = ['--max-iters', String(STEPS), '--async-checkpoint', '--checkpoint-interval', '1'];

/** Steps rank 0 has logged so far (0 while its metrics file is missing or mid-line). */
function stepsLogged(out: string): number {
  try {
    return lossesByIter(out).size;
  } catch {
    return 0;
  }
}

/** Starts both ranks of `args` (torchrun-style env, no launcher, so this test holds their pids)
 *  and, once a save of step >= `after` is staged, freezes both; if that save is still unpublished,
 *  kills rank 1 and lets rank 0 find out. Resolves with the staged save's id. */
async function killMidSave(args: string[], out: string, after: number): Promise<{ save: string; rank0: number | null }> {
  const port = await freePort();
  const secret = randomBytes(32).toString('hex');
  mkdirSync(out, { recursive: true });
  const ranks: ChildProcess[] = [0, 1].map((rank) =>
    spawn(process.execPath, [CLI, ...args, '--out', out], { env: { ...process.env, RANK: String(rank), WORLD_SIZE: '2', MASTER_ADDR: '127.0.0.1', MASTER_PORT: String(port), ATSCALE_JOB_SECRET: secret, ATSCALE_TIMEOUT_MS: '10000' }, stdio: 'ignore' }),
  );
  const exited = ranks.map((c) => new Promise<number | null>((r) => c.once('close', (code) => r(code))));
  const guard = setTimeout(() => ranks.forEach((c) => c.kill('SIGKILL')), 120_000);
  try {
    const save = await new Promise<string>((resolve, reject) => {
      const w = watch(out, (_ev, name) => {
        const staged = String(name ?? '');
        if (!staged.startsWith('ckpt.staging-') || !existsSync(join(out, staged)) || stepsLogged(out) < after) return;
        ranks.forEach((c) => c.kill('SIGSTOP'));
        if (!existsSync(join(out, staged))) return void ranks.forEach((c) => c.kill('SIGCONT')); // published already: the next one
        w.close();
        ranks[1]!.kill('SIGKILL');
        ranks[0]!.kill('SIGCONT');
        resolve(staged.slice('ckpt.staging-'.length));
      });
      void exited[0]!.then(() => (w.close(), reject(new Error(`rank 0 ended before a save was caught in flight`))));
    });
    return { save, rank0: await exited[0]! };
  } finally {
    clearTimeout(guard);
    ranks.forEach((c) => c.kill('SIGKILL'));
  }
}

/** The whole case for one layout of 2 ranks; `train` is `train` and its flags, without --out. */
export async function asyncSaveCase(work: string, name: string, train: string[]): Promise<void> {
  const args = [...train, ...ASYNC];
  const ref = join(work, `${name}-ref`);
  runTrain(args, 2, ref);
  const saves = readFileSync(join(ref, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { async?: number }).filter((r) => r.async !== undefined);
  assert.ok(saves.length === STEPS && saves.every((r) => r.async === 1), 'every save went through the background writer');
  const out = join(work, `${name}-killed`);
  const { save, rank0 } = await killMidSave(args, out, 4);
  assert.notEqual(rank0, 0, 'rank 0 went on as if rank 1 were alive');
  // The staged save was never published; the newest complete checkpoint is an earlier one.
  const ck = new UniversalCheckpoint(committedDir(join(out, 'ckpt')));
  assert.notEqual(ck.manifest.save, save, 'a save whose rank was killed mid-write was published');
  const published = (ck.meta as { iter: number }).iter;
  assert.ok(published >= 1 && published < STEPS, `published step ${published}`);
  assert.ok(readdirSync(out).some((f) => f === `ckpt.staging-${save}`), 'the staged save is left for the next commit to remove');
  runTrain([...args, '--resume', 'auto'], 2, out);
  assert.ok(!readdirSync(out).some((f) => f.startsWith('ckpt.staging-')), 'abandoned staging directories are removed by the next commit');
  const want = lossesByIter(ref);
  const got = lossesByIter(out);
  assert.equal(want.size, STEPS);
  for (const [step, loss] of want) assert.equal(got.get(step), loss, `${name}, step ${step} (resumed from step ${published})`);
  sameStateBits(join(ref, 'ckpt'), join(out, 'ckpt'), name);
}
