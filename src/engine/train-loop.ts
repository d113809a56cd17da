// The training loop: schedule, batches, evaluation, metrics, progress and checkpoints around
// a Trainer. Everything that can be wrong with the inputs is checked before step 0.
import type { TrainDType } from '../ir/dtype.js';
import { refuseFloat64 } from './train-dtype.js';
import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { Rng } from '../tensor/rng.js';
import { ShardedBatchSampler, startsAfter, type Tokenizer } from '../data/index.js';
import type { LanguageModel } from '../models/model.js';
import { type Architecture, createModel } from '../models/registry.js';
import type { TrainHyper } from '../models/presets.js';
import { cosineLr } from '../optim/schedule.js';
import { loadRunData, type TokenizerKind } from './run-data.js';
import { isShardedCheckpoint, isUniversalCheckpoint, loadCheckpoint, ShardedCheckpoint, UniversalCheckpoint } from '../checkpoint/index.js';
import type { Trainer } from './trainer.js';
import { MeshTrainer, singleLayout } from './mesh-trainer.js';
import { Mesh } from './mesh/mesh.js';
import { Progress } from './progress.js';
import { checkRunMeta, type RunMeta } from './validate-meta.js';
import { ConfigValueError, HYPER_RULES, RUN_RULES, checkSettings, checkValue } from './validate-config.js';
import { checkTrainingMemory, sizesOf } from './memory-estimate.js';
import { CheckpointSchedule, type CheckpointInterval } from './checkpoint-schedule.js';
import { AsyncCheckpointWriter } from '../checkpoint/index.js';
import { AsyncUniversalSaves } from './universal/async-save.js';
import { MfuMeter, resolvePeak } from './mfu.js';
import { formatProfile } from './profile-report.js';
import { readStepProfile } from '../runtime/profile.js';
import { openMonitors, JsonlMonitor, ProgressBar, type MetricRecord, type Monitor, type MonitorOptions } from '../monitor/index.js';

export interface RunOptions {
  /** The architecture (family and sizes); the vocabulary comes from the tokenizer. */
  model: Architecture;
  /** Training dtype (--dtype; default float32): float64 for exactness checks, GPT only. */
  dtype?: TrainDType;
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
  /** Peak GFLOP/s for MFU; default: resolvePeak (calibration file, else a start-up probe). */
  peakGflops?: number;
  /** Machine spec from `atscale plan --calibrate` to take the MFU peak from. */
  machine?: string;
  /** Data-parallel rank and world (1 process: 0 of 1). */
  rank?: number;
  world?: number;
  /** With pipeline or tensor parallelism: this rank's data-parallel replica and their count
   * (batches are sharded over these, not over all ranks); default rank of world. */
  dataParallel?: { rank: number; size: number };
  /** The fused step's recomputation when this loop builds the trainer (default: the fused step's, FUSED_RECOMPUTE). */
  recompute?: 'none' | 'selective';
  /** Builds the trainer for a model (default: the trainer on the mesh of one); a mesh over a process group plugs in here. */
  makeTrainer?: (model: LanguageModel, microBatch: number, seed: number, initial?: Float32Array) => Promise<Trainer>;
  /** Settings the user gave explicitly (camelCase hyper keys, 'seed'); on resume only these
   * override the checkpoint's, and batch size, accumulation and seed may not change. */
  explicit?: ReadonlySet<string>;
  /** Start every training/eval window just after this text (e.g. '\n' for one record per line). */
  alignAfter?: string;
  quiet?: boolean;
  /** Record ONNX Runtime's trace of the training steps into OUT and print the per-module table
   * of the last step (single-process runs). */
  profile?: boolean;
  /** TensorBoard (on by default, OUT/tb) and CSV writers next to metrics.jsonl. */
  monitor?: MonitorOptions;
  /** Refuse to start when the estimated memory per process is above this (GiB); default: the machine's. */
  maxMemoryGb?: number;
  /** A non-finite loss or grad norm: stop before saving (default), or reload the last good
   * checkpoint and skip that step's batch. */
  onNonFinite?: 'stop' | 'rollback';
  /** ZeRO stage of the trainer makeTrainer builds (memory estimate); 0 when absent. */
  zeroStage?: number;
  /** Snapshot the state at the step boundary and write it in a background thread (one process:
   * the whole checkpoint; ZeRO and mesh ranks: each its shard, published together later). */
  asyncCheckpoint?: boolean;
  /** Also save every N steps, or 'auto' (Young/Daly from the measured stall and mtbfHours); default: at evaluations only. */
  checkpointInterval?: CheckpointInterval;
  mtbfHours?: number;
}

