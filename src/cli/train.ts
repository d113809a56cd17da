// `atscale train`: pretrain a GPT on raw text. Settings come from a preset, then a JSON
// config file (--config), then flags, later ones winning.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { availableParallelism } from 'node:os';
import { committedDir } from '../checkpoint/atomic_dir.js';
import { parseArgs, formatHelp, UsageError, type FlagSpec } from './args.js';
import { preset, PRESETS, type TrainHyper } from '../models/presets.js';
import { ConfigValueError, checkHyperRelations, checkSettings } from '../engine/validate-config.js';
import { capIters } from './iter-cap.js';
import type { Architecture } from '../models/registry.js';

export const summary = 'pretrain a language model, or fine-tune a Hugging Face folder (--model DIR), on a text file or URL';

const FLAGS: Record<string, FlagSpec> = {
  preset: { type: 'string', help: `start from a preset (${Object.keys(PRESETS).join(', ')})`, default: 'cpu-small' },
  config: { type: 'string', help: 'JSON file with any of the settings below (camelCase or snake_case keys)' },
  data: { type: 'string', help: 'training text: a file path or an http(s) URL' },
  model: { type: 'string', help: 'fine-tune a Hugging Face model folder (config.json, safetensors, tokenizer.json) instead of a fresh preset model' },
  tokenizer: { type: 'string', help: 'char or bpe', default: 'char' },
  'bpe-vocab': { type: 'number', help: 'vocabulary size when training a BPE tokenizer', default: 512 },
  'n-layer': { type: 'number', help: 'transformer blocks' },
  'n-head': { type: 'number', help: 'attention heads' },
  'n-embd': { type: 'number', help: 'embedding width' },
  'block-size': { type: 'number', help: 'context length' },
  dropout: { type: 'number', help: 'dropout probability' },
  bias: { type: 'boolean', help: 'biases in Linear and LayerNorm layers' },
  'batch-size': { type: 'number', help: 'sequences per micro-step, all ranks together (a step is batch-size x grad-accum)' },
  'grad-accum': { type: 'number', help: 'micro-steps per optimizer step' },
  'max-iters': { type: 'number', help: 'optimizer steps' },
  lr: { type: 'number', help: 'peak learning rate' },
  'min-lr': { type: 'number', help: 'final learning rate of the cosine decay' },
  'warmup-iters': { type: 'number', help: 'linear warmup steps' },
  'decay-iters': { type: 'number', help: 'step at which the cosine decay reaches min-lr (nanoGPT lr_decay_iters; default max-iters); keep it when extending a run with --resume' },
  'weight-decay': { type: 'number', help: 'AdamW weight decay' },
  'eval-interval': { type: 'number', help: 'steps between validation runs and checkpoints' },
  'eval-iters': { type: 'number', help: 'batches per validation run' },
  'log-interval': { type: 'number', help: 'steps between metric lines' },
  out: { type: 'string', help: 'output directory (metrics.jsonl, ckpt/)', default: 'out' },
  resume: { type: 'string', help: "checkpoint directory to resume from (e.g. out/ckpt); 'auto': OUT/ckpt if it holds one (the default when atscale launch restarts the job)" },
  'init-from': { type: 'string', help: 'scratch, or resume (from OUT/ckpt, as nanoGPT\'s init_from)', default: 'scratch' },
  compile: { type: 'boolean', help: 'nanoGPT\'s compile: always on, every step is one compiled ONNX graph', default: true },
  device: { type: 'string', help: 'cpu or webgpu', default: 'cpu' },
  threads: { type: 'number', help: 'ONNX Runtime intra-op threads (default: all cores)' },
  dtype: { type: 'string', help: 'float32 or float64: the dtype of parameters, activations, gradients, optimizer state, collectives and checkpoints. float64 is for exactness checks (a mesh layout then matches one process to ~1e-16 instead of float32 rounding); about 2x slower and 2x the memory. One process and the tp/pp/sp mesh with ZeRO-1; GPT only', default: 'float32' },
  seed: { type: 'number', help: 'random seed', default: 1337 },
  'peak-gflops': { type: 'number', help: 'peak GFLOP/s for MFU (default: --machine, else a GEMM probe at start-up; see MFU below)' },
  machine: { type: 'string', help: 'machine spec from atscale plan --calibrate for the MFU peak (default ./atscale-machine.json if its thread count matches)' },
  'max-memory-gb': { type: 'number', help: 'refuse to start when the estimated training memory per process is above this (default: the machine memory / local ranks)' },
  'on-nonfinite': { type: 'string', help: "a NaN/Inf loss or grad norm: 'stop' (before saving) or 'rollback' (reload the last checkpoint, skip that batch)", default: 'stop' },
  'async-checkpoint': { type: 'boolean', help: 'snapshot the state at the step boundary and write checkpoints in a background thread' },
  'checkpoint-interval': { type: 'string', help: "also save every N steps, or 'auto': the Young/Daly interval from the measured save stall and --mtbf-hours (default: at evaluations)" },
  'mtbf-hours': { type: 'number', help: 'mean time between failures of the whole job, for --checkpoint-interval auto' },
  'deepspeed-config': { type: 'string', help: 'DeepSpeed-style JSON (batch sizes, optimizer, scheduler, zero_optimization, pipeline, tensor_parallel, activation_checkpointing)' },
  'tensor-model-parallel-size': { type: 'number', help: 'tensor-parallel degree tp (world = dp x pp x tp, tp innermost)' },
  'pipeline-model-parallel-size': { type: 'number', help: 'pipeline stages pp; --grad-accum is the micro-batch count m (>= pp for 1F1B)' },
  'virtual-pipeline-model-parallel-size': { type: 'number', help: 'model chunks per pipeline rank v (interleaved 1F1B, bubble (pp-1)/(v m))' },
  'pipeline-schedule': { type: 'string', help: 'gpipe, 1f1b or interleaved (default 1f1b; interleaved when v > 1)' },
  'sequence-parallel': { type: 'boolean', help: 'split LayerNorm/dropout regions along the sequence over the tp ranks' },
  'recompute-granularity': { type: 'string', help: 'activation checkpointing per block: none, selective (recompute the attention core) or full (recompute the block); default full with pipelines, selective in one process (recomputed inside the fused step), none otherwise' },
  tensorboard: { type: 'boolean', help: 'write TensorBoard event files to OUT/tb (--tensorboard=false: off)', default: true },
  csv: { type: 'boolean', help: 'also write one CSV file per metric to OUT/csv' },
  dashboard: { type: 'boolean', help: 'serve the live dashboard of this run (stays up after training until Ctrl-C)' },
  'dashboard-port': { type: 'number', help: 'dashboard TCP port (0 picks a free one)', default: 6006 },
  'dashboard-host': { type: 'string', help: 'dashboard address; off loopback it needs the token printed with its URL', default: '127.0.0.1' },
  quiet: { type: 'boolean', help: 'no progress line' },
  profile: { type: 'boolean', help: "write ONNX Runtime's trace of the steps (Chrome trace) into --out and print a per-module table of the last step (use a small --max-iters)" },
  help: { type: 'boolean', help: 'show this help' },
};

