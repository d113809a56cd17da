// `npm run bench -- zero [--json] [--steps N]`: ZeRO on the cpu-small GPT (4 layers, 4 heads,
// 128 wide, context 64, batch 12).
// 1. Per-rank bytes of parameters, gradients and optimizer state for stages 0-3 at 1, 2 and 4
//    ranks, measured from the trainers' buffers, next to the ZeRO formulas (memory.ts).
// 2. Tokens/s at 1 and 2 ranks on the same global batch (12 x 64 tokens per step), one
//    ONNX Runtime thread per rank, so 2 ranks use both cores; scaling efficiency =
//    tokens/s(2 ranks) / (2 x tokens/s(1 rank)). The step time is the slowest rank's, median over
//    the measured steps. Also timed: one all-reduce of the whole gradient, the communication a
//    data-parallel step cannot avoid.
import { resultLine, runLocalJob } from '../src/launch/local-job.js';
import { fileURLToPath } from 'node:url';
import { parseArgs } from '../src/cli/args.js';
import { initProcessGroup, type ProcessGroup } from '../src/dist/index.js';
import { GPT } from '../src/models/gpt.js';
import { FlatLayout } from '../src/nn/flat.js';
import { PRESETS } from '../src/models/presets.js';
import { parseDeepSpeedConfig } from '../src/engine/ds-config.js';
import { zeroFormula, type MemoryReport } from '../src/engine/zero/index.js';
import { createTrainer, deepSpeedOptions, MeshTrainer } from '../src/engine/mesh-trainer.js';
import { Mesh } from '../src/engine/mesh/mesh.js';
import { Rng } from '../src/tensor/rng.js';
import { median } from '../src/runtime/median.js';

const MODEL = PRESETS['cpu-small']!.model;
const SEQ = 64;
const GLOBAL_BATCH = 12;

interface Job {
  kind: 'memory' | 'speed';
  stage: number;
  threads: number;
  steps: number;
}

function config(stage: number, world: number): ReturnType<typeof parseDeepSpeedConfig> {
  return parseDeepSpeedConfig({ train_batch_size: GLOBAL_BATCH, gradient_accumulation_steps: 1, optimizer: { type: 'AdamW', params: { lr: 1e-3, betas: [0.9, 0.99], weight_decay: 0.1 } }, gradient_clipping: 1, zero_optimization: { stage } }, world);
}

async function memoryJob(pg: ProcessGroup): Promise<MemoryReport[]> {
  const out: MemoryReport[] = [];
  const mesh = Mesh.create(pg, { dp: pg.worldSize, pp: 1, tp: 1 });
  for (const stage of [0, 1, 2, 3]) {
    const cfg = config(stage, pg.worldSize);
    const opts = { ...deepSpeedOptions(cfg), seed: 1, threads: 1, shape: { batch: cfg.microBatchPerGpu, seq: SEQ } };
    // Constructing allocates every persistent buffer; no graph needs compiling to count them.
    // On a mesh over a process group with pp = tp = 1 the trainer runs a ZeRO step, whose report is a MemoryReport.
    const t = new MeshTrainer(new GPT(MODEL), mesh, opts);
    out.push(t.memoryReport() as MemoryReport);
  }
  return out;
}

async function speedJob(pg: ProcessGroup, job: Job): Promise<Record<string, number>> {
  const cfg = config(job.stage, pg.worldSize);
  const t = await createTrainer(new GPT(MODEL), Mesh.create(pg, { dp: pg.worldSize, pp: 1, tp: 1 }), { ...deepSpeedOptions(cfg), seed: 1, threads: job.threads, shape: { batch: cfg.microBatchPerGpu, seq: SEQ } });
  const rng = new Rng(7 + pg.rank);
  const n = cfg.microBatchPerGpu * SEQ;
  const batch = () => ({ x: Int32Array.from({ length: n }, () => rng.int(65)), y: Int32Array.from({ length: n }, () => rng.int(65)) });
  const slowest = new Float32Array(1);
  const times: number[] = [];
  for (let i = 0; i < job.steps + 2; i++) {
    const micro = [batch()];
    await pg.barrier();
    const t0 = performance.now();
    await t.step(micro, 1e-3, i);
    slowest[0] = performance.now() - t0;
    await pg.allReduce(slowest, 'max');
    if (i >= 2) times.push(slowest[0]); // the first steps pay first-touch and JIT
  }
  const grad = new Float32Array(t.layout.size);
  const comm: number[] = [];
  for (let i = 0; i < 5; i++) {
    const t0 = performance.now();
    await pg.allReduce(grad);
    comm.push(performance.now() - t0);
  }
  return { step_ms: median(times), allreduce_ms: pg.worldSize > 1 ? median(comm) : 0, params: t.layout.size };
}

async function worker(): Promise<void> {
  const job = JSON.parse(process.env.ZERO_BENCH_JOB!) as Job;
  const pg = await initProcessGroup({ timeoutMs: 120_000 });
  const result = job.kind === 'memory' ? await memoryJob(pg) : await speedJob(pg, job);
  if (pg.rank === 0 || job.kind === 'memory') console.log(`RESULT ${JSON.stringify({ rank: pg.rank, result })}`);
  await pg.destroy();
}

