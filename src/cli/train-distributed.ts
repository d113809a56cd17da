// Decides, for `atscale train`, whether this process is one rank of a distributed job (it
// was started by `atscale launch`, or --deepspeed-config or mesh flags were given) and how its
// one trainer (engine/mesh-trainer.ts) is built: on the mesh of one, or on a mesh over a
// process group. The DeepSpeed-style config sets batch sizes, optimizer, schedule, clipping
// and ZeRO stage; the trainer picks its step from the layout.
import { refuseFloat64 } from '../engine/train-dtype.js';
import type { TrainDType } from '../ir/dtype.js';
import { readFileSync } from 'node:fs';
import type { TrainHyper } from '../models/presets.js';
import type { LanguageModel } from '../models/model.js';
import type { Trainer } from '../engine/trainer.js';
import type { ParallelFlags } from '../engine/mesh/config.js';
import type { MonitorOptions } from '../monitor/index.js';

export interface DistSetup {
  rank: number;
  world: number;
  /** With pipeline/tensor parallelism: this rank's data-parallel replica and their count. */
  dataParallel?: { rank: number; size: number };
  hyper: TrainHyper;
  /** ZeRO stage of the trainer (for the memory estimate); absent for one local process. */
  zeroStage?: number;
  makeTrainer?: (model: LanguageModel, microBatch: number, seed: number, initial?: Float32Array) => Promise<Trainer>;
  /** The config's tensorboard / csv_monitor sections, when it has them. */
  monitor?: MonitorOptions;
  /** One local process: --recompute-granularity for the fused step (none or selective); absent: its default. */
  recompute?: 'none' | 'selective';
  close(): Promise<void>;
}

/** A stage-0 config equivalent to the flags, for `atscale launch ... train` without a config file. */
function configFromFlags(h: TrainHyper, dp: number): Record<string, unknown> {
  if (h.batchSize % dp !== 0) throw new Error(`--batch-size ${h.batchSize} is not divisible by the ${dp} data-parallel ranks`);
  return {
    train_micro_batch_size_per_gpu: h.batchSize / dp,
    gradient_accumulation_steps: h.gradAccum,
    optimizer: { type: 'AdamW', params: { lr: h.lr, betas: [h.beta1, h.beta2], eps: 1e-8, weight_decay: h.weightDecay } },
    gradient_clipping: h.gradClip,
    zero_optimization: { stage: 0 },
  };
}

/** Settings a DeepSpeed config owns; giving them as flags too is ambiguous, so it is refused. */
const OWNED_BY_CONFIG: Record<string, string> = { batchSize: '--batch-size', gradAccum: '--grad-accum', lr: '--lr', minLr: '--min-lr', warmupIters: '--warmup-iters', weightDecay: '--weight-decay' };

export interface SetupOptions {
  device: 'cpu' | 'webgpu';
  threads?: number;
  /** Megatron-style flags; with the config's sections they give the mesh. */
  parallel?: ParallelFlags;
  /** The model's depth and heads (the layout is checked against them before any process starts). */
  model?: { nLayer?: number; nHead?: number };
  /** Per-rank cap on model state (GiB); a layout above it fails before allocating. */
  maxMemoryGb?: number;
  /** Training dtype (--dtype); default float32. */
  dtype?: TrainDType;
}

