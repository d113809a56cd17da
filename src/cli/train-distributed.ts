// Decides, for `atscale train`, whether this process is one rank of a data-parallel job (it
// was started by `atscale launch`, or --deepspeed-config was given) and builds its trainer:
// the DeepSpeed-style config sets batch sizes, optimizer, schedule, clipping and ZeRO stage.
import { readFileSync } from 'node:fs';
import type { TrainHyper } from '../models/presets.js';
import type { GPT } from '../models/gpt.js';
import type { Trainer } from '../engine/trainer.js';

export interface DistSetup {
  rank: number;
  world: number;
  hyper: TrainHyper;
  makeTrainer?: (model: GPT, microBatch: number) => Promise<Trainer>;
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

export async function distributedSetup(dsConfigPath: string | undefined, hyper: TrainHyper, opts: { device: 'cpu' | 'webgpu'; threads?: number; seed: number }): Promise<DistSetup> {
  const world = Number(process.env.WORLD_SIZE ?? '1');
  if (!dsConfigPath && world === 1) return { rank: 0, world: 1, hyper, close: async () => {} };
  let raw: unknown;
  if (dsConfigPath) {
    try {
      raw = JSON.parse(readFileSync(dsConfigPath, 'utf8'));
    } catch (e) {
      throw new Error(`cannot read --deepspeed-config ${dsConfigPath}: ${(e as Error).message}`);
    }
  } else raw = configFromFlags(hyper, world);
  const { parseDeepSpeedConfig } = await import('../engine/ds-config.js');
  const cfg = parseDeepSpeedConfig(raw, world);
  const { initProcessGroup } = await import('../dist/index.js');
  const { createZeroTrainer } = await import('../engine/zero/index.js');
  // One process with a DeepSpeed config: a world of one on loopback, with its own secret.
  const single = async () => {
    const { findFreePort } = await import('../launch/free-port.js');
    const { randomBytes } = await import('node:crypto');
    return { rank: 0, worldSize: 1, masterAddr: '127.0.0.1', masterPort: await findFreePort('127.0.0.1'), secret: randomBytes(32).toString('hex') };
  };
  const pg = await initProcessGroup(world === 1 && !process.env.MASTER_ADDR ? await single() : undefined);
  const h: TrainHyper = {
    ...hyper,
    batchSize: cfg.microBatchPerGpu * world,
    gradAccum: cfg.gradAccum,
    lr: cfg.schedule.lr,
    minLr: cfg.schedule.minLr,
    warmupIters: cfg.schedule.warmupIters,
    decayIters: cfg.schedule.decayIters,
    beta1: cfg.optimizer.beta1,
    beta2: cfg.optimizer.beta2,
    weightDecay: cfg.optimizer.weightDecay,
    gradClip: cfg.gradClip,
  };
  return {
    rank: pg.rank,
    world,
    hyper: h,
    makeTrainer: (model, micro) => createZeroTrainer(model, cfg, pg, { seed: opts.seed, threads: opts.threads, device: opts.device, shape: { batch: micro, seq: model.config.blockSize } }),
    close: () => pg.destroy(),
  };
}
