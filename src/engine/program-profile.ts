// Times the programs a local layout's ranks run, at one model shape, on this machine: the one
// process's micro-step and update (what the fused trainer runs per micro-batch and per step), and
// a pipeline stage's calls as the trainer's StageRunner makes them (session runs, the tensors it
// keeps handed to JavaScript, its gradients added on the host) for each recompute granularity.
// `atscale plan --calibrate` with a model shape stores the result in the machine spec; the local
// layout model (plan/local-layout.ts) then arranges these costs as each layout's schedule runs
// them, instead of deriving them from GEMM and bandwidth rates (planners that profile stages
// before simulating the pipeline work this way; the rates miss per-call costs at small shapes).
import { createModel } from '../models/registry.js';
import { FlatLayout } from '../nn/flat.js';
import { hostValue } from '../ir/value.js';
import { Rng } from '../tensor/rng.js';
import { median } from '../runtime/median.js';
import type { ProgramProfile, ProfiledShape, SegmentCosts } from '../plan/program-profile.js';
import { GRANULARITIES } from '../plan/program-profile.js';
import { createTrainer, singleLayout } from './mesh-trainer.js';
import { Mesh } from './mesh/mesh.js';
import { StageRunner } from './pipeline/stage.js';
import { measureCoRun } from './co-run.js';

const arch = (s: ProfiledShape, nLayer: number) => ({ nLayer, nHead: s.nHead, nEmbd: s.nEmbd, blockSize: s.blockSize, vocabSize: s.vocab, bias: false, dropout: 0 });
const CO_RUN_COPIES = 4;
const OPTIMIZER = { lr: 1e-3, beta1: 0.9, beta2: 0.99, eps: 1e-8, weightDecay: 0.1 };

/** One process: steps of 2 and of 4 micro-batches (both the micro-step + update programs the
 * trainer runs with accumulation); their difference is two micro-steps, the rest of the shorter
 * one the update and per-step costs. */
export async function fusedTimer(s: ProfiledShape, recompute: 'none' | 'selective', threads: number) {
  const rng = new Rng(5);
  const runs: { trainer: Awaited<ReturnType<typeof createTrainer>>; micro: { x: Int32Array; y: Int32Array }[]; ms: number[]; iter: number }[] = [];
  for (const accum of [2, 4]) {
    const model = createModel(arch(s, s.nLayer));
    const trainer = await createTrainer(model, Mesh.single(), { shape: { batch: s.rows, seq: s.blockSize }, optimizer: OPTIMIZER, gradClip: 1, gradAccum: accum, seed: 1, threads, layout: singleLayout(recompute) });
    const n = s.rows * s.blockSize;
    const micro = Array.from({ length: accum }, () => ({ x: Int32Array.from({ length: n }, () => rng.int(s.vocab)), y: Int32Array.from({ length: n }, () => rng.int(s.vocab)) }));
    for (let i = 0; i < 2; i++) await trainer.step(micro, 1e-3, i);
    runs.push({ trainer, micro, ms: [] as number[], iter: 2 });
  }
  return {
    async round(): Promise<void> {
      for (const run of runs) {
        const t0 = performance.now();
        await run.trainer.step(run.micro, 1e-3, run.iter++);
        run.ms.push(performance.now() - t0);
      }
    },
    result(): { microMs: number; updateMs: number } {
      const [two, four] = runs.map((r) => median(r.ms)) as [number, number];
      const microMs = Math.max((four - two) / 2, two / 4);
      return { microMs, updateMs: Math.max(two - 2 * microMs, 0) };
    },
  };
}

/** A pipeline rank's calls: a 3-layer model of the same width split into three virtual stages of
 * one block each (embedding + block, block, block + head), run as the executor runs them with
 * `inFlight` micro-batches held between forward and backward. The middle stage is one block; the
 * first and last, less one block, are the embedding and the head. */
