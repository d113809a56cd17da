// How long one kernel takes on one GPU: GEMMs by a roofline of their shape with the GPU's
// measured best-case efficiency and the loss from partial waves of tiles, memory-bound
// kernels at the measured fraction of HBM bandwidth, flash attention at its published
// fraction of peak. The GPU-generation figures live in gpus.ts with their sources; the few
// constants here are properties of how kernels are built, the same for every run.

export const EFFICIENCY = {
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
  /**
   * Output tile of one thread block in cuBLAS's large bf16 kernels on Ampere and Hopper
   * (128 x 256, one block per SM). A GEMM whose tile count is not a multiple of the SM count
   * leaves SMs idle in its last wave; that, not the GEMM's size as such, is why one of
   * Megatron's tensor-parallel shards runs slower than a square GEMM of equal FLOPs.
   */
  tileM: 128,
  tileN: 256,
};

export interface Device {
  /** Dense peak FLOP/s of the GEMM dtype. */
  peakFlops: number;
  /** Memory bandwidth, bytes/s (datasheet). */
  memoryBytesPerS: number;
  /** Bytes per element of activations (2 for 16-bit and fp8 training, 4 for fp32/tf32). */
  elementBytes: number;
  /** Bytes per element of GEMM inputs (1 for fp8). */
  gemmBytes: number;
  sms: number;
  gemmEfficiency: number;
  memoryEfficiency: number;
  flashForward: number;
  flashBackward: number;
}

/** Fraction of SMs busy over all waves of a GEMM's tiles, with either tile orientation. */
export function waveEfficiency(dev: Device, m: number, n: number, count: number): number {
  const quantized = (tm: number, tn: number) => {
    const tiles = Math.ceil(m / tm) * Math.ceil(n / tn) * count;
    const waves = Math.ceil(tiles / dev.sms);
    // Work actually useful over the work of the padded tiles on all SMs of every wave.
    return (m * n * count) / (waves * dev.sms * tm * tn);
  };
  return Math.min(1, Math.max(quantized(EFFICIENCY.tileM, EFFICIENCY.tileN), quantized(EFFICIENCY.tileN, EFFICIENCY.tileM)));
}

/**
 * Time of `count` independent GEMMs of (M x K) . (K x N): compute at the GPU's best-case
 * efficiency times the wave efficiency, plus streaming the three matrices once at HBM
 * bandwidth, plus one launch. The two terms are added, not maxed: the best-shape (MAMF)
 * measurement already includes the overlap a well-shaped GEMM gets, and a training GEMM's
 * operands arrive cold from the previous kernel (the roofline's no-overlap bound).
 */
export function gemmSeconds(dev: Device, m: number, k: number, n: number, count = 1): number {
  if (m <= 0 || k <= 0 || n <= 0 || count <= 0) return 0;
  const flops = 2 * m * k * n * count;
  const bytes = dev.gemmBytes * (m * k + k * n) * count + dev.elementBytes * m * n * count;
  const compute = flops / (dev.peakFlops * dev.gemmEfficiency * waveEfficiency(dev, m, n, count));
  return compute + streamSeconds(dev, bytes) + EFFICIENCY.kernelOverheadS;
}

/** Seconds a kernel takes when communication kernels hold `sms` of the GPU's SMs (at most
 * half) while it runs: it has the rest. */
export function onRemainingSms(dev: Device, seconds: number, sms: number): number {
  return seconds / (1 - Math.min(0.5, sms / dev.sms));
}

/** Time of memory-bound kernels that move `bytes` in total. */
export function streamSeconds(dev: Device, bytes: number): number {
  return bytes / (dev.memoryBytesPerS * dev.memoryEfficiency);
}

/**
 * Causal flash attention over `heads` heads of b sequences, `queries` queries each (s, or s/cp
 * under context parallelism) against `keys` keys, head dim d. The kernel skips the masked
 * upper triangle, so it computes a little over half of the 4 b queries keys d FLOPs per head
 * that papers count (context parallelism's load-balanced chunks keep that half per rank).
 */
export function flashSeconds(dev: Device, b: number, heads: number, queries: number, keys: number, d: number, pass: 'forward' | 'backward'): number {
  const full = 4 * b * heads * queries * keys * d;
  const blocks = Math.max(1, Math.ceil(keys / 128));
  const done = full * (0.5 + 0.5 / blocks);
  const flops = pass === 'forward' ? done : 2.5 * done; // backward: dQ, dK, dV and the recomputed scores
  const eff = pass === 'forward' ? dev.flashForward : dev.flashBackward;
  return flops / (dev.peakFlops * eff) + EFFICIENCY.kernelOverheadS;
}
