// What the training loop needs from a trainer. There is one trainer, MeshTrainer
// (mesh-trainer.ts): one process is the mesh of one; ZeRO, pipeline and tensor parallelism
// are its options. The loop owns data, schedule, metrics and when to save; the trainer owns
// the model state and how a step is computed.
import type { FlatLayout } from '../nn/flat.js';

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
   * Copies model + optimizer state into fresh host buffers (a snapshot at a step boundary) for
   * a background writer; trainers without it are saved synchronously.
   */
  snapshot?(meta: Record<string, unknown>, files: Record<string, string>): import('../checkpoint/index.js').CheckpointContents;
  /** Writes model + optimizer state into dir atomically, with the loop's meta and extra files. */
  save(dir: string, meta: Record<string, unknown>, files: Record<string, string>): Promise<void>;
  /** Restores model + optimizer state from dir; returns the loop's meta and files. */
  load(dir: string): Promise<{ meta: Record<string, unknown>; files: Record<string, string> }>;
}
