// `npm run bench -- ckpt-async [--json] [--batch B] [--steps N] [--saves K]`: how long a
// checkpoint save stalls training, synchronous against asynchronous (snapshot at the step
// boundary, written by a background thread), for nanoGPT's shakespeare-char model (6 layers,
// 6 heads, 384 wide, context 256; 10.7M parameters, a 128 MB checkpoint with the AdamW moments),
// as a fraction of the step time. Also measured: the step time while a background write is
// running (the write competes for the same cores and disk). Medians of K saves and N steps.
import { mkdtempSync, rmSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from '../src/cli/args.js';
import { GPT } from '../src/models/gpt.js';
import { gptConfig } from '../src/models/config.js';
import { PRESETS } from '../src/models/presets.js';
import { MeshTrainer } from '../src/engine/mesh-trainer.js';
import { Mesh } from '../src/engine/mesh/mesh.js';
import { AsyncCheckpointWriter } from '../src/checkpoint/index.js';
import { Rng } from '../src/tensor/rng.js';

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

export async function run(argv: string[]): Promise<number> {
  const { flags } = parseArgs(argv, {
    json: { type: 'boolean', help: 'JSON lines' },
    batch: { type: 'number', help: 'sequences per step (the preset trains with 64; fewer keep the bench short on a CPU)', default: 4, int: true, min: 1, max: 1024 },
    steps: { type: 'number', help: 'measured steps', default: 3, int: true, min: 1, max: 1000 },
    saves: { type: 'number', help: 'measured saves per mode', default: 3, int: true, min: 1, max: 100 },
  }, 'bench ckpt-async');
  const p = PRESETS['shakespeare-char']!;
  const config = gptConfig({ ...p.model, vocabSize: 65 });
  const batch = flags.batch as number;
  const trainer = new MeshTrainer(new GPT(config), Mesh.single(), { shape: { batch, seq: config.blockSize }, optimizer: { lr: 1e-3, beta1: 0.9, beta2: 0.99, eps: 1e-8, weightDecay: 0.1 }, gradClip: 1, gradAccum: 1, seed: 1, threads: availableParallelism() });
  const rng = new Rng(5);
  const n = batch * config.blockSize;
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
  for (let i = 0; i < (flags.steps as number); i++) steps.push(await step());
  const stepS = median(steps);

  const dir = mkdtempSync(join(tmpdir(), 'atscale-bench-ckpt-'));
  const meta = { iter: 0 };
  const files = { 'note.txt': 'bench' };
  const sync: number[] = [];
  for (let k = 0; k < (flags.saves as number); k++) {
    await step();
    const t0 = performance.now();
    await trainer.save(join(dir, 'sync'), meta, files);
    sync.push((performance.now() - t0) / 1000);
  }
  const writer = new AsyncCheckpointWriter();
  const async: number[] = [];
  const during: number[] = [];
  const writeS: number[] = [];
  try {
    for (let k = 0; k < (flags.saves as number); k++) {
      await step();
      const t0 = performance.now();
      const { published } = await writer.submit(join(dir, 'async'), trainer.snapshot!(meta, files));
      async.push((performance.now() - t0) / 1000);
      // Train while the write runs; the write's own duration is measured to its publish.
      let done = false;
      void published.then(
        () => {
          done = true;
          writeS.push((performance.now() - t0) / 1000);
        },
        () => (done = true),
      );
      while (!done) during.push(await step());
      await published;
    }
  } finally {
    await writer.close();
    rmSync(dir, { recursive: true, force: true });
  }
  const mb = ((trainer.layout.size * 3 * 4) / 1e6);
  const rows = [
    { mode: 'sync', stall_s: median(sync), write_s: median(sync), step_s: stepS, step_during_write_s: null as number | null },
    { mode: 'async', stall_s: median(async), write_s: median(writeS), step_s: stepS, step_during_write_s: during.length ? median(during) : null },
  ];
  const base = { bench: 'ckpt-async', model: 'shakespeare-char', params: trainer.layout.size, checkpoint_mb: Math.round(mb), batch, seq: config.blockSize };
  if (flags.json) for (const r of rows) console.log(JSON.stringify({ ...base, ...r, stall_fraction: r.stall_s / r.step_s }));
  else {
    console.log(`checkpoint stall, shakespeare-char (${trainer.layout.size.toLocaleString('en-US')} params, ${Math.round(mb)} MB with AdamW moments), batch ${batch} x ${config.blockSize}, median step ${stepS.toFixed(3)} s`);
    console.log('mode    stall s   stall/step   write s   step s while writing');
    for (const r of rows) console.log(`${r.mode.padEnd(7)} ${r.stall_s.toFixed(4).padStart(8)}   ${((100 * r.stall_s) / r.step_s).toFixed(2).padStart(8)}%   ${r.write_s.toFixed(3).padStart(7)}   ${r.step_during_write_s === null ? '-' : r.step_during_write_s.toFixed(3)}`);
  }
  return 0;
}
