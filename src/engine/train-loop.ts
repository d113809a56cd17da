// The training loop: schedule, batches, evaluation, metrics, progress and checkpoints around
// a Trainer. Everything that can be wrong with the inputs is checked before step 0.
import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Rng, type RngState } from '../tensor/rng.js';
import { ShardedBatchSampler, startsAfter, type Tokenizer } from '../data/index.js';
import type { LanguageModel } from '../models/model.js';
import { type Architecture, createModel } from '../models/registry.js';
import type { TrainHyper } from '../models/presets.js';
import { cosineLr } from '../optim/schedule.js';
import { loadRunData, type TokenizerKind } from './run-data.js';
import { isShardedCheckpoint, loadCheckpoint, ShardedCheckpoint } from '../checkpoint/index.js';
import type { Trainer } from './trainer.js';
import { LocalTrainer } from './local-trainer.js';
import { Progress } from './progress.js';
import { openMonitors, JsonlMonitor, ProgressBar, type MetricRecord, type Monitor, type MonitorOptions } from '../monitor/index.js';

export interface RunOptions {
  /** The architecture (family and sizes); the vocabulary comes from the tokenizer. */
  model: Architecture;
  /** A pretrained model to start from (a Hugging Face folder): its architecture, weights and
   * tokenizer replace `model`, the seeded init and the tokenizer built from the data. */
  init?: { architecture: Architecture; params: Float32Array; tokenizer: Tokenizer };
  hyper: TrainHyper;
  data: string;
  tokenizer: TokenizerKind;
  bpeVocab?: number;
  out: string;
  /** Checkpoint directory to resume from. */
  resume?: string;
  seed: number;
  device?: 'cpu' | 'webgpu';
  threads?: number;
  /** Peak GFLOP/s for MFU (measured by the caller, e.g. the GEMM probe). */
  peakGflops?: number;
  /** Data-parallel rank and world (1 process: 0 of 1). */
  rank?: number;
  world?: number;
  /** With pipeline or tensor parallelism: this rank's data-parallel replica and their count
   * (batches are sharded over these, not over all ranks); default rank of world. */
  dataParallel?: { rank: number; size: number };
  /** Builds the trainer for a model (default: LocalTrainer); the ZeRO engine plugs in here. */
  makeTrainer?: (model: LanguageModel, microBatch: number, seed: number) => Promise<Trainer>;
  /** Settings the user gave explicitly (camelCase hyper keys, 'seed'); on resume only these
   * override the checkpoint's, and batch size, accumulation and seed may not change. */
  explicit?: ReadonlySet<string>;
  /** Start every training/eval window just after this text (e.g. '\n' for one record per line). */
  alignAfter?: string;
  quiet?: boolean;
  /** TensorBoard (on by default, OUT/tb) and CSV writers next to metrics.jsonl. */
  monitor?: MonitorOptions;
}

export interface RunResult {
  model: LanguageModel;
  trainer: Trainer;
  tokenizer: Tokenizer;
  losses: { iter: number; loss: number }[];
  valLoss: number;
  checkpoint: string;
}

interface Meta {
  iter: number;
  /** The model's architecture() record (family and sizes). */
  architecture: Architecture;
  /** Checkpoints written before families existed: a GPT-2 config. */
  config?: Architecture;
  hyper: TrainHyper;
  seed: number;
  trainRng: RngState;
  valRng: RngState;
  tokenizer: string;
  world: number;
}

