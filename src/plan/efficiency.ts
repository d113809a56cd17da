// How close real kernels get to the datasheet. These few constants are global: the same
// numbers hold for every model, layout and machine (the Table 1 validation test relies on
// that; no per-row factors). Each is a physical fraction one can measure with a micro-benchmark.

export const EFFICIENCY = {
  /** Best fraction of dense tensor-core peak a large GEMM reaches (cuBLAS on A100: ~0.8). */
  gemmPeak: 0.8,
  /** Fraction of datasheet memory bandwidth a streaming kernel reaches (STREAM-like). */
  memory: 0.8,
  /** NCCL bus bandwidth as a fraction of the link's one-way bandwidth. */
  link: 0.8,
  /**
   * Bytes the memory-bound kernels (layer norm, GeLU, softmax, dropout, bias, residual) move
   * per byte of activation the layer stores for backward, in the forward pass. Each stored
   * tensor is written once and read once (2), but with fused kernels about half of those
   * touches are a GEMM's own input or output, already in the GEMM's roofline: 1.5.
   */
  elementwisePerStoredByte: 1.5,
  /**
   * Backward memory traffic of those kernels relative to forward: a kernel's backward reads
   * the output gradient and the saved input and writes the input gradient (three tensors to
   * the forward's two).
   */
  elementwiseBackward: 1.5,
  /** Launch and tail cost of one kernel, seconds: why tiny matrices never reach peak. */
  kernelOverheadS: 4e-6,
  /** One-way latency of a hop inside a node (NVLink / shared memory), seconds. */
  intraNodeLatencyS: 2e-6,
};

export interface Device {
  /** Dense peak FLOP/s for the training dtype. */
  peakFlops: number;
  /** Memory bandwidth, bytes/s. */
  memoryBytesPerS: number;
  /** Bytes per element of the training dtype. */
  elementBytes: number;
}

/**
 * Time of `count` independent GEMMs of (M x K) . (K x N). A roofline with the two terms added
 * rather than maxed, because a GEMM first streams its tiles in and only then multiplies them:
 * efficiency rises smoothly with size, and thin shapes (a small K or N, such as attention's
 * head dimension or a tensor-parallel shard) are slower than square ones of equal FLOPs.
 */
export function gemmSeconds(dev: Device, m: number, k: number, n: number, count = 1): number {
  const flops = 2 * m * k * n * count;
  const bytes = dev.elementBytes * (m * k + k * n + m * n) * count;
  return flops / (dev.peakFlops * EFFICIENCY.gemmPeak) + bytes / (dev.memoryBytesPerS * EFFICIENCY.memory) + EFFICIENCY.kernelOverheadS;
}

/** Time of memory-bound kernels that move `bytes` in total. */
export function streamSeconds(dev: Device, bytes: number): number {
  return bytes / (dev.memoryBytesPerS * EFFICIENCY.memory);
}
