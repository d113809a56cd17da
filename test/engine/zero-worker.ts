// One rank of a ZeRO test run (started by zero.test.ts with torchrun-style env): trains the
// ZeroCase from the ZERO_CASE env var and prints one `RESULT {json}` line.
import { initProcessGroup } from '../../src/dist/index.js';
import { parseDeepSpeedConfig } from '../../src/engine/ds-config.js';
import { createTrainer, deepSpeedOptions, type MeshTrainer } from '../../src/engine/mesh-trainer.js';
import { Mesh } from '../../src/engine/mesh/mesh.js';
import { cosineLr } from '../../src/optim/schedule.js';
import { consolidateCheckpoint, readSafetensorsFile } from '../../src/checkpoint/index.js';
import { corpus, dsConfig, modelOf, rankBatches, SEQ, type ZeroCase } from './zero-case.js';

const c = JSON.parse(process.env.ZERO_CASE!) as ZeroCase;
const pg = await initProcessGroup({ timeoutMs: 60_000 });
const cfg = parseDeepSpeedConfig(dsConfig(c), pg.worldSize);
const tokens = corpus();
const mesh = Mesh.create(pg, { dp: pg.worldSize, pp: 1, tp: 1 });
const make = () => createTrainer(modelOf(c), mesh, { ...deepSpeedOptions(cfg), seed: c.seed, threads: 1, shape: { batch: cfg.microBatchPerGpu, seq: SEQ } });

async function train(t: MeshTrainer, from: number, to: number, save?: { at: number; dir: string }): Promise<number[]> {
  const batches = rankBatches(c, tokens, pg.rank, pg.worldSize);
  for (let i = 0; i < from; i++) batches.next();
  const losses: number[] = [];
  for (let it = from; it < to; it++) {
    if (save && it === save.at) await t.save(save.dir, { iter: it }, { 'note.txt': 'zero test' });
    const r = await t.step(batches.next().value!, cosineLr(cfg.schedule, it), it);
    losses.push(r.loss);
  }
  return losses;
}

const t0 = performance.now();
const trainer = await make();
const ck = c.checkpointAt !== undefined && c.ckptDir ? { at: c.checkpointAt, dir: c.ckptDir } : undefined;
const losses = await train(trainer, 0, c.steps, ck);
const ms = performance.now() - t0;
const result: Record<string, unknown> = { rank: pg.rank, losses, memory: trainer.memoryReport(), params: trainer.layout.size, ms };
if (ck) {
  const resumed = await make();
  const { meta, files } = await resumed.load(ck.dir);
  result.resumedMeta = meta;
  result.resumedFiles = files;
  result.resumedLosses = await train(resumed, ck.at, c.steps);
  if (pg.rank === 0 && c.stage > 0) {
    const out = `${ck.dir}.consolidated.safetensors`;
    consolidateCheckpoint(ck.dir, out);
    const { tensors } = readSafetensorsFile(out);
    // After loading, the resumed trainer's parameters are the saved ones... until it trained; compare against a fresh load.
    const fresh = await make();
    await fresh.load(ck.dir);
    const full = await fresh.fullParams();
    const dict = fresh.layout.stateDict(full);
    result.consolidated = Object.keys(dict).every((n) => tensors[n] && (tensors[n]!.data as Float32Array).every((x, i) => x === dict[n]!.data[i])) && Object.keys(tensors).length === Object.keys(dict).length;
  } else if (c.stage > 0) {
    const fresh = await make();
    await fresh.load(ck.dir);
    await fresh.fullParams();
  }
}
console.log(`RESULT ${JSON.stringify(result)}`);
await pg.destroy();
