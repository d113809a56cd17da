// How the one trainer (../mesh-trainer.ts) computes a step for one layout. A strategy holds
// the model and optimizer state the way its layout needs it (one fused graph, ZeRO shards over
// dp, or pipeline stages with tensor-parallel shards) and does the trainer's work; it is not a
// trainer of its own: only MeshTrainer is built by callers, and it picks the strategy.
import type { Trainer } from '../trainer.js';

/** Which step the trainer runs (mesh-trainer.ts's stepKind picks it from the layout). */
export type StepKind = 'fused' | 'zero-flat' | 'zero-segmented' | 'pipeline';

/** Bytes of persistent state this rank holds; ZeRO strategies add their transient buffers. */
export interface HeldBytes {
  paramBytes: number;
  gradBytes: number;
  optimBytes: number;
}

export interface StepStrategy extends Pick<Trainer, 'layout' | 'prepare' | 'step' | 'evalLoss' | 'fullParams' | 'snapshot' | 'universalSave' | 'save' | 'load'> {
  readonly kind: StepKind;
  memoryReport(): HeldBytes;
}