export async function runTraining(o: RunOptions): Promise<RunResult> {
  const rank = o.rank ?? 0;
  const world = o.world ?? 1;
  const dataRank = o.dataParallel?.rank ?? rank;
  const dataWorld = o.dataParallel?.size ?? world;
  const ckptDir = join(o.out, 'ckpt');
  let meta: Meta | undefined;
  let resumeFiles: Record<string, string> | undefined;
  if (o.resume) {
    // Meta and tokenizer first (config, data checks); the trainer restores tensors later.
    const ck = readCheckpointInfo(o.resume);
    meta = ck.meta as unknown as Meta;
    resumeFiles = ck.files;
    if (!resumeFiles['tokenizer.json']) throw new Error(`checkpoint ${o.resume} has no tokenizer.json; it was not written by atscale train`);
  }
  let arch: Architecture = meta ? (meta.architecture ?? meta.config!) : (o.init?.architecture ?? o.model);
  if (o.init && (meta || o.makeTrainer)) throw new Error('starting from a pretrained model (--model) works with one process and no resume; drop --resume / --deepspeed-config');
  const blockSize = createModel(arch).dims.blockSize;
  const h = meta ? resumedHyper(meta, o) : o.hyper;
  const seed = meta ? meta.seed : o.seed;
  if (h.batchSize % dataWorld !== 0) throw new Error(`batch size ${h.batchSize} is not divisible by the ${dataWorld} data-parallel ranks`);
  for (const [k, v] of Object.entries(h)) if (typeof v !== 'number' || !Number.isFinite(v)) throw new Error(`training setting ${k} must be a number, got ${String(v)}`);
  if (!(h.maxIters >= 0 && h.gradAccum >= 1 && h.batchSize >= 1 && h.evalIters >= 1 && h.evalInterval >= 1)) {
    throw new Error('max-iters must be >= 0, and batch-size, grad-accum, eval-iters and eval-interval >= 1');
  }
  mkdirSync(o.out, { recursive: true });
  const restored = resumeFiles ? (JSON.parse(resumeFiles['tokenizer.json']!) as object) : o.init?.tokenizer.toJSON();
  const data = await loadRunData(o.data, o.tokenizer, o.out, { bpeVocab: o.bpeVocab, restored, blockSize, quiet: o.quiet || rank !== 0 });
  if (meta && data.tokenizer.fingerprint() !== meta.tokenizer) throw new Error(`the tokenizer does not match checkpoint ${o.resume}`);
  if (o.init) {
    if (data.tokenizer.vocabSize > Number(arch.vocabSize)) throw new Error(`the model's tokenizer has ${data.tokenizer.vocabSize} ids but its embedding ${String(arch.vocabSize)} rows`);
  } else if (!meta) arch = { ...arch, vocabSize: data.tokenizer.vocabSize };
  // A Hugging Face model's embedding may have spare rows past its tokenizer's ids.
  else if (data.tokenizer.vocabSize > Number(arch.vocabSize)) throw new Error(`checkpoint vocab ${String(arch.vocabSize)} < tokenizer vocab ${data.tokenizer.vocabSize}`);

  const model = createModel(arch);
  const micro = h.batchSize / dataWorld;
  const shape = { batch: micro, seq: blockSize };
  const trainer: Trainer = o.makeTrainer
    ? await o.makeTrainer(model, micro, seed)
    : new LocalTrainer(model, { initialParams: o.init?.params, shape, optimizer: { lr: h.lr, beta1: h.beta1, beta2: h.beta2, eps: 1e-8, weightDecay: h.weightDecay }, gradClip: h.gradClip, gradAccum: h.gradAccum, seed, device: o.device, threads: o.threads });
  const align = o.alignAfter === undefined ? undefined : data.tokenizer.encode(o.alignAfter);
  if (align && align.length !== 1) throw new Error(`alignAfter must encode to exactly one token, got ${align.length}`);
  const startsIn = (tokens: ArrayLike<number>) => (align ? startsAfter(tokens, align[0]!) : undefined);
  const trainSampler = new ShardedBatchSampler(data.train, blockSize, h.batchSize, dataRank, dataWorld, new Rng(seed), startsIn(data.train));
  const valSampler = new ShardedBatchSampler(data.val, blockSize, h.batchSize, dataRank, dataWorld, new Rng(seed + 1), startsIn(data.val));
  let start = 0;
  if (meta) {
    await trainer.load(o.resume!);
    trainSampler.setState(meta.trainRng);
    valSampler.setState(meta.valRng);
    start = meta.iter;
  }
  await trainer.prepare();

  // Rank 0 writes the run's metrics; with several ranks each one also logs its own step time
  // (ranks/rank-R.jsonl), so a straggler shows up in the dashboard.
  const monitor: Monitor | undefined = rank === 0 ? openMonitors(o.out, o.monitor) : undefined;
  if (rank === 0) writeRunInfo(o.out, { config: model.architecture(), hyper: h, seed, world, data: o.data, tokenizer: o.tokenizer, device: o.device ?? 'cpu', resumedFrom: o.resume ?? null, started: new Date().toISOString() });
  const rankLog = world > 1 ? new JsonlMonitor(join(o.out, 'ranks', `rank-${rank}.jsonl`)) : undefined;
  const log = (rec: MetricRecord) => monitor?.write(rec);
  const schedule = { lr: h.lr, minLr: h.minLr, warmupIters: h.warmupIters, decayIters: h.decayIters };
  const tokensPerIter = h.batchSize * h.gradAccum * blockSize;
  const flopsPerIter = model.flopsPerToken(blockSize) * tokensPerIter;
  const progress = new Progress(h.maxIters, o.quiet || rank !== 0);
  const losses: { iter: number; loss: number }[] = [];

  const evaluate = async (step: number): Promise<number> => {
    const bar = new ProgressBar(`iter ${step}/${h.maxIters}: eval`, h.evalIters, { unit: 'batches', quiet: o.quiet || rank !== 0 });
    let sum = 0;
    for (let i = 0; i < h.evalIters; i++) {
      sum += await trainer.evalLoss(valSampler.next());
      bar.update(i + 1);
    }
    bar.finish(`val loss ${(sum / h.evalIters).toFixed(4)}`);
    return sum / h.evalIters;
  };
  let saved = false;
  const save = async (iter: number) => {
    saved = true;
    const m: Meta = { iter, architecture: model.architecture(), hyper: h, seed, trainRng: trainSampler.getState(), valRng: valSampler.getState(), tokenizer: data.tokenizer.fingerprint(), world };
    await trainer.save(ckptDir, m as unknown as Record<string, unknown>, { 'tokenizer.json': JSON.stringify(data.tokenizer.toJSON()) });
  };

  let valLoss = NaN;
  let windowStart = performance.now();
  let windowIters = 0;
  let windowStepMs = 0;
  let windowComputeMs: number | null = 0;
  for (let iter = start; iter < h.maxIters; iter++) {
    const lr = cosineLr(schedule, iter);
    const batches = Array.from({ length: h.gradAccum }, () => trainSampler.next());
    const t0 = performance.now();
    const r = await trainer.step(batches, lr, iter);
    const stepMs = performance.now() - t0;
    if (!Number.isFinite(r.loss)) throw new Error(`loss became ${r.loss} at iteration ${iter}; lower --lr or check the data`);
    // One numbering everywhere a user reads it: `step` counts optimizer steps from 1 (progress
    // line, val lines, metrics.jsonl's iter, a checkpoint's meta.iter); `iter` is the 0-based
    // index the schedule, the sampler and dropout keys use.
    const step = iter + 1;
    losses.push({ iter: step, loss: r.loss });
    windowIters++;
    windowStepMs += stepMs;
    windowComputeMs = r.computeMs === undefined || windowComputeMs === null ? null : windowComputeMs + r.computeMs;
    const last = step === h.maxIters;
    if (iter === start || step % h.logInterval === 0 || last) {
      const seconds = (performance.now() - windowStart) / 1000;
      const tps = (tokensPerIter * windowIters) / seconds;
      const mfu = o.peakGflops ? (flopsPerIter * windowIters) / seconds / (o.peakGflops * 1e9) : undefined;
      const rssMb = process.memoryUsage().rss / 2 ** 20;
      log({ iter: step, loss: round(r.loss), lr, tokens_per_s: Math.round(tps), mfu: mfu === undefined ? null : round(mfu), grad_norm: round(r.gradNorm), step_ms: round(windowStepMs / windowIters), rss_mb: Math.round(rssMb) });
      // Every rank, at the same cadence: its mean step time over the window.
      rankLog?.write({ iter: step, step_ms: round(windowStepMs / windowIters), compute_ms: windowComputeMs === null ? null : round(windowComputeMs / windowIters) });
      progress.update(step, r.loss, tps, mfu);
      windowStart = performance.now();
      windowIters = 0;
      windowStepMs = 0;
      windowComputeMs = 0;
    }
    if (step % h.evalInterval === 0 || last) {
      valLoss = await evaluate(step);
      log({ iter: step, val_loss: round(valLoss) });
      await save(step);
      windowStart = performance.now();
      windowIters = 0;
      windowStepMs = 0;
      windowComputeMs = 0;
    }
  }
  monitor?.close();
  progress.done();
  // Every rank decides the same way (saving is collective), and a stale ckpt/ is never returned.
  if (!saved) await save(start);
  return { model, trainer, tokenizer: data.tokenizer, losses, valLoss, checkpoint: ckptDir };
}

