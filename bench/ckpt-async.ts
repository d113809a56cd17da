// `npm run bench -- ckpt-async [--json] [--batch B] [--steps N] [--saves K]`: how long a
// checkpoint save stalls training, synchronous against asynchronous (snapshot at the step
// boundary, written by a background thread), for nanoGPT's shakespeare-char model (6 layers,
// 6 heads, 384 wide, context 256; 10.7M parameters, a 128 MB checkpoint with the AdamW moments),
// as a fraction of the step time. Also measured: the step time while a background write is
// running (the write competes for the same cores and disk), and where the stall goes: the
// snapshot copy and the hand-off to the writer thread. Two background modes side by side:
// async-plain (fresh buffers per snapshot, writer at the process's priority) and async (the
// default: buffers given back by the writer are reused, writer thread niced). With --zero, the
// same for a ZeRO-3 trainer (a process group of one): its universal save against its shard
// snapshot, written in the background and published at a later step boundary. Medians of K
// saves and N steps.
import { mkdtempSync, rmSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from '../src/cli/args.js';
import { GPT } from '../src/models/gpt.js';
import { gptConfig } from '../src/models/config.js';
import { PRESETS } from '../src/models/presets.js';
import { Mesh } from '../src/engine/mesh/mesh.js';
import { AsyncCheckpointWriter } from '../src/checkpoint/index.js';
import { randomBytes } from 'node:crypto';
import { initProcessGroup } from '../src/dist/index.js';
import { findFreePort } from '../src/launch/free-port.js';
import { parseDeepSpeedConfig } from '../src/engine/ds-config.js';
import { createTrainer, deepSpeedOptions, MeshTrainer } from '../src/engine/mesh-trainer.js';
import { AsyncUniversalSaves } from '../src/engine/universal/async-save.js';
import type { Trainer } from '../src/engine/trainer.js';
import { Rng } from '../src/tensor/rng.js';
import { median } from '../src/runtime/median.js';

interface Row {
  trainer: string;
  mode: string;
  stall_s: number;
  /** Median over saves of the stall divided by the step just before it. */
  stall_fraction: number;
  snapshot_s: number | null;
  handoff_s: number | null;
  write_s: number;
  step_s: number;
  step_during_write_s: number | null;
}

export async function run(argv: string[]): Promise<number> {
  const { flags } = parseArgs(argv, {
    json: { type: 'boolean', help: 'JSON lines' },
    batch: { type: 'number', help: 'sequences per step (the preset trains with 64; fewer keep the bench short on a CPU)', default: 4, int: true, min: 1, max: 1024 },
    steps: { type: 'number', help: 'measured steps', default: 3, int: true, min: 1, max: 1000 },
    saves: { type: 'number', help: 'measured saves per mode', default: 3, int: true, min: 1, max: 100 },
    zero: { type: 'boolean', help: 'also measure a ZeRO-3 trainer (universal checkpoint, shard snapshot)' },
  }, 'bench ckpt-async');
  const p = PRESETS['shakespeare-char']!;
  const config = gptConfig({ ...p.model, vocabSize: 65 });
  const batch = flags.batch as number;
  const saves = flags.saves as number;
  const threads = availableParallelism();
  const local = new MeshTrainer(new GPT(config), Mesh.single(), { shape: { batch, seq: config.blockSize }, optimizer: { lr: 1e-3, beta1: 0.9, beta2: 0.99, eps: 1e-8, weightDecay: 0.1 }, gradClip: 1, gradAccum: 1, seed: 1, threads });
  const dir = mkdtempSync(join(tmpdir(), 'atscale-bench-ckpt-'));
  const rows: Row[] = [];
  try {
    rows.push(...(await measure(local, 'local', dir, batch, config.blockSize, flags.steps as number, saves)));
    if (flags.zero) {
      const pg = await initProcessGroup({ worldSize: 1, rank: 0, masterAddr: '127.0.0.1', masterPort: await findFreePort('127.0.0.1'), secret: randomBytes(32) });
      try {
        const cfg = parseDeepSpeedConfig({ train_batch_size: batch, gradient_accumulation_steps: 1, optimizer: { type: 'AdamW', params: { lr: 1e-3, betas: [0.9, 0.99], weight_decay: 0.1 } }, gradient_clipping: 1, zero_optimization: { stage: 3 } }, 1);
        const zero = await createTrainer(new GPT(config), Mesh.create(pg, { dp: 1, pp: 1, tp: 1 }), { ...deepSpeedOptions(cfg), seed: 1, threads, shape: { batch, seq: config.blockSize } });
        rows.push(...(await measure(zero, 'zero3', dir, batch, config.blockSize, flags.steps as number, saves)));
      } finally {
        await pg.destroy();
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  const mb = (local.layout.size * 3 * 4) / 1e6;
  const base = { bench: 'ckpt-async', model: 'shakespeare-char', params: local.layout.size, checkpoint_mb: Math.round(mb), batch, seq: config.blockSize };
  if (flags.json) for (const r of rows) console.log(JSON.stringify({ ...base, ...r }));
  else {
    console.log(`checkpoint stall, shakespeare-char (${local.layout.size.toLocaleString('en-US')} params, ${Math.round(mb)} MB with AdamW moments), batch ${batch} x ${config.blockSize}; medians of ${saves} saves`);
    console.log('trainer mode          stall s   stall/step (median per save)   snapshot s   handoff s   write s   step s   step s while writing');
    const f = (x: number | null, d: number, w: number) => (x === null ? '-' : x.toFixed(d)).padStart(w);
    for (const r of rows) console.log(`${r.trainer.padEnd(7)} ${r.mode.padEnd(12)} ${f(r.stall_s, 4, 8)}   ${(100 * r.stall_fraction).toFixed(2).padStart(26)}%   ${f(r.snapshot_s, 4, 10)}   ${f(r.handoff_s, 4, 9)}   ${f(r.write_s, 3, 7)}   ${f(r.step_s, 3, 6)}   ${f(r.step_during_write_s, 3, 6)}`);
  }
  return 0;
}

/** Sync saves, then each background mode, on one trainer: the mesh of one's whole-checkpoint
 *  snapshot, or a sharded trainer's universal shard (published by a collective poll at the
 *  step boundaries after it, as the training loop does). */
async function measure(trainer: Trainer, name: string, dir: string, batch: number, seq: number, nSteps: number, saves: number): Promise<Row[]> {
  const rng = new Rng(5);
  const n = batch * seq;
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
  for (let i = 0; i < nSteps; i++) steps.push(await step());
  const stepS = median(steps);
  const meta = { iter: 0 };
  const files = { 'note.txt': 'bench' };
  // On a shared machine the step time drifts over minutes, so each save's stall is divided by
  // the step just before it, and the fraction reported is the median of those ratios.
  const sync: number[] = [];
  const syncFrac: number[] = [];
  for (let k = 0; k < saves; k++) {
    const before = await step();
    const t0 = performance.now();
    await trainer.save(join(dir, `${name}-sync`), meta, files);
    sync.push((performance.now() - t0) / 1000);
    syncFrac.push(sync.at(-1)! / before);
  }
  const rows: Row[] = [{ trainer: name, mode: 'sync', stall_s: median(sync), stall_fraction: median(syncFrac), snapshot_s: null, handoff_s: null, write_s: median(sync), step_s: stepS, step_during_write_s: null }];
  // Two background modes: the plain one (fresh buffers for every snapshot, writer thread at
  // the process's priority) and the default (buffers reused, writer thread niced), so the effect
  // of each lever shows in one run.
  const modes = [
    { mode: 'async-plain', nice: 0, reuse: false },
    { mode: 'async', nice: 10, reuse: true },
  ];
  for (const m of modes) {
    const writer = new AsyncCheckpointWriter({ nice: m.nice });
    const alloc = m.reuse ? (b: number) => writer.takeBuffer(b) : (b: number) => new ArrayBuffer(b);
    const shards = trainer.snapshot ? undefined : new AsyncUniversalSaves(writer, { alloc });
    const stall: number[] = [];
    const frac: number[] = [];
    const copy: number[] = [];
    const handoff: number[] = [];
    const during: number[] = [];
    const writeS: number[] = [];
    try {
      for (let k = 0; k < saves; k++) {
        const before = await step();
        const target = join(dir, `${name}-${m.mode}`);
        let done = false;
        const t0 = performance.now();
        const published = () => {
          done = true;
          writeS.push((performance.now() - t0) / 1000);
        };
        let t1: number;
        if (shards) {
          // universalSave is views of the live buffers; start() copies them (the snapshot).
          const { group, save } = await trainer.universalSave!(target, meta, files);
          t1 = performance.now();
          await shards.start(group, save, published);
          copy.push(shards.lastSnapshotS);
          handoff.push((performance.now() - t1) / 1000 - shards.lastSnapshotS);
        } else {
          const contents = trainer.snapshot!(meta, files, alloc);
          t1 = performance.now();
          const { published: p } = await writer.submit(target, contents);
          copy.push((t1 - t0) / 1000);
          handoff.push((performance.now() - t1) / 1000);
          void p.then(published, () => (done = true));
        }
        stall.push((performance.now() - t0) / 1000);
        frac.push(stall.at(-1)! / before);
        // Train while the write runs; the write's own duration is measured to its publish.
        while (!done) {
          during.push(await step());
          if (shards) await shards.poll();
        }
        await writer.flush();
      }
    } finally {
      await writer.close();
    }
    rows.push({ trainer: name, mode: m.mode, stall_s: median(stall), stall_fraction: median(frac), snapshot_s: median(copy), handoff_s: median(handoff), write_s: median(writeS), step_s: stepS, step_during_write_s: during.length ? median(during) : null });
  }
  return rows;
}
