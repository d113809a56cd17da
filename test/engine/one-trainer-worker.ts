// One rank of one-trainer.test.ts (torchrun-style env, 2 ranks): builds the one trainer with
// createTrainer for dp2 x ZeRO-1/2/3 and pp2 on the same corpus and seed, trains a few steps,
// saves a universal checkpoint per layout, and prints one `RESULT {json}` line with each
// layout's step kind, losses, memory report and a checksum of the full parameters.
import { initProcessGroup } from '../../src/dist/index.js';
import { createTrainer } from '../../src/engine/mesh-trainer.js';
import { Mesh } from '../../src/engine/mesh/mesh.js';
import type { ZeroStage } from '../../src/engine/ds-config.js';
import { corpus, modelOf, rankBatches, SEQ } from './zero-case.js';
import { ONE_CASE, ONE_OPTIONS, layoutsOf, paramSums } from './one-trainer-case.js';

const pg = await initProcessGroup({ timeoutMs: 60_000 });
const out = process.env.ONE_TRAINER_DIR!;
const tokens = corpus();
const results: Record<string, unknown>[] = [];
for (const l of layoutsOf(pg.worldSize)) {
  const mesh = Mesh.create(pg, l.mesh);
  const batchRank = l.mesh.dp > 1 ? mesh.coords.dp : 0;
  try {
    const t = await createTrainer(modelOf(ONE_CASE), mesh, { ...ONE_OPTIONS, zeroStage: l.zero as ZeroStage, shape: { batch: ONE_CASE.globalMicro / l.mesh.dp, seq: SEQ } });
    const batches = rankBatches(ONE_CASE, tokens, batchRank, l.mesh.dp);
    const losses: number[] = [];
    for (let it = 0; it < ONE_CASE.steps; it++) losses.push((await t.step(batches.next().value!, ONE_OPTIONS.optimizer.lr, it)).loss);
    await t.save(`${out}/${l.name}`, { iter: ONE_CASE.steps }, { 'note.txt': l.name });
    results.push({ name: l.name, kind: t.kind, losses, memory: t.memoryReport(), sums: paramSums(await t.fullParams()) });
  } catch (e) {
    results.push({ name: l.name, error: (e as Error).message });
  }
}
console.log(`RESULT ${JSON.stringify({ rank: pg.rank, results })}`);
await pg.destroy();