/** The flags, for tests that go through every one. */
export { FLAGS as TRAIN_FLAGS };

const MODEL_KEYS: Record<string, string> = { nLayer: 'nLayer', nHead: 'nHead', nEmbd: 'nEmbd', blockSize: 'blockSize', dropout: 'dropout', bias: 'bias' };
const HYPER_KEYS: Record<string, keyof TrainHyper> = {
  batchSize: 'batchSize', gradAccum: 'gradAccum', maxIters: 'maxIters', lr: 'lr', minLr: 'minLr', warmupIters: 'warmupIters',
  weightDecay: 'weightDecay', evalInterval: 'evalInterval', evalIters: 'evalIters', logInterval: 'logInterval', decayIters: 'decayIters',
};

const camelize = (k: string) => k.replace(/[_-]([a-z])/g, (_, c: string) => c.toUpperCase());

export interface ResolvedTrainArgs {
  model: Architecture;
  hyper: TrainHyper;
  flags: Record<string, unknown>;
  /** Settings the user gave (flag or config file), camelCase: on resume only these override the checkpoint. */
  explicit: Set<string>;
}

/** Preset, then config file, then flags given on the command line. Unknown config keys are
 * errors naming the key. */
export function resolveTrainArgs(argv: string[]): ResolvedTrainArgs {
  const { flags: withDefaults, positional } = parseArgs(argv, FLAGS, 'train');
  if (positional.length) throw new UsageError(`atscale train: unexpected argument '${positional[0]}'; settings are flags (atscale train --help)`);
  const noDefaults = Object.fromEntries(Object.entries(FLAGS).map(([k, spec]) => [k, { ...spec, default: undefined }]));
  const given = Object.fromEntries(Object.entries(parseArgs(argv, noDefaults, 'train').flags).filter(([, v]) => v !== undefined));
  const fromFile: Record<string, unknown> = {};
  const fileNames: Record<string, string> = {};
  if (given.config) {
    let json: Record<string, unknown>;
    try {
      json = JSON.parse(readFileSync(String(given.config), 'utf8')) as Record<string, unknown>;
    } catch (e) {
      throw new UsageError(`atscale train: cannot read --config ${String(given.config)}: ${(e as Error).message}`);
    }
    if (typeof json !== 'object' || json === null || Array.isArray(json)) throw new UsageError(`atscale train: --config ${String(given.config)} must hold a JSON object of settings, got ${JSON.stringify(json)?.slice(0, 40)}`);
    const known = Object.keys(FLAGS).filter((f) => !['config', 'help'].includes(f));
    for (const [k, v] of Object.entries(json)) {
      const key = camelize(k);
      if (!known.map(camelize).includes(key)) throw new UsageError(`atscale train: unknown key '${k}' in ${String(given.config)}; known keys are ${known.join(', ')}`);
      fromFile[key] = v;
      fileNames[key] = k;
    }
  }
  // Every value is checked for type and range where the user wrote it, before anything runs.
  try {
    checkSettings(fromFile, (k) => `'${fileNames[k]}' in ${String(given.config)}`);
    checkSettings(given, (k) => `--${k.replace(/[A-Z]/g, (c) => '-' + c.toLowerCase())}`);
  } catch (e) {
    if (e instanceof ConfigValueError) throw new UsageError(`atscale train: ${e.message}`);
    throw e;
  }
  const settings: Record<string, unknown> = { ...withDefaults, ...fromFile, ...given };
  const p = preset(String(settings.preset));
  const model: Architecture = { ...p.model };
  const hyper: TrainHyper = { ...p.train };
  for (const [k, v] of Object.entries(settings)) {
    if (k in MODEL_KEYS) model[MODEL_KEYS[k]!] = v;
    if (k in HYPER_KEYS) (hyper as unknown as Record<string, unknown>)[HYPER_KEYS[k]!] = v;
  }
  hyper.maxIters = capIters(hyper.maxIters);
  const explicit = new Set([...Object.keys(fromFile), ...Object.keys(given)]);
  if (explicit.has('maxIters') && !explicit.has('decayIters')) hyper.decayIters = hyper.maxIters;
  if (explicit.has('lr') && !explicit.has('minLr')) hyper.minLr = hyper.lr / 10;
  try {
    checkHyperRelations(hyper, 'atscale train');
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
  return { model, hyper, flags: settings, explicit };
}

/** --resume auto, or a restart by `atscale launch --max-restarts` (ATSCALE_RESTART_COUNT > 0)
 * without --resume: the newest complete checkpoint in OUT/ckpt if there is one, else a fresh start. */
function resumeSource(resume: string | undefined, out: string): string | undefined {
  const restarted = Number(process.env.ATSCALE_RESTART_COUNT ?? '0') > 0;
  if (resume !== 'auto' && !(resume === undefined && restarted)) return resume;
  const dir = join(out, 'ckpt');
  if (!existsSync(committedDir(dir))) return undefined;
  if (restarted) console.error(`atscale train: restart ${process.env.ATSCALE_RESTART_COUNT}: resuming from ${dir}`);
  return dir;
}

export async function run(argv: string[]): Promise<number> {
  if (argv.includes('--help')) {
    const { MFU_DEFINITION } = await import('../engine/mfu.js');
    const wrapped = MFU_DEFINITION.replace(/(.{1,96})(\s+|$)/g, '$1\n').trimEnd();
    console.log(`${formatHelp('train', summary, FLAGS)}\n\n${wrapped}`);
    return 0;
  }
  const { model, hyper, flags, explicit } = resolveTrainArgs(argv);
  flags.resume = resumeSource(resumeDir(flags), String(flags.out));
  const resume = flags.resume as string | undefined;
  if (!flags.data) throw new UsageError('atscale train: no training data; pass --data PATH or --data URL (for example --data ../shared/data/tinyshakespeare.txt)');
  const { checkDevice } = await import('../runtime/session.js');
  const device = checkDevice(flags.device);
  const threads = flags.threads as number | undefined;
  // Ranks that share this host's every core do their garbage collection on their own thread.
  const gc = await import('../runtime/gc-threads.js');
  const { localRanks } = await import('../launch/worker-env.js');
  if (gc.chooseGcThreads(localRanks(), threads ?? availableParallelism()) === 'main') gc.collectOnMainThread();
  const { checkTrainDType } = await import('../ir/dtype.js');
  const dtype = checkTrainDType(flags.dtype);
  if (dtype === 'float64' && device === 'webgpu') {
    const { refuseFloat64 } = await import('../engine/train-dtype.js');
    refuseFloat64(dtype, '--device webgpu (WebGPU has no float64)');
  }
  const { runTraining } = await import('../engine/train-loop.js');
  const dist = await import('./train-distributed.js');
  const parallel = {
    tensorModelParallelSize: flags.tensorModelParallelSize as number | undefined,
    pipelineModelParallelSize: flags.pipelineModelParallelSize as number | undefined,
    virtualPipelineModelParallelSize: flags.virtualPipelineModelParallelSize as number | undefined,
    sequenceParallel: flags.sequenceParallel as boolean | undefined,
    recomputeGranularity: flags.recomputeGranularity as string | undefined,
    pipelineSchedule: flags.pipelineSchedule as string | undefined,
  };
  // A resumed run takes the checkpoint's settings (batch size, accumulation, ...) unless given,
  // before the layout is checked and the per-rank batch derived: the new world may differ.
  const fromCkpt = resume ? (await import('../engine/train-loop.js')).checkpointSettings(resume) : undefined;
  const runHyper = { ...hyper };
  if (fromCkpt) for (const k of Object.keys(fromCkpt.hyper) as (keyof typeof hyper)[]) if (!explicit.has(k)) (runHyper as Record<string, unknown>)[k] = fromCkpt.hyper[k];
  let init: Parameters<typeof runTraining>[0]['init'];
  let tokenizerKind = flags.tokenizer as 'char' | 'bpe';
  // The layout is checked against the model that trains: the folder's, when one is given.
  let dims = fromCkpt ? { nLayer: fromCkpt.nLayer, nHead: fromCkpt.nHead } : { nLayer: Number(model.nLayer), nHead: Number(model.nHead) };
  if (flags.model) {
    const { loadModelDir } = await import('../models/hf/folder.js');
    const hf = loadModelDir(String(flags.model), { blockSize: explicit.has('blockSize') ? (flags.blockSize as number) : undefined });
    if (!hf.tokenizer) throw new UsageError(`atscale train: ${String(flags.model)} has no tokenizer.json; the data cannot be encoded for this model`);
    init = { architecture: hf.model.architecture(), params: hf.params, tokenizer: hf.tokenizer };
    tokenizerKind = hf.tokenizer.kind;
    dims = { nLayer: hf.model.dims.nLayer, nHead: hf.model.dims.nHead };
  }
  const setup = await dist.distributedSetup(flags.deepspeedConfig as string | undefined, runHyper, explicit, { device, threads, parallel, model: dims, maxMemoryGb: flags.maxMemoryGb as number | undefined, dtype });
  const out = String(flags.out);
  const monitor = { ...setup.monitor };
  if (explicit.has('tensorboard') || !monitor.tensorboard) monitor.tensorboard = { ...monitor.tensorboard, enabled: flags.tensorboard !== false };
  if (explicit.has('csv')) monitor.csv = { ...monitor.csv, enabled: flags.csv === true };
  const dashboard = flags.dashboard === true && setup.rank === 0 ? await startRunDashboard(out, flags) : undefined;
  const t0 = performance.now();
  try {
    const r = await runTraining({
      model,
      init,
      hyper: setup.hyper,
      data: String(flags.data),
      tokenizer: tokenizerKind,
      bpeVocab: flags.bpeVocab as number,
      out,
      monitor,
      resume,
      seed: flags.seed as number,
      device,
      threads,
      dtype,
      peakGflops: flags.peakGflops as number | undefined,
      machine: flags.machine as string | undefined,
      rank: setup.rank,
      world: setup.world,
      dataParallel: setup.dataParallel,
      makeTrainer: setup.makeTrainer,
      recompute: setup.recompute,
      explicit,
      quiet: flags.quiet === true,
      maxMemoryGb: flags.maxMemoryGb as number | undefined,
      onNonFinite: flags.onNonfinite as 'stop' | 'rollback',
      zeroStage: setup.zeroStage,
      asyncCheckpoint: flags.asyncCheckpoint === true,
      checkpointInterval: flags.checkpointInterval === undefined || flags.checkpointInterval === 'auto' ? (flags.checkpointInterval as 'auto' | undefined) : Number(flags.checkpointInterval),
      mtbfHours: flags.mtbfHours as number | undefined,
      profile: flags.profile === true,
    });
    if (setup.rank === 0) {
      console.log(`trained ${r.losses.length} steps in ${((performance.now() - t0) / 1000).toFixed(1)} s; final train loss ${r.losses.at(-1)?.loss.toFixed(4) ?? 'n/a'}, val loss ${r.valLoss.toFixed(4)}; checkpoint ${r.checkpoint}`);
    }
  } catch (e) {
    await dashboard?.close();
    throw e;
  } finally {
    await setup.close();
  }
  if (dashboard) {
    console.log(`training finished; the dashboard stays at ${dashboard.url} until Ctrl-C`);
    await dashboard.linger();
  }
  return 0;
}

/** --resume DIR, or nanoGPT's --init-from resume (OUT/ckpt); --compile cannot be turned off. */
function resumeDir(flags: Record<string, unknown>): string | undefined {
  if (flags.compile === false) throw new UsageError('atscale train: --compile false is not available: every training step is compiled to one ONNX graph (there is no eager mode); drop the flag');
  const from = String(flags.initFrom);
  if (from === 'resume') {
    if (flags.resume !== undefined) throw new UsageError('atscale train: give either --init-from resume (which resumes from OUT/ckpt) or --resume DIR, not both');
    return join(String(flags.out), 'ckpt');
  }
  if (from !== 'scratch') {
    const hint = from.startsWith('gpt2') ? '; loading published GPT-2 weights is not implemented here' : '';
    throw new UsageError(`atscale train: --init-from must be scratch or resume, got '${from}'${hint}`);
  }
  return flags.resume as string | undefined;
}

/** The dashboard of this run, on its own thread, started before training so the page fills in
 * live. During training Ctrl-C stops everything as usual; `linger` keeps the page up afterwards
 * until SIGINT/SIGTERM. */
async function startRunDashboard(out: string, flags: Record<string, unknown>): Promise<{ url: string; close(): Promise<void>; linger(): Promise<void> }> {
  const { mkdirSync } = await import('node:fs');
  const { startDashboardThread } = await import('../dashboard/index.js');
  mkdirSync(out, { recursive: true });
  const d = await startDashboardThread({ runs: [out], host: String(flags.dashboardHost), port: flags.dashboardPort as number });
  console.log(`listening on ${d.url}`);
  const { closeOnSignal } = await import('./dashboard.js');
  const linger = () => closeOnSignal(() => d.close());
  return { url: d.url, close: () => d.close(), linger };
}
