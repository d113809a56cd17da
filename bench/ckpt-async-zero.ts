// `npm run bench -- ckpt-async --trainer zero`: the save stall of the shakespeare-char model
// trained by 2 ZeRO ranks (stage 2: every rank writes its shard of params and AdamW moments),
// synchronous (write, barrier, rank 0 finalizes) against asynchronous (snapshotShared: copies at
// the step boundary, the shard written by each rank's writer thread, published when the ranks
// agree at a later step boundary), as a fraction of step time. The rank processes are this
// file, spawned by runZeroStallBench; rank 0 prints the medians.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { findFreePort } from '../src/launch/free-port.js';
import { initProcessGroup } from '../src/dist/index.js';
import { GPT } from '../src/models/gpt.js';
import { gptConfig } from '../src/models/config.js';
import { PRESETS } from '../src/models/presets.js';
import { parseDeepSpeedConfig } from '../src/engine/ds-config.js';
import { createZeroTrainer } from '../src/engine/zero/index.js';
import { AsyncCheckpointWriter } from '../src/checkpoint/index.js';
import { Rng } from '../src/tensor/rng.js';

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

export interface ZeroStallJob {
  batch: number;
  steps: number;
  saves: number;
  stage: number;
  dir: string;
}

export interface ZeroStallResult {
  params: number;
  step_s: number;
  sync_stall_s: number;
  async_stall_s: number;
  async_write_s: number;
  step_during_write_s: number | null;
}

async function worker(): Promise<void> {
  const job = JSON.parse(process.env.CKPT_ZERO_JOB!) as ZeroStallJob;
  const pg = await initProcessGroup({ timeoutMs: 300_000 });
  const p = PRESETS['shakespeare-char']!;
  const config = gptConfig({ ...p.model, vocabSize: 65 });
  const cfg = parseDeepSpeedConfig({ train_batch_size: job.batch * pg.worldSize, gradient_accumulation_steps: 1, optimizer: { type: 'AdamW', params: { lr: 1e-3, betas: [0.9, 0.99], weight_decay: 0.1 } }, gradient_clipping: 1, zero_optimization: { stage: job.stage } }, pg.worldSize);
  const trainer = await createZeroTrainer(new GPT(config), cfg, pg, { seed: 1, threads: 1, shape: { batch: job.batch, seq: config.blockSize } });
  const rng = new Rng(5 + pg.rank);
  const n = job.batch * config.blockSize;
  const micro = () => [{ x: Int32Array.from({ length: n }, () => rng.int(65)), y: Int32Array.from({ length: n }, () => rng.int(65)) }];
  let iter = 0;
  const step = async () => {
    const t0 = performance.now();
    await trainer.step(micro(), 1e-3, iter++);
    return (performance.now() - t0) / 1000;
  };
  await trainer.prepare();
  await step();
  const steps: number[] = [];
  for (let i = 0; i < job.steps; i++) steps.push(await step());
  const meta = { iter: 0 };
  const files = { 'note.txt': 'bench' };
  const sync: number[] = [];
  for (let k = 0; k < job.saves; k++) {
    await step();
    const t0 = performance.now();
    await trainer.save(join(job.dir, 'sync'), meta, files);
    sync.push((performance.now() - t0) / 1000);
  }
  const writer = new AsyncCheckpointWriter();
  const stall: number[] = [];
  const writeS: number[] = [];
  const during: number[] = [];
  try {
    for (let k = 0; k < job.saves; k++) {
      await step();
      const t0 = performance.now();
      const snap = await trainer.snapshotShared!(join(job.dir, 'async'), meta, files);
      const written = snap.job ? (await writer.submitJob(snap.job)).published : Promise.resolve();
      stall.push((performance.now() - t0) / 1000);
      let localDone = false;
      void written.then(() => (localDone = true));
      // As the training loop does: step, then ask the ranks whether every part is on disk.
      for (;;) {
        during.push(await step());
        if (await snap.publish(localDone)) break;
      }
      writeS.push((performance.now() - t0) / 1000);
    }
  } finally {
    await writer.close();
  }
  const result: ZeroStallResult = { params: trainer.layout.size, step_s: median(steps), sync_stall_s: median(sync), async_stall_s: median(stall), async_write_s: median(writeS), step_during_write_s: during.length ? median(during) : null };
  if (pg.rank === 0) console.log(`RESULT ${JSON.stringify(result)}`);
  await pg.destroy();
}

/** Runs 2 rank processes of this file and returns rank 0's measurements. */
export async function runZeroStallBench(o: Omit<ZeroStallJob, 'dir'>): Promise<ZeroStallResult> {
  const dir = mkdtempSync(join(tmpdir(), 'atscale-bench-ckpt-zero-'));
  const port = await findFreePort('127.0.0.1');
  const secret = randomBytes(32).toString('hex');
  const script = fileURLToPath(import.meta.url);
  const children: ChildProcess[] = [];
  let result: ZeroStallResult | undefined;
  const runs = [0, 1].map((rank) => {
    const env = { ...process.env, CKPT_ZERO_WORKER: '1', CKPT_ZERO_JOB: JSON.stringify({ ...o, dir }), RANK: String(rank), WORLD_SIZE: '2', MASTER_ADDR: '127.0.0.1', MASTER_PORT: String(port), ATSCALE_JOB_SECRET: secret };
    const child = spawn(process.execPath, [script], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    children.push(child);
    let out = '';
    let err = '';
    child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
    return new Promise<void>((resolve, reject) =>
      child.on('close', (code) => {
        for (const line of out.split('\n')) if (line.startsWith('RESULT ')) result = JSON.parse(line.slice(7)) as ZeroStallResult;
        if (code === 0) resolve();
        else reject(new Error(`ckpt-async zero: rank ${rank} exited with status ${code}:\n${err.slice(-2000)}`));
      }),
    );
  });
  const guard = setTimeout(() => children.forEach((c) => c.kill('SIGKILL')), 900_000);
  try {
    await Promise.all(runs);
  } finally {
    clearTimeout(guard);
    rmSync(dir, { recursive: true, force: true });
  }
  if (!result) throw new Error('ckpt-async zero: rank 0 printed no result');
  return result;
}

if (process.env.CKPT_ZERO_WORKER === '1') await worker();
