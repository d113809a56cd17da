// What the training loop needs from a trainer. There is one trainer, MeshTrainer
// (mesh-trainer.ts): one process is the mesh of one; ZeRO, pipeline and tensor parallelism
// are its options. The loop owns data, schedule, metrics and when to save; the trainer owns
// the model state and how a step is computed.
import type { FlatLayout } from '../nn/flat.js';
import type { ProcessGroup } from '../dist/index.js';
import type { UniversalSave } from './universal/state.js';

/** One micro-batch of token ids (rows x context, row-major) and their next-token targets. */
export interface MicroBatch {
  x: Int32Array;
  y: Int32Array;
}

export interface StepResult {
  /** Mean loss over the global batch (all micro-batches, all ranks). */
  loss: number;
  /** Global gradient norm before clipping. */
  gradNorm: number;
  /** Milliseconds this rank spent computing its gradients before the step's first wait on
   * other ranks (data-parallel trainers): the part of the step a straggler makes long. */
  computeMs?: number;
}

export interface Trainer {
  readonly layout: FlatLayout;
  /** Compiles the step graphs; the loop calls it before the first step so compile time is not counted as step time. */
  prepare(): Promise<void>;
  /**
   * One optimizer step. `micro` are THIS process's micro-batches (gradient_accumulation_steps
   * of them); `iter` is the 0-based step index (drives AdamW bias correction and dropout keys).
   */
  step(micro: MicroBatch[], lr: number, iter: number): Promise<StepResult>;
  /** Loss on a batch with the current parameters, no dropout. */
  evalLoss(batch: MicroBatch): Promise<number>;
  /** The full flat parameters (gathered if sharded), e.g. for sampling and export. */
  fullParams(): Promise<Float32Array>;
  /**
   * Copies model + optimizer state into host buffers of its own (a snapshot at a step boundary:
   * fresh ones, or from `alloc`, e.g. ones a finished background write gave back) for a
   * background writer; trainers without it or universalSave are saved synchronously.
   */
  snapshot?(meta: Record<string, unknown>, files: Record<string, string>, alloc?: (bytes: number) => ArrayBuffer): import('../checkpoint/index.js').CheckpointContents;
  /**
   * The same for trainers spread over ranks (collective: every rank calls it at the same step
   * boundary): what this rank writes of a universal save, as views of its live buffers, and the
   * group that publishes it. The loop snapshots and writes it in the background and publishes it
   * at a later step boundary (engine/universal/async-save.ts); save() writes the same at once.
   */
  universalSave?(dir: string, meta: Record<string, unknown>, files: Record<string, string>): Promise<{ group: ProcessGroup; save: UniversalSave }>;
  /** Writes model + optimizer state into dir atomically, with the loop's meta and extra files. */
  save(dir: string, meta: Record<string, unknown>, files: Record<string, string>): Promise<void>;
  /** Restores model + optimizer state from dir; returns the loop's meta and files. */
  load(dir: string): Promise<{ meta: Record<string, unknown>; files: Record<string, string> }>;
}
