// ZeRO data-parallel training (DeepSpeed's stages 0-3) on the dist layer. One factory picks the
// trainer for the config's stage; every rank calls it with the same model config, config and
// seed, and then feeds step() its OWN micro-batches of each global batch (see
// ShardedBatchSampler: rank r takes rows [r*B, (r+1)*B) of each draw of B*world rows).
import type { LanguageModel } from '../../models/model.js';
import type { ProcessGroup } from '../../dist/index.js';
import type { DeepSpeedConfig } from '../ds-config.js';
import type { Trainer } from '../trainer.js';
import type { ZeroOptions } from '../step/zero-base.js';
import { FlatZeroTrainer } from '../step/zero-flat.js';
import { SegmentedZeroTrainer } from '../step/zero-segmented.js';
import type { MemoryReport } from './memory.js';

export type { MemoryReport, ZeroFormula } from './memory.js';
export { zeroFormula } from './memory.js';
export type { ZeroOptions } from '../step/zero-base.js';
export { FlatZeroTrainer, SegmentedZeroTrainer };

export type ZeroTrainer = Trainer & { readonly stage: number; memoryReport(): MemoryReport };

/** Builds (and compiles, via prepare()) the trainer for cfg.zero.stage on this rank. */
export async function createZeroTrainer(model: LanguageModel, cfg: DeepSpeedConfig, pg: ProcessGroup, opts: ZeroOptions): Promise<ZeroTrainer> {
  const t = cfg.zero.stage <= 1 ? new FlatZeroTrainer(model, cfg, pg, opts) : new SegmentedZeroTrainer(model, cfg, pg, opts);
  await t.prepare();
  return t;
}