export async function distributedSetup(dsConfigPath: string | undefined, hyper: TrainHyper, explicit: ReadonlySet<string>, opts: SetupOptions): Promise<DistSetup> {
  const worldEnv = process.env.WORLD_SIZE ?? '1';
  const world = Number(worldEnv);
  if (!Number.isInteger(world) || world < 1) throw new Error(`WORLD_SIZE='${worldEnv}' is not a positive integer (atscale launch sets it)`);
  const flags = opts.parallel ?? {};
  const meshFlags = Object.values(flags).some((v) => v !== undefined);
  if (!dsConfigPath && world === 1 && !meshFlags) return { rank: 0, world: 1, hyper, makeTrainer: cappedSingleTrainer(hyper, opts), close: async () => {} };
  let raw: unknown;
  if (dsConfigPath) {
    const clash = Object.keys(OWNED_BY_CONFIG).filter((k) => explicit.has(k));
    if (clash.length) {
      throw new Error(`${clash.map((k) => OWNED_BY_CONFIG[k]).join(', ')} conflict with --deepspeed-config ${dsConfigPath}, which sets batch sizes, optimizer and schedule; set them in the config file instead`);
    }
    try {
      raw = JSON.parse(readFileSync(dsConfigPath, 'utf8'));
    } catch (e) {
      throw new Error(`cannot read --deepspeed-config ${dsConfigPath}: ${(e as Error).message}`);
    }
  }
  const { parseDeepSpeedConfig } = await import('../engine/ds-config.js');
  const { parallelFromConfig, resolveLayout } = await import('../engine/mesh/config.js');
  // The layout is checked here, before any process group or data exists.
  const fromConfig = parallelFromConfig(raw);
  const resolved = resolveLayout(flags, fromConfig, {
    world,
    nLayer: opts.model?.nLayer ?? 1,
    nHead: opts.model?.nHead ?? 1,
    microBatches: (dp) => (raw === undefined ? hyper.gradAccum : parseDeepSpeedConfig(raw, dp).gradAccum),
  });
  const { dp, pp, tp } = resolved.layout.mesh;
  const { stepKind, deepSpeedOptions } = await import('../engine/mesh-trainer.js');
  // One process without a config whose layout needs no process group is the mesh of one
  // (the fused step, which recomputes selectively inside its graph); full recomputation needs
  // the mesh over a process group.
  const recompute = resolved.layout.recompute;
  if (!dsConfigPath && world === 1 && stepKind(resolved.layout.mesh, true, 0, recompute) === 'fused') {
    const inGraph = recompute === 'selective' ? 'selective' : 'none';
    return { rank: 0, world: 1, hyper, recompute: inGraph, makeTrainer: cappedSingleTrainer(hyper, opts, inGraph), close: async () => {} };
  }
  raw ??= configFromFlags(hyper, dp);
  const cfg = parseDeepSpeedConfig(raw, dp, opts.device);
  if (pp === 1 && tp === 1 && cfg.zero.stage >= 2 && (flags.recomputeGranularity ?? fromConfig.recomputeGranularity) !== undefined && recompute !== 'full') {
    throw new Error(`--recompute-granularity ${recompute} with ZeRO stage ${cfg.zero.stage}: stages 2 and 3 run one block at a time and recompute each block in backward (full); use --recompute-granularity full, or ZeRO stage 0 or 1`);
  }
  const { initProcessGroup } = await import('../dist/index.js');
  const { Mesh } = await import('../engine/mesh/mesh.js');
  const { createTrainer } = await import('../engine/mesh-trainer.js');
  // One process with a DeepSpeed config: a world of one on loopback, with its own secret.
  const single = async () => {
    const { findFreePort } = await import('../launch/free-port.js');
    const { randomBytes } = await import('node:crypto');
    return { rank: 0, worldSize: 1, masterAddr: '127.0.0.1', masterPort: await findFreePort('127.0.0.1'), secret: randomBytes(32).toString('hex') };
  };
  const pg = await initProcessGroup(world === 1 && !process.env.MASTER_ADDR ? await single() : undefined);
  // The schedule comes from the config's scheduler when it has one; otherwise (and always
  // when the config was made from flags) it stays the preset's/flags' warmup + cosine.
  const hasScheduler = !!dsConfigPath && typeof raw === 'object' && raw !== null && 'scheduler' in raw;
  const h: TrainHyper = {
    ...hyper,
    batchSize: cfg.microBatchPerGpu * dp,
    gradAccum: cfg.gradAccum,
    ...(hasScheduler ? { lr: cfg.schedule.lr, minLr: cfg.schedule.minLr, warmupIters: cfg.schedule.warmupIters, decayIters: cfg.schedule.decayIters } : { lr: cfg.optimizer.lr }),
    logInterval: dsConfigPath && !explicit.has('logInterval') ? cfg.stepsPerPrint : hyper.logInterval,
    beta1: cfg.optimizer.beta1,
    beta2: cfg.optimizer.beta2,
    weightDecay: cfg.optimizer.weightDecay,
    gradClip: cfg.gradClip,
  };
  const mesh = Mesh.create(pg, resolved.layout.mesh);
  const kind = stepKind(mesh.shape, false, cfg.zero.stage, recompute);
  if (kind !== 'pipeline') refuseFloat64(opts.dtype, `ZeRO stage ${cfg.zero.stage} over data parallelism alone (dp ${dp}, pp 1, tp 1, recompute ${recompute}); float64 runs ZeRO-1 on the mesh step: add --recompute-granularity selective, or pp/tp > 1`);
  const options = (model: LanguageModel, micro: number, seed: number, initial?: Float32Array) => ({
    ...deepSpeedOptions(cfg), seed, threads: opts.threads, device: opts.device, shape: { batch: micro, seq: model.dims.blockSize }, layout: resolved.layout, stageLayers: resolved.stageLayers, initialParams: initial, dtype: opts.dtype,
  });
  if (kind !== 'pipeline') {
    // ZeRO over the dp axis, which is the whole world: the loop's whole-model memory estimate applies.
    return { rank: pg.rank, world, hyper: h, zeroStage: cfg.zero.stage, monitor: cfg.monitor, makeTrainer: (model, micro, seed, initial) => createTrainer(model, mesh, options(model, micro, seed, initial)), close: () => pg.destroy() };
  }
  if (pg.rank === 0) console.log(`mesh: dp ${dp} x pp ${pp} x tp ${tp}, ${resolved.layout.schedule} schedule, v ${resolved.layout.virtual}, layers per stage [${resolved.stageLayers.join(', ')}], ZeRO stage ${cfg.zero.stage}${resolved.layout.sequenceParallel ? ', sequence parallel' : ''}`);
  return {
    rank: pg.rank,
    world,
    dataParallel: { rank: mesh.coords.dp, size: dp },
    hyper: h,
    monitor: cfg.monitor,
    makeTrainer: async (model, micro, seed, initial) => {
      const { rankStateBytes, checkMemoryCap } = await import('../engine/mesh/memory.js');
      const d = model.dims;
      const spec = { name: model.family, layers: d.nLayer, hidden: d.nEmbd, heads: d.nHead, seqLen: d.blockSize, vocab: d.vocabSize, ffn: 4 * d.nEmbd };
      const bias = model.architecture().bias !== false;
      const itemBytes = opts.dtype === 'float64' ? 8 : 4;
      checkMemoryCap(spec, resolved.layout.mesh, resolved.layout.virtual, resolved.stageLayers, cfg.zero.stage, opts.maxMemoryGb, bias, itemBytes);
      if (tp > 1 && d.vocabSize % tp !== 0 && pg.rank === 0) {
        const padded = Math.ceil(d.vocabSize / tp) * tp;
        console.log(`tensor parallelism: vocabulary ${d.vocabSize} does not divide by tp ${tp}; padded to ${padded} (${padded - d.vocabSize} zero row(s) on the last tp rank, never predicted)`);
      }
      const t = await createTrainer(model, mesh, options(model, micro, seed, initial));
      const formula = rankStateBytes(spec, resolved.layout.mesh, resolved.layout.virtual, resolved.stageLayers, mesh.coords.pp, cfg.zero.stage, bias, itemBytes);
      console.log(`memory: ${mesh.describe()}: held ${JSON.stringify(t.memoryReport())}, formula ${JSON.stringify(formula)}`);
      return t;
    },
    close: () => pg.destroy(),
  };
}

