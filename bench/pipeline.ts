// `npm run bench -- pipeline [--json] [--steps N]`: the pipeline bubble measured on real
// processes running the executor (a 4-layer GPT, 128 wide, context 64, micro-batch 8, one ONNX
// Runtime thread per rank), next to the formulas: (p-1)/m for GPipe and 1F1B, (p-1)/(v*m) for
// interleaved 1F1B. A stage's bubble is its idle time between the start of the step and its
// last forward/backward, divided by its compute time there; medians over the measured steps,
// then the mean over stages (each stage is also listed). Communication counts as idle.
import { resultLine, runLocalJob } from '../src/launch/local-job.js';
import { fileURLToPath } from 'node:url';
import { parseArgs } from '../src/cli/args.js';
import { initProcessGroup } from '../src/dist/index.js';
import { GPT } from '../src/models/gpt.js';
import { Mesh } from '../src/engine/mesh/mesh.js';
import { createTrainer } from '../src/engine/mesh-trainer.js';
import { PipelineStep } from '../src/engine/step/pipeline.js';
import { checkLayout, type ParallelLayout } from '../src/engine/mesh/layout.js';
import { Rng } from '../src/tensor/rng.js';
import { median } from '../src/runtime/median.js';

const MODEL = { nLayer: 4, nHead: 4, nEmbd: 128, blockSize: 64, vocabSize: 65, dropout: 0, bias: true };
const MICRO = 8;

interface Job {
  schedule: 'gpipe' | '1f1b' | 'interleaved';
  pp: number;
  v: number;
  m: number;
  steps: number;
}

async function worker(): Promise<void> {
  const job = JSON.parse(process.env.PIPE_BENCH_JOB!) as Job;
  const pg = await initProcessGroup({ timeoutMs: 120_000 });
  const layout: ParallelLayout = { mesh: { dp: 1, pp: job.pp, tp: 1 }, virtual: job.v, sequenceParallel: false, recompute: 'full', schedule: job.schedule };
  const stageLayers = checkLayout(layout, { world: pg.worldSize, nLayer: MODEL.nLayer, nHead: MODEL.nHead, microBatches: job.m });
  const mesh = Mesh.create(pg, layout.mesh);
  const t = await createTrainer(new GPT(MODEL), mesh, {
    seed: 1, threads: 1, shape: { batch: MICRO, seq: MODEL.blockSize }, optimizer: { lr: 1e-3, beta1: 0.9, beta2: 0.99, eps: 1e-8, weightDecay: 0.1 },
    gradClip: 1, gradAccum: job.m, zeroStage: 0, layout, stageLayers,
  });
  // The schedule's timing is the pipeline step's own record.
  if (!(t.strategy instanceof PipelineStep)) throw new Error(`pp ${job.pp} runs the ${t.kind} step, not the pipeline`);
  const pipe = t.strategy;
  const rng = new Rng(7);
  const n = MICRO * MODEL.blockSize;
  const batch = () => ({ x: Int32Array.from({ length: n }, () => rng.int(65)), y: Int32Array.from({ length: n }, () => rng.int(65)) });
  const bubbles: number[] = [];
  for (let i = 0; i < job.steps + 1; i++) {
    await pg.barrier();
    await t.step(Array.from({ length: job.m }, batch), 1e-3, i);
    const r = pipe.lastRecord!;
    if (i >= 1) bubbles.push((r.computeSpanMs - r.busyMs) / r.busyMs); // step 0 pays first-run costs
  }
  console.log(`RESULT ${JSON.stringify({ rank: pg.rank, bubble: median(bubbles) })}`);
  await pg.destroy();
}

async function runJob(job: Job): Promise<number[]> {
  const exits = await runLocalJob({ script: fileURLToPath(import.meta.url), world: job.pp, env: { PIPE_BENCH_WORKER: '1', PIPE_BENCH_JOB: JSON.stringify(job) }, timeoutMs: 300_000 });
  const bad = exits.find((e) => e.code !== 0);
  if (bad) throw new Error(`pipeline bench: rank ${bad.rank} exited with status ${bad.code ?? bad.signal}:\n${bad.stderr.slice(-2000)}`);
  return exits.map((e) => (resultLine(e.stdout) as { bubble: number } | null)?.bubble ?? NaN);
}

export async function run(argv: string[]): Promise<number> {
  const { flags } = parseArgs(argv, { json: { type: 'boolean', help: 'JSON lines' }, steps: { type: 'number', help: 'measured steps per layout', default: 3 } }, 'bench pipeline');
  const json = flags.json === true;
  const steps = flags.steps as number;
  const jobs: Job[] = [];
  for (const m of [4, 8, 16]) {
    jobs.push({ schedule: 'gpipe', pp: 2, v: 1, m, steps }, { schedule: '1f1b', pp: 2, v: 1, m, steps }, { schedule: 'interleaved', pp: 2, v: 2, m, steps });
  }
  const rows: string[][] = [];
  for (const job of jobs) {
    const stages = await runJob(job);
    const measured = stages.reduce((a, b) => a + b, 0) / stages.length;
    const formula = (job.pp - 1) / (job.v * job.m);
    const rec = { bench: 'pipeline', schedule: job.schedule, pp: job.pp, v: job.v, m: job.m, bubble_measured: Math.round(measured * 1e4) / 1e4, bubble_formula: Math.round(formula * 1e4) / 1e4, stages: stages.map((b) => Math.round(b * 1e4) / 1e4) };
    if (json) console.log(JSON.stringify(rec));
    rows.push([job.schedule, String(job.pp), String(job.v), String(job.m), measured.toFixed(3), formula.toFixed(3), rec.stages.map((b) => b.toFixed(3)).join(' ')]);
  }
  if (!json) {
    const head = ['schedule', 'pp', 'v', 'm', 'bubble measured', 'formula', 'per stage'];
    const w = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
    for (const r of [head, ...rows]) console.log(r.map((c, i) => c.padEnd(w[i]!)).join('  '));
    console.log('(shared 2-core machine: communication and other load count as idle)');
  }
  return 0;
}

if (process.env.PIPE_BENCH_WORKER === '1') {
  worker().catch((e) => {
    console.error(e);
    process.exit(1);
  });
}
