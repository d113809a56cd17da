// Decides, for `atscale train`, whether this process is one rank of a data-parallel job (it
// was started by `atscale launch`, or --deepspeed-config was given) and builds its trainer:
// the DeepSpeed-style config sets batch sizes, optimizer, schedule, clipping and ZeRO stage.
import { readFileSync } from 'node:fs';
import type { TrainHyper } from '../models/presets.js';
import type { LanguageModel } from '../models/model.js';
import type { Trainer } from '../engine/trainer.js';
import type { MonitorOptions } from '../monitor/index.js';

export interface DistSetup {
  rank: number;
  world: number;
  hyper: TrainHyper;
  makeTrainer?: (model: LanguageModel, microBatch: number, seed: number, initial?: Float32Array) => Promise<Trainer>;
  /** The config's tensorboard / csv_monitor sections, when it has them. */
  monitor?: MonitorOptions;
  close(): Promise<void>;
}

/** A stage-0 config equivalent to the flags, for `atscale launch ... train` without a config file. */
function configFromFlags(h: TrainHyper, world: number): Record<string, unknown> {
  if (h.batchSize % world !== 0) throw new Error(`--batch-size ${h.batchSize} is not divisible by WORLD_SIZE ${world}`);
  return {
    train_micro_batch_size_per_gpu: h.batchSize / world,
    gradient_accumulation_steps: h.gradAccum,
    optimizer: { type: 'AdamW', params: { lr: h.lr, betas: [h.beta1, h.beta2], eps: 1e-8, weight_decay: h.weightDecay } },
    gradient_clipping: h.gradClip,
    zero_optimization: { stage: 0 },
  };
}

/** Settings a DeepSpeed config owns; giving them as flags too is ambiguous, so it is refused. */
const OWNED_BY_CONFIG: Record<string, string> = { batchSize: '--batch-size', gradAccum: '--grad-accum', lr: '--lr', minLr: '--min-lr', warmupIters: '--warmup-iters', weightDecay: '--weight-decay' };

export async function distributedSetup(dsConfigPath: string | undefined, hyper: TrainHyper, explicit: ReadonlySet<string>, opts: { device: 'cpu' | 'webgpu'; threads?: number }): Promise<DistSetup> {
  const worldEnv = process.env.WORLD_SIZE ?? '1';
  const world = Number(worldEnv);
  if (!Number.isInteger(world) || world < 1) throw new Error(`WORLD_SIZE='${worldEnv}' is not a positive integer (atscale launch sets it)`);
  if (!dsConfigPath && world === 1) return { rank: 0, world: 1, hyper, close: async () => {} };
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
  } else raw = configFromFlags(hyper, world);
  const { parseDeepSpeedConfig } = await import('../engine/ds-config.js');
  const cfg = parseDeepSpeedConfig(raw, world, opts.device);
  const { initProcessGroup } = await import('../dist/index.js');
  const { createZeroTrainer } = await import('../engine/zero/index.js');
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
    batchSize: cfg.microBatchPerGpu * world,
    gradAccum: cfg.gradAccum,
    ...(hasScheduler ? { lr: cfg.schedule.lr, minLr: cfg.schedule.minLr, warmupIters: cfg.schedule.warmupIters, decayIters: cfg.schedule.decayIters } : { lr: cfg.optimizer.lr }),
    logInterval: dsConfigPath && !explicit.has('logInterval') ? cfg.stepsPerPrint : hyper.logInterval,
    beta1: cfg.optimizer.beta1,
    beta2: cfg.optimizer.beta2,
    weightDecay: cfg.optimizer.weightDecay,
    gradClip: cfg.gradClip,
  };
  return {
    rank: pg.rank,
    world,
    hyper: h,
    monitor: cfg.monitor,
    makeTrainer: (model, micro, seed, initial) => createZeroTrainer(model, cfg, pg, { seed, initialParams: initial, threads: opts.threads, device: opts.device, shape: { batch: micro, seq: model.dims.blockSize } }),
    close: () => pg.destroy(),
  };
}