/** A NaN or Inf loss or gradient norm; the last good checkpoint was left as it was. */
export class NonFiniteError extends Error {
  override name = 'NonFiniteError';
}

/** Rollbacks allowed in one run before the loop gives up (every one reloads a checkpoint). */
const MAX_ROLLBACKS = 10;

export interface RunResult {
  model: LanguageModel;
  trainer: Trainer;
  tokenizer: Tokenizer;
  losses: { iter: number; loss: number }[];
  valLoss: number;
  checkpoint: string;
}

type Meta = RunMeta;

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
    meta = checkRunMeta(ck.meta, `checkpoint ${o.resume}`);
    resumeFiles = ck.files;
    if (!resumeFiles['tokenizer.json']) throw new Error(`checkpoint ${o.resume} has no tokenizer.json; it was not written by atscale train`);
  }
  let arch: Architecture = meta ? (meta.architecture ?? meta.config!) : (o.init?.architecture ?? o.model);
  if (o.init && meta) throw new Error('starting from a pretrained model (--model) cannot also resume a checkpoint; drop --resume (or --init-from resume)');
  const blockSize = createModel(arch).dims.blockSize;
  const h = meta ? resumedHyper(meta, o) : o.hyper;
  const seed = meta ? meta.seed : o.seed;
  if (h.batchSize % dataWorld !== 0) throw new Error(`batch size ${h.batchSize} is not divisible by the ${dataWorld} data-parallel ranks`);
  checkSettings(h as unknown as Record<string, unknown>, (k) => `training setting ${k}`);
  for (const k of Object.keys(HYPER_RULES)) if (!(k in h)) throw new ConfigValueError(`training setting ${k} is missing`);
  checkValue('seed', seed, RUN_RULES.seed!);
  if (o.onNonFinite !== undefined) checkValue('onNonFinite', o.onNonFinite, RUN_RULES.onNonfinite!);
  // Memory first, before the corpus, the model or any buffer exists (the char vocabulary is
  // not known yet; 256 stands in for it, the logits are a small term at that size).
  const sized = createModel({ ...arch, vocabSize: meta || o.init ? arch.vocabSize : o.tokenizer === 'bpe' ? (o.bpeVocab ?? 512) : 256 } as Architecture);
  // With pipeline or tensor parallelism a rank holds only its stage's share of the model; the
  // mesh checked that share against --max-memory-gb before the process group started
  // (engine/mesh/memory.ts), so the whole-model estimate here applies to data parallelism only.
  if (o.dtype === 'float64' && sized.family !== 'gpt2') refuseFloat64(o.dtype, `the ${sized.family} model family (float64 is checked for GPT-2 only)`);
  if (dataWorld === world) checkTrainingMemory(sizesOf(sized), h.batchSize / dataWorld, { world: dataWorld, stage: o.zeroStage, maxMemoryGb: o.maxMemoryGb, itemBytes: o.dtype === 'float64' ? 8 : 4 });
  mkdirSync(o.out, { recursive: true });
  const restored = resumeFiles ? parseTokenizerFile(resumeFiles['tokenizer.json']!, o.resume!) : o.init?.tokenizer.toJSON();
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
  if (o.profile && o.makeTrainer) throw new Error('--profile profiles a single-process run; run it without a DeepSpeed config or launcher');
  const profilePrefix = o.profile ? join(o.out, 'ort-profile') : undefined;
  const trainer: Trainer = o.makeTrainer
    ? await o.makeTrainer(model, micro, seed, o.init?.params)
    : new MeshTrainer(model, Mesh.single(), { initialParams: o.init?.params, shape, optimizer: { lr: h.lr, beta1: h.beta1, beta2: h.beta2, eps: 1e-8, weightDecay: h.weightDecay }, gradClip: h.gradClip, gradAccum: h.gradAccum, seed, device: o.device, threads: o.threads, profile: profilePrefix, layout: o.recompute && singleLayout(o.recompute), dtype: o.dtype });
  const align = o.alignAfter === undefined ? undefined : data.tokenizer.encode(o.alignAfter);
  if (align && align.length !== 1) throw new Error(`alignAfter must encode to exactly one token, got ${align.length}`);
  const startsIn = (tokens: ArrayLike<number>) => (align ? startsAfter(tokens, align[0]!) : undefined);
  const trainSampler = new ShardedBatchSampler(data.train, blockSize, h.batchSize, dataRank, dataWorld, new Rng(seed), startsIn(data.train));
  const valSampler = new ShardedBatchSampler(data.val, blockSize, h.batchSize, dataRank, dataWorld, new Rng(seed + 1), startsIn(data.val));
  let start = 0;
  const skipped = new Set<number>(meta?.skipped ?? []);
  // The newest checkpoint a rollback may return to: the one resumed from, then each save.
  let lastGood: { dir: string; iter: number } | undefined = meta ? { dir: o.resume!, iter: meta.iter } : undefined;
  let rollbacks = 0;
  if (meta) {
    await trainer.load(o.resume!);
    trainSampler.setState(meta.trainRng);
    valSampler.setState(meta.valRng);
    start = meta.iter;
  }
  // Before the step graphs compile, so the probe (when there is one) has the cores to itself.
  const mfu = rank === 0 ? new MfuMeter(await resolvePeak({ given: o.peakGflops, machine: o.machine, threads: o.threads ?? availableParallelism() })) : undefined;
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
  if (mfu && !o.quiet) process.stderr.write(`${mfu.describe()}\n`);
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
  const checkpoints = new CheckpointSchedule(o.checkpointInterval, o.mtbfHours);
  const writer = o.asyncCheckpoint && (trainer.snapshot || trainer.universalSave) ? new AsyncCheckpointWriter() : undefined;
  // Ranks of a ZeRO or mesh trainer: each writes its shard in the background, and the save is
  // published (lastGood moves) only when the ranks agree at a later step boundary that all landed.
  const shardSaves = writer && !trainer.snapshot ? new AsyncUniversalSaves(writer) : undefined;
  let lastSaveIter = start;
  let stepSeconds = NaN; // moving average, for the checkpoint interval in steps
  const save = async (iter: number) => {
    saved = true;
    const t0 = performance.now();
    const m: Meta = { iter, architecture: model.architecture() as Architecture, hyper: h, seed, trainRng: trainSampler.getState(), valRng: valSampler.getState(), tokenizer: data.tokenizer.fingerprint(), world };
    if (skipped.size) m.skipped = [...skipped].filter((s) => s < iter).sort((a, b) => a - b);
    const files = { 'tokenizer.json': JSON.stringify(data.tokenizer.toJSON()) };
    if (shardSaves) {
      const { group, save: s } = await trainer.universalSave!(ckptDir, m as unknown as Record<string, unknown>, files);
      await shardSaves.start(group, s, () => (lastGood = { dir: ckptDir, iter }));
    } else if (writer) {
      // Published in the background; a rollback waits for it (flush) before reading lastGood.
      const { published } = await writer.submit(ckptDir, trainer.snapshot!(m as unknown as Record<string, unknown>, files, (bytes) => writer.takeBuffer(bytes)));
      published.then(() => (lastGood = { dir: ckptDir, iter }), () => {});
    } else {
      await trainer.save(ckptDir, m as unknown as Record<string, unknown>, files);
      lastGood = { dir: ckptDir, iter };
    }
    const stall = (performance.now() - t0) / 1000;
    lastSaveIter = iter;
    checkpoints.record(stall, stepSeconds);
    log({ iter, checkpoint_stall_s: round(stall), async: writer ? 1 : 0, ...(checkpoints.steps !== undefined ? { checkpoint_interval_steps: checkpoints.steps } : {}), ...(checkpoints.tauSeconds !== undefined ? { young_daly_s: round(checkpoints.tauSeconds), step_s: round(stepSeconds) } : {}) });
  };
  /** Reloads the last good checkpoint (every rank does: the loss is the same on all) and
   * returns the step to continue from; the bad step's batch is skipped when it comes again. */
  const rollBack = async (bad: number, why: string): Promise<number> => {
    const policy = o.onNonFinite ?? 'stop';
    const kept = lastGood ? `the last good checkpoint ${lastGood.dir} (step ${lastGood.iter}) was not touched` : 'no checkpoint was written';
    if (policy === 'stop') throw new NonFiniteError(`${why} at step ${bad}; stopped before saving, and ${kept}. Lower --lr or check the data, or pass --on-nonfinite rollback to reload the checkpoint and skip this batch`);
    await writer?.flush();
    await shardSaves?.finish();
    if (!lastGood) throw new NonFiniteError(`${why} at step ${bad}, and there is no checkpoint yet to roll back to (the first is written at step ${h.evalInterval}); lower --lr or check the data`);
    if (++rollbacks > MAX_ROLLBACKS) throw new NonFiniteError(`${why} at step ${bad}: ${MAX_ROLLBACKS} rollbacks already in this run; stopping (${kept})`);
    await trainer.load(lastGood.dir);
    const m = checkRunMeta(readCheckpointInfo(lastGood.dir).meta, `checkpoint ${lastGood.dir}`);
    trainSampler.setState(m.trainRng);
    valSampler.setState(m.valRng);
    skipped.add(bad);
    while (losses.length && losses.at(-1)!.iter > m.iter) losses.pop(); // steps up to m.iter (counted from 1) are in the checkpoint
    log({ iter: bad + 1, rollback_to: m.iter });
    if (!o.quiet && rank === 0) console.error(`atscale train: ${why} at step ${bad}: rolled back to step ${m.iter}; that batch will be skipped`);
    return m.iter;
  };

  let valLoss = NaN;
  let windowStart = performance.now();
  let windowIters = 0;
  let windowStepMs = 0;
  let windowComputeMs: number | null = 0;
  const resetWindow = () => {
    windowStart = performance.now();
    windowIters = 0;
    windowStepMs = 0;
    windowComputeMs = 0;
  };
  try {
    for (let iter = start; iter < h.maxIters; iter++) {
      if (shardSaves?.inFlight) await shardSaves.poll(); // every rank at every boundary while one is
      const lr = cosineLr(schedule, iter);
      const batches = Array.from({ length: h.gradAccum }, () => trainSampler.next());
      const last = iter === h.maxIters - 1;
      if (skipped.has(iter)) {
        // A batch that gave a non-finite loss before a rollback: drawn (so the data stream
        // stays the same) but not trained on.
        log({ iter: iter + 1, skipped: 1 });
      } else {
        const t0 = performance.now();
        const r = await trainer.step(batches, lr, iter);
        const stepMs = performance.now() - t0;
        stepSeconds = Number.isNaN(stepSeconds) ? stepMs / 1000 : 0.9 * stepSeconds + 0.1 * (stepMs / 1000);
        if (!Number.isFinite(r.loss) || !Number.isFinite(r.gradNorm)) {
          iter = (await rollBack(iter, `loss ${r.loss}, gradient norm ${r.gradNorm}`)) - 1;
          resetWindow();
          continue;
        }
        // One numbering everywhere a user reads it: optimizer steps counted from 1 (progress line,
        // val lines, metrics.jsonl's iter, meta.iter); `iter` is the 0-based index the schedule,
        // the sampler and dropout keys use.
        losses.push({ iter: iter + 1, loss: r.loss });
        windowIters++;
        windowStepMs += stepMs;
        windowComputeMs = r.computeMs === undefined || windowComputeMs === null ? null : windowComputeMs + r.computeMs;
        if (iter % h.logInterval === 0 || last) {
          const seconds = (performance.now() - windowStart) / 1000;
          const tps = (tokensPerIter * windowIters) / seconds;
          const u = mfu?.measure(flopsPerIter * windowIters, seconds);
          const rssMb = process.memoryUsage().rss / 2 ** 20;
          log({ iter: iter + 1, loss: round(r.loss), lr, tokens_per_s: Math.round(tps), mfu: u === undefined ? null : round(u), mfu_peak_gflops: mfu ? round(mfu.peakGflops) : null, grad_norm: round(r.gradNorm), step_ms: round(windowStepMs / windowIters), rss_mb: Math.round(rssMb) });
          // Every rank, at the same cadence: its mean step time over the window.
          rankLog?.write({ iter: iter + 1, step_ms: round(windowStepMs / windowIters), compute_ms: windowComputeMs === null ? null : round(windowComputeMs / windowIters) });
          progress.update(iter + 1, r.loss, tps, u);
          resetWindow();
        }
      }
      if ((iter + 1) % h.evalInterval === 0 || last) {
        valLoss = await evaluate(iter + 1);
        if (!Number.isFinite(valLoss)) {
          iter = (await rollBack(iter, `validation loss ${valLoss}`)) - 1;
          resetWindow();
          continue;
        }
        log({ iter: iter + 1, val_loss: round(valLoss) });
        await save(iter + 1);
        resetWindow();
      } else if (checkpoints.due(iter + 1, lastSaveIter)) {
        await save(iter + 1);
      }
    }
    monitor?.close();
    progress.done();
    // Stated again at the end when the run itself beat the peak (MFU was capped by raising it).
    if (mfu && !o.quiet && mfu.raised) process.stderr.write(`${mfu.describe()}\n`);
    if (o.profile && trainer instanceof MeshTrainer && trainer.kind === 'fused' && losses.length > 0) {
      const { file, nodes } = trainer.endProfiling();
      const report = formatProfile(readStepProfile(file, nodes), model);
      writeFileSync(join(o.out, 'profile.txt'), report + '\n');
      console.log(`${report}\n\nChrome trace of every profiled step: ${file} (open in ui.perfetto.dev or chrome://tracing); this table: ${join(o.out, 'profile.txt')}`);
    }
    // Every rank decides the same way (saving is collective), and a stale ckpt/ is never returned.
    if (!saved) await save(start);
    await shardSaves?.finish();
    await writer?.flush();
  } finally {
    await writer?.close().catch(() => {});
  }
  return { model, trainer, tokenizer: data.tokenizer, losses, valLoss, checkpoint: ckptDir };
}

