// Bytes per rank, measured and by formula.
//
// Accounting (all fp32, P parameters, N ranks; the ZeRO paper's 2P+2P+KP with K=12 becomes,
// for this project's fp32-only training, 4P params + 4P grads + 8P optimizer state (Adam m, v)):
//   stage 0: params 4P,   grads 4P,   optimizer 8P
//   stage 1: params 4P,   grads 4P,   optimizer 8P/N
//   stage 2: params 4P,   grads 4P/N, optimizer 8P/N
//   stage 3: params 4P/N, grads 4P/N, optimizer 8P/N
// A shard is this rank's chunk of every piece (shard-plan.ts), so it may differ from P/N by up
// to one element per piece. Reported beside these and not part of the formulas: the AdamW
// decay mask (4 bytes per updated parameter, sharded like the optimizer state), and the
// transient buffers of stages 2-3 (gathered segment parameters, segment gradients in flight,
// the reduce-scatter receive chunk, saved activations).

export interface MemoryReport {
  stage: number;
  ranks: number;
  paramBytes: number;
  gradBytes: number;
  optimBytes: number;
  decayMaskBytes: number;
  transient: {
    /** Stage 3: the two gather slots (current segment + prefetched next). */
    gatheredParamBytes: number;
    /** Stages 2-3: the two segment gradient buffers (one computing, one being reduced). */
    segmentGradBytes: number;
    /** Stages 2-3: where a reduce-scatter lands before it is added into the gradient shard. */
    reduceChunkBytes: number;
    /** Stages 2-3: one saved input activation per segment plus two activation gradients. */
    activationBytes: number;
  };
}

export interface ZeroFormula {
  paramBytes: number;
  gradBytes: number;
  optimBytes: number;
}

/** The ZeRO formulas above for P parameters on N ranks. */
export function zeroFormula(stage: number, params: number, ranks: number): ZeroFormula {
  const per = (sharded: boolean, bytes: number) => (sharded ? (bytes * params) / ranks : bytes * params);
  return { paramBytes: per(stage >= 3, 4), gradBytes: per(stage >= 2, 4), optimBytes: per(stage >= 1, 8) };
}

export const bytesOf = (...arrays: (Float32Array | undefined)[]): number => arrays.reduce((a, x) => a + (x?.byteLength ?? 0), 0);
