// ZeRO data-parallel training (DeepSpeed's stages 0-3) is an option of the one trainer
// (../mesh-trainer.ts: zeroStage, over the dp axis); its steps live in ../step/zero-*.ts. Every
// rank builds the trainer with the same model, options and seed, and then feeds step() its OWN
// micro-batches of each global batch (see ShardedBatchSampler: rank r takes rows
// [r*B, (r+1)*B) of each draw of B*world rows). Here: the memory formulas the steps are
// measured against.
export type { MemoryReport, ZeroFormula } from './memory.js';
export { zeroFormula } from './memory.js';