const round = (x: number) => Math.round(x * 1e6) / 1e6;

/** A checkpoint's tokenizer.json, parsed; damage is reported with the checkpoint named. */
export function parseTokenizerFile(text: string, dir: string): object {
  try {
    const json = JSON.parse(text) as unknown;
    if (typeof json !== 'object' || json === null) throw new Error(`expected an object, got ${JSON.stringify(json)?.slice(0, 40)}`);
    return json;
  } catch (e) {
    throw new Error(`checkpoint ${dir}: tokenizer.json is not valid (${(e as Error).message})`);
  }
}

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
  if (isUniversalCheckpoint(dir)) {
    const ck = new UniversalCheckpoint(dir);
    return { meta: ck.meta, files: ck.files };
  }
  if (isShardedCheckpoint(dir)) {
    const ck = new ShardedCheckpoint(dir);
    return { meta: ck.meta, files: ck.files };
  }
  const ck = loadCheckpoint(dir);
  return { meta: ck.meta, files: ck.files };
}

/** A resumed run's settings, before any process group or trainer is built: the layout and the
 *  per-rank batch are derived from them, and they must be the checkpoint's (its batch size,
 *  accumulation and schedule) unless given explicitly, whatever the new world size. Undefined
 *  when the checkpoint cannot be read; the resume itself then reports why. */
export function checkpointSettings(dir: string): { hyper: TrainHyper; nLayer: number; nHead: number } | undefined {
  try {
    const meta = checkRunMeta(readCheckpointInfo(dir).meta, `checkpoint ${dir}`);
    const arch = (meta.architecture ?? meta.config) as { nLayer?: unknown; nHead?: unknown };
    return { hyper: meta.hyper, nLayer: Number(arch.nLayer), nHead: Number(arch.nHead) };
  } catch {
    return undefined;
  }
}