/** With --max-memory-gb, one process checks its model state against the cap before building
 * the trainer on the mesh of one; without it the training loop builds that trainer itself. */
function cappedSingleTrainer(h: TrainHyper, opts: SetupOptions, recompute?: 'none' | 'selective'): DistSetup['makeTrainer'] {
  const cap = opts.maxMemoryGb;
  if (cap === undefined) return undefined;
  return async (model, micro, seed, initial) => {
    const { checkMemoryCap } = await import('../engine/mesh/memory.js');
    const { Mesh } = await import('../engine/mesh/mesh.js');
    const { MeshTrainer, singleLayout } = await import('../engine/mesh-trainer.js');
    const d = model.dims;
    const spec = { name: model.family, layers: d.nLayer, hidden: d.nEmbd, heads: d.nHead, seqLen: d.blockSize, vocab: d.vocabSize, ffn: 4 * d.nEmbd };
    checkMemoryCap(spec, { dp: 1, pp: 1, tp: 1 }, 1, [d.nLayer], 0, cap, model.architecture().bias !== false, opts.dtype === 'float64' ? 8 : 4);
    // Compiled by the loop's prepare(), after its MFU probe (as without the cap).
    return new MeshTrainer(model, Mesh.single(), { shape: { batch: micro, seq: d.blockSize }, optimizer: { lr: h.lr, beta1: h.beta1, beta2: h.beta2, eps: 1e-8, weightDecay: h.weightDecay }, gradClip: h.gradClip, gradAccum: h.gradAccum, seed, initialParams: initial, device: opts.device, threads: opts.threads, layout: recompute && singleLayout(recompute), dtype: opts.dtype });
  };
}