export async function stageTimer(s: ProfiledShape, granularity: 'none' | 'selective' | 'full', threads: number, inFlight: number) {
  const model = createModel(arch(s, 3));
  const layout = new FlatLayout(model);
  const stages = [0, 1, 2].map((st) => ({ stage: st, blocks: [st, st + 1] as [number, number] }));
  const runner = new StageRunner(model, layout, { batch: s.rows, seq: s.blockSize }, stages, 2, layout.initialise(1), granularity);
  await runner.compile({ threads });
  const rng = new Rng(9);
  const n = s.rows * s.blockSize;
  const tokens = () => Int32Array.from({ length: n }, () => rng.int(s.vocab));
  const key = runner.hasKey ? hostValue('int64', [], [1]) : undefined;
  const times = { forward: [[], [], []] as number[][], backward: [[], [], []] as number[][] };
  const timed = async <T>(into: number[], f: () => Promise<T>): Promise<T> => {
    const t0 = performance.now();
    const r = await f();
    into.push(performance.now() - t0);
    return r;
  };
  const round = async (record: boolean): Promise<void> => {
    const batches = Array.from({ length: inFlight }, () => ({ x: tokens(), y: tokens() }));
    for (let mb = 0; mb < inFlight; mb++) {
      let x: Awaited<ReturnType<StageRunner['forward']>> | undefined;
      for (let st = 0; st < 3; st++) x = await timed(record ? times.forward[st]! : [], () => runner.forward(mb, st, { idx: batches[mb]!.x, x }, key));
    }
    for (let mb = 0; mb < inFlight; mb++) {
      let dy: Awaited<ReturnType<StageRunner['backward']>>['dx'] | undefined;
      for (let st = 2; st >= 0; st--) dy = (await timed(record ? times.backward[st]! : [], () => runner.backward(mb, st, { dy: dy ?? undefined, targets: batches[mb]!.y, seed: 1 / inFlight }, key))).dx;
    }
  };
  await round(false); // warms the sessions up
  return {
    round: () => round(true),
    result(): SegmentCosts {
      const f = times.forward.map(median) as [number, number, number];
      const b = times.backward.map(median) as [number, number, number];
      return {
        blockForwardMs: f[1], blockBackwardMs: b[1],
        embedForwardMs: Math.max(f[0] - f[1], 0), embedBackwardMs: Math.max(b[0] - b[1], 0),
        headForwardMs: Math.max(f[2] - f[1], 0), headBackwardMs: Math.max(b[2] - b[1], 0),
      };
    },
  };
}

/** Profiles shape `s` with `threads` ONNX Runtime threads per program (a rank's); with `cores`
 * above 1, also how `cores` ranks computing at once slow each other (co-run.ts). */
export async function profilePrograms(s: ProfiledShape, threads: number, cores: number, rounds = 9): Promise<ProgramProfile> {
  // Every program is built and warmed up first, then all are timed in alternating rounds, so a
  // burst of load on a shared host (or its clock drifting) lands on all of them alike.
  const fusedNone = await fusedTimer(s, 'none', threads);
  const fusedSelective = await fusedTimer(s, 'selective', threads);
  const stageTimers: Awaited<ReturnType<typeof stageTimer>>[] = [];
  for (const g of GRANULARITIES) stageTimers.push(await stageTimer(s, g, threads, 2));
  for (let r = 0; r < rounds; r++) for (const t of [fusedNone, fusedSelective, ...stageTimers]) await t.round();
  const stages = Object.fromEntries(GRANULARITIES.map((g, i) => [g, stageTimers[i]!.result()])) as ProgramProfile['stages'];
  const profile: ProgramProfile = { shape: { ...s }, threads, fused: { none: fusedNone.result(), selective: fusedSelective.result() }, stages };
  if (cores > 1) {
    // At most CO_RUN_COPIES processes, so that calibrating a many-core host stays short; the
    // model charges more ranks than were measured at the measured slowdown.
    const copies = Math.min(cores, CO_RUN_COPIES);
    const fused = await measureCoRun(s, threads, copies, 'fused');
    const stages = await measureCoRun(s, threads, copies, 'stages');
    profile.coRun = { ranks: copies, fused: fused.slowdown, stages: stages.slowdown };
  }
  return profile;
}