/** Runs `world` rank processes of this file; returns each printed RESULT, by rank. */
async function runJob(world: number, job: Job): Promise<Map<number, unknown>> {
  const exits = await runLocalJob({ script: fileURLToPath(import.meta.url), world, env: { ZERO_BENCH_WORKER: '1', ZERO_BENCH_JOB: JSON.stringify(job) }, timeoutMs: 300_000 });
  const bad = exits.find((e) => e.code !== 0);
  if (bad) throw new Error(`zero bench: rank ${bad.rank} of ${world} exited with status ${bad.code ?? bad.signal}:\n${bad.stderr.slice(-2000)}`);
  const results = new Map<number, unknown>();
  for (const e of exits) {
    const r = resultLine(e.stdout) as { result: unknown } | null;
    if (r) results.set(e.rank, r.result);
  }
  return results;
}

const mib = (b: number) => (b / 2 ** 20).toFixed(3);

export async function run(argv: string[]): Promise<number> {
  const { flags } = parseArgs(argv, { json: { type: 'boolean', help: 'one JSON line per measurement' }, steps: { type: 'number', help: 'measured steps per speed run', default: 10 } }, 'bench zero');
  const json = flags.json === true;
  const steps = flags.steps as number;
  const emit = (o: object) => json && console.log(JSON.stringify({ bench: 'zero', ...o }));

  if (!json) console.log('per-rank bytes (MiB), measured | ZeRO formula; cpu-small GPT\nstage ranks   params          grads           optimizer       decay-mask  transient');
  for (const world of [1, 2, 4]) {
    const res = await runJob(world, { kind: 'memory', stage: 0, threads: 1, steps: 0 });
    const reports = res.get(0) as MemoryReport[];
    for (const m of reports) {
      const f = zeroFormula(m.stage, new FlatLayout(new GPT(MODEL)).size, world);
      emit({ stage: m.stage, ranks: world, param_bytes: m.paramBytes, grad_bytes: m.gradBytes, optim_bytes: m.optimBytes, formula_param_bytes: f.paramBytes, formula_grad_bytes: f.gradBytes, formula_optim_bytes: f.optimBytes, decay_mask_bytes: m.decayMaskBytes, transient_bytes: Object.values(m.transient).reduce((a, b) => a + b, 0) });
      if (!json) {
        const pair = (a: number, b: number) => `${mib(a)} | ${mib(b)}`.padEnd(16);
        console.log(`${String(m.stage).padEnd(6)}${String(world).padEnd(8)}${pair(m.paramBytes, f.paramBytes)}${pair(m.gradBytes, f.gradBytes)}${pair(m.optimBytes, f.optimBytes)}${mib(m.decayMaskBytes).padEnd(12)}${mib(Object.values(m.transient).reduce((a, b) => a + b, 0))}`);
      }
    }
  }

  const tokens = GLOBAL_BATCH * SEQ;
  const single = (await runJob(1, { kind: 'speed', stage: 0, threads: 1, steps })).get(0) as Record<string, number>;
  const tps1 = (tokens / single.step_ms!) * 1000;
  if (!json) console.log(`\ntokens/s, global batch ${GLOBAL_BATCH} x ${SEQ}, one ORT thread per rank, median of ${steps} steps (slowest rank)\nstage ranks  step ms  tokens/s  efficiency  grad all-reduce ms`);
  const show = (stage: number, ranks: number, r: Record<string, number>, extra = '') => {
    const tps = (tokens / r.step_ms!) * 1000;
    const eff = tps / (ranks * tps1);
    emit({ stage, ranks, tokens_per_s: Math.round(tps), scaling_efficiency: Number(eff.toFixed(3)), step_ms: Number(r.step_ms!.toFixed(2)), allreduce_ms: Number(r.allreduce_ms!.toFixed(2)), ...(extra ? { note: extra } : {}) });
    if (!json) console.log(`${String(stage).padEnd(6)}${String(ranks).padEnd(7)}${r.step_ms!.toFixed(1).padEnd(9)}${tps.toFixed(0).padEnd(10)}${eff.toFixed(2).padEnd(12)}${r.allreduce_ms!.toFixed(1)}${extra ? `  (${extra})` : ''}`);
  };
  show(0, 1, single);
  for (const stage of [0, 1, 2, 3]) show(stage, 2, (await runJob(2, { kind: 'speed', stage, threads: 1, steps })).get(0) as Record<string, number>);
  const twoThreads = (await runJob(1, { kind: 'speed', stage: 0, threads: 2, steps })).get(0) as Record<string, number>;
  if (!json) console.log(`for comparison, 1 rank with 2 ORT threads: ${((tokens / twoThreads.step_ms!) * 1000).toFixed(0)} tokens/s`);
  emit({ stage: 0, ranks: 1, threads: 2, tokens_per_s: Math.round((tokens / twoThreads.step_ms!) * 1000), step_ms: Number(twoThreads.step_ms!.toFixed(2)) });
  return 0;
}

if (process.env.ZERO_BENCH_WORKER === '1') await worker();
