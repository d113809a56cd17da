// One rank of llama-tensor-parallel.test.ts (torchrun-style env): trains the Llama case of
// llama-tp-case.ts on a mesh of tp 2 x pp LLAMA_PP (sequence parallelism from LLAMA_SP) and
// prints one `RESULT {json}` line with the losses and, on rank 0, the consolidated parameters.
import { initProcessGroup } from '../../../src/dist/index.js';
import { Llama } from '../../../src/models/llama.js';
import { Mesh } from '../../../src/engine/mesh/mesh.js';
import { createTrainer } from '../../../src/engine/mesh-trainer.js';
import type { PipelineStep } from '../../../src/engine/step/pipeline.js';
import { BATCH, CONFIG, LR, microBatches, MICRO, OPT, SEED, SEQ, STEPS } from './llama-tp-case.js';

const pg = await initProcessGroup({ timeoutMs: 60_000 });
const pp = Number(process.env.LLAMA_PP ?? '1');
const shape = { dp: 1, pp, tp: pg.worldSize / pp };
const mesh = Mesh.create(pg, shape);
const trainer = await createTrainer(new Llama(CONFIG), mesh, {
  shape: { batch: BATCH, seq: SEQ }, optimizer: OPT, gradClip: 1, gradAccum: MICRO, seed: SEED, zeroStage: 0, threads: 1,
  layout: { mesh: shape, virtual: 1, sequenceParallel: process.env.LLAMA_SP === '1', recompute: 'full', schedule: '1f1b' }, stageLayers: Array.from({ length: pp }, () => CONFIG.nLayer! / pp),
});
const losses: number[] = [];
for (let it = 0; it < STEPS; it++) losses.push((await trainer.step(microBatches(it), LR, it)).loss);
const full = await trainer.fullParams();
console.log(`RESULT ${JSON.stringify({ rank: pg.rank, losses, params: pg.rank === 0 ? Array.from(full) : undefined, localSize: (trainer.strategy as PipelineStep).runner.ownedSize })}`);
await pg.destroy();