const round = (x: number) => Math.round(x * 1e6) / 1e6;

/** OUT/run.json: the run's settings for the dashboard's run table (temp name + rename, so a
 * reader never sees half a file). */
function writeRunInfo(out: string, info: object): void {
  const tmp = join(out, `.run.json.tmp-${process.pid}`);
  writeFileSync(tmp, JSON.stringify(info, null, 1) + '\n');
  renameSync(tmp, join(out, 'run.json'));
}

/** The checkpoint's training settings with the user's explicit ones on top; batch size,
 * accumulation and seed must stay as they were (the data stream and dropout depend on them). */
function resumedHyper(meta: Meta, o: RunOptions): TrainHyper {
  const explicit = o.explicit ?? new Set<string>();
  const h: TrainHyper = { ...meta.hyper };
  for (const k of Object.keys(h) as (keyof TrainHyper)[]) if (explicit.has(k)) h[k] = o.hyper[k];
  const fixed: [string, number, number][] = [['--batch-size', meta.hyper.batchSize, h.batchSize], ['--grad-accum', meta.hyper.gradAccum, h.gradAccum]];
  if (explicit.has('seed')) fixed.push(['--seed', meta.seed, o.seed]);
  for (const [flag, was, now] of fixed) {
    if (was !== now) throw new Error(`${flag} ${now} differs from the checkpoint's ${was}; a resumed run must keep it (drop the flag to use ${was})`);
  }
  return h;
}

/** Meta and extra files of a checkpoint, single-file or sharded (ZeRO), verified. */
export function readCheckpointInfo(dir: string): { meta: Record<string, unknown>; files: Record<string, string> } {
  if (isShardedCheckpoint(dir)) {
    const ck = new ShardedCheckpoint(dir);
    return { meta: ck.meta, files: ck.files };
  }
  const ck = loadCheckpoint(dir);
  return { meta: ck.meta, files: ck.files };
}
