// Decides, for `atscale train`, whether this process is one rank of a data-parallel job (it
// was started by `atscale launch`, or --deepspeed-config was given) and builds its trainer.
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

export async function distributedSetup(dsConfigPath: string | undefined, hyper: TrainHyper, _opts: { device: 'cpu' | 'webgpu'; threads?: number; seed: number }): Promise<DistSetup> {
  const world = Number(process.env.WORLD_SIZE ?? '1');
  if (!dsConfigPath && world === 1) return { rank: 0, world: 1, hyper, close: async () => {} };
  throw new Error('distributed training (--deepspeed-config or WORLD_SIZE > 1) is not available in this build yet');
}
