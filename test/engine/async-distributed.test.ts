// Background checkpoints for trainers spread over ranks: ZeRO stage 2 (every rank writes its
// part in its writer thread; rank 0 finalizes once the ranks agree at a step boundary that all
// parts are on disk) and a pipeline mesh (consolidated at the step boundary, written by rank 0's
// thread). Each publishes exactly the state a synchronous save publishes at the same steps, and
// the async run resumes from it bit-exactly; the ZeRO one also resumes in one process (a smaller
// world, as after an elastic restart) with the losses of 2 ranks to 1e-5.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { cpSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CLI } from '../launch/helpers.js';

const work = mkdtempSync(join(tmpdir(), 'atscale-async-dist-'));
const corpus = join(work, 'corpus.txt');
writeFileSync(corpus, Array.from({ length: 150 }, (_, i) => `line ${i}: sphinx of black quartz, judge my vow.\n`).join(''));
const ds = join(work, 'ds.json');
writeFileSync(ds, JSON.stringify({ train_batch_size: 4, gradient_accumulation_steps: 1, optimizer: { type: 'AdamW', params: { lr: 3e-3, betas: [0.9, 0.99], eps: 1e-8, weight_decay: 0.1 } }, gradient_clipping: 1.0, zero_optimization: { stage: 2 } }));
const sha = (p: string) => createHash('sha256').update(readFileSync(p)).digest('hex');

function train(out: string, extra: string[], maxIters = 9, nproc = 2): { losses: Map<number, number>; saves: number[] } {
  const args = [CLI, 'launch', '--nproc-per-node', String(nproc), '--timeout-ms', '30000', '--', process.execPath, CLI, 'train', '--data', corpus, '--out', out, '--n-layer', '2', '--n-head', '2', '--n-embd', '16', '--block-size', '8', '--max-iters', String(maxIters), '--decay-iters', '9', '--eval-interval', '100', '--eval-iters', '1', '--checkpoint-interval', '3', '--log-interval', '1', '--threads', '1', '--peak-gflops', '1', '--quiet', ...extra];
  const r = spawnSync(process.execPath, args, { encoding: 'utf8', timeout: 120_000 });
  assert.equal(r.status, 0, r.stderr);
  const losses = new Map<number, number>();
  const saves: number[] = [];
  for (const line of readFileSync(join(out, 'metrics.jsonl'), 'utf8').trim().split('\n')) {
    const rec = JSON.parse(line) as { iter: number; loss?: number; checkpoint_stall_s?: number; async?: number };
    if (rec.loss !== undefined) losses.set(rec.iter, rec.loss);
    if (rec.checkpoint_stall_s !== undefined) saves.push(rec.iter * 10 + (rec.async ?? 0));
  }
  return { losses, saves };
}

/** Every tensor file of a checkpoint directory (a sharded one has one per rank), by name. */
function tensorFiles(dir: string): Record<string, string> {
  return Object.fromEntries(readdirSync(dir).filter((f) => f.endsWith('.safetensors')).sort().map((f) => [f, sha(join(dir, f))]));
}

for (const [name, flags] of [['ZeRO stage 2 (sharded)', ['--deepspeed-config', ds]], ['pipeline mesh pp2 (consolidated)', ['--batch-size', '4', '--grad-accum', '2', '--pipeline-model-parallel-size', '2']]] as const) {
  test(`${name}: an async save publishes what a synchronous one does, and resumes bit-exactly`, async () => {
    const sync = join(work, `${name.split(' ')[0]}-sync`);
    const bg = join(work, `${name.split(' ')[0]}-async`);
    const a = train(sync, [...flags]);
    const b = train(bg, [...flags, '--async-checkpoint']);
    assert.deepEqual(b.saves, [31, 61, 91], 'async saves at steps 3, 6, 9');
    assert.deepEqual(a.saves, [30, 60, 90]);
    const files = tensorFiles(join(bg, 'ckpt'));
    assert.ok(Object.keys(files).length >= 1);
    assert.deepEqual(files, tensorFiles(join(sync, 'ckpt')));
    const one = join(work, `${name.split(' ')[0]}-one`);
    cpSync(join(bg, 'ckpt'), join(one, 'from'), { recursive: true });
    // Train on from the async run's final checkpoint: the same losses as the synchronous run extended.
    const a2 = train(sync, [...flags, '--resume', 'auto'], 12);
    const b2 = train(bg, [...flags, '--async-checkpoint', '--resume', 'auto'], 12);
    for (const it of [10, 11, 12]) assert.equal(b2.losses.get(it), a2.losses.get(it), `step ${it}`);
    for (const [it, l] of a.losses) assert.equal(b.losses.get(it), l, `step ${it}`);
    if (name.startsWith('ZeRO')) {
      // What an elastic restart on fewer nodes does: the 2-rank sharded checkpoint resumes in 1 process.
      const c = train(one, [...flags, '--resume', join(one, 'from')], 12, 1);
      for (const it of [10, 11, 12]) assert.ok(Math.abs(c.losses.get(it)! - b2.losses.get(it)!) <= 1e-5 * b2.losses.get(it)!, `step ${it} in 1 process: ${c.losses.get(it)} vs ${b2.losses.get(it)} on 2 ranks`);
    }
  });
}

test.after(() => rmSync(work, { recursive: true, force: true }));
