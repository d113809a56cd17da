// GPU datasheets and the measured fractions of them real kernels reach. Peaks are dense (no
// 2:4 sparsity) tensor-core TFLOP/s per dtype from NVIDIA's datasheets; fp32 is the non-tensor
// rate. None of these numbers was fitted to a training run: each efficiency is a kernel
// micro-benchmark that someone published, cited where it is set.
import type { GpuSpec } from './specs.js';

/**
 * Best-shape GEMM efficiency, bf16, as "Maximum Achievable Matmul FLOPS" (MAMF) over the
 * datasheet: S. Bekman, ml-engineering, compute/accelerator/README.md, MAMF comparison table
 * (mamf-finder.py, mean of 100 iterations): A100 SXM 271.2 / 312 = 86.9%, H100 SXM 794.5 / 989
 * = 80.3% ("H200 is the same"), B200 1745 / 2250 = 77.6%; fp8 (float8_e4m3fn) H100 1402.6 /
 * 1979 = 70.9%, H200 1453.4 / 1979 = 73.4%, B200 3432.5 / 4500 = 76.3%. The V100 has no MAMF
 * entry; 0.80 is assumed (cuBLAS on Volta is of H100's class). tf32 and fp16 take the bf16
 * fraction (not measured separately).
 */
const MAMF = { v100: 0.8, a100: 271.2 / 312, h100: 794.5 / 989, h200: 794.5 / 989, b200: 1745 / 2250 };
const MAMF_FP8 = { h100: 1402.6 / 1979, h200: 1453.4 / 1979, b200: 3432.5 / 4500 };

/**
 * MAMF is a short burst at the boost clock; a training run keeps every GPU of the node at its
 * power limit, where the clock settles lower. The same benchmark reports that sustained rate
 * as MSMF (Bekman, ml-engineering, compute/accelerator/benchmarks/README.md, "alone vs all-8
 * concurrent", mamf-finder-all-gpus.py with every GPU of the node computing, n = 40): H200 bf16
 * 698.6 sustained against 823.9 burst (0.848; H100 is the same silicon at the same 700 W), B200
 * 1426.4 against 1751.2 (0.815). Every tensor-core kernel (GEMMs and flash attention, bf16 and
 * fp8) of those generations runs at that clock. The A100 (400 W) has no MSMF entry, but the
 * same power limit was measured on it directly: H. He, "Strangely, Matrix Multiplications on
 * GPUs Run Faster When Given 'Predictable' Data" (thonking.ai, 2024), cuBLAS 8192^3 on A100
 * runs at 257 TFLOP/s with torch.randn inputs and 295 with zeros: random data draws more
 * power, the board reaches its 400 W limit and the clock drops. 8192^3 fills the SMs (19 full
 * waves of 128 x 256 tiles), so 257 is the shape-independent sustained rate; over MAMF's burst
 * 271.2 that is 0.948. The V100 has neither figure (1).
 */
const SUSTAINED = { volta: 1, ampere: 257 / 271.2, hopper: 698.6 / 823.9, blackwell: 1426.4 / 1751.2 };

/**
 * Streaming bandwidth over the datasheet: BabelStream-style copy/triad kernels reach about
 * 90% of HBM2e/HBM3 peak on A100 and H100 (e.g. NVIDIA's nvbandwidth and the BabelStream
 * results in Deakin et al. 2022); 0.85 is taken for every generation, a little under that
 * because training kernels mix reads and writes of several tensors.
 */
const STREAM = 0.85;

/**
 * Causal flash attention, fraction of the dense peak, as FlashAttention-2 (Dao 2023) measured
 * it: on A100 up to 73% of peak forward and about 63% backward (Fig. 4-6, head dim 128, long
 * sequences); on H100 up to 335 TFLOP/s forward + backward (Fig. 7), 34% of peak, about 40%
 * forward and 32% backward. FlashAttention-2 is what the runs in the validation table used
 * (FlashAttention-3's 75% on H100 came in mid-2024, after them). V100 and B200 take their
 * neighbour generation's figures scaled by their MAMF ratio.
 */
const FLASH = {
  ampere: { fwd: 0.7 * SUSTAINED.ampere, bwd: 0.6 * SUSTAINED.ampere },
  hopper: { fwd: 0.4 * SUSTAINED.hopper, bwd: 0.32 * SUSTAINED.hopper },
};

/**
 * The first FlashAttention and its Triton port (what 2022-23 stacks such as MosaicML's MPT ran,
 * attn_impl: triton) against FlashAttention-2: Dao 2023, section 4.1, measures FlashAttention-2
 * "1.3-2.5x faster than FlashAttention in Triton" (and 1.7-3.0x faster than FlashAttention) on
 * A100, and its introduction puts FlashAttention at 25-40% of peak. The geometric middle of
 * the Triton range, sqrt(1.3 x 2.5) = 1.8, divides the FlashAttention-2 fractions.
 */
export const FLASH_V1_SLOWDOWN = Math.sqrt(1.3 * 2.5);

export const GPUS: Record<string, GpuSpec> = {
  v100: {
    name: 'V100 SXM2 32GB', peakTflops: { fp16: 125, fp32: 15.7 }, memoryGB: 32, memoryGBs: 900, sms: 80,
    gemmEfficiency: MAMF.v100, memoryEfficiency: STREAM, flashForwardEfficiency: (FLASH.ampere.fwd / SUSTAINED.ampere) * 0.9, flashBackwardEfficiency: (FLASH.ampere.bwd / SUSTAINED.ampere) * 0.9,
  },
  'a100-40': {
    name: 'A100 SXM 40GB', peakTflops: { bf16: 312, fp16: 312, tf32: 156, fp32: 19.5 }, memoryGB: 40, memoryGBs: 1555, sms: 108,
    gemmEfficiency: MAMF.a100 * SUSTAINED.ampere, memoryEfficiency: STREAM, flashForwardEfficiency: FLASH.ampere.fwd, flashBackwardEfficiency: FLASH.ampere.bwd,
  },
  'a100-80': {
    name: 'A100 SXM 80GB', peakTflops: { bf16: 312, fp16: 312, tf32: 156, fp32: 19.5 }, memoryGB: 80, memoryGBs: 2039, sms: 108,
    gemmEfficiency: MAMF.a100 * SUSTAINED.ampere, memoryEfficiency: STREAM, flashForwardEfficiency: FLASH.ampere.fwd, flashBackwardEfficiency: FLASH.ampere.bwd,
  },
  h100: {
    name: 'H100 SXM 80GB', peakTflops: { fp8: 1979, bf16: 989, fp16: 989, tf32: 494, fp32: 67 }, memoryGB: 80, memoryGBs: 3350, sms: 132,
    gemmEfficiency: MAMF.h100 * SUSTAINED.hopper, gemmEfficiencyFp8: MAMF_FP8.h100 * SUSTAINED.hopper, memoryEfficiency: STREAM, flashForwardEfficiency: FLASH.hopper.fwd, flashBackwardEfficiency: FLASH.hopper.bwd,
  },
  h200: {
    name: 'H200 SXM 141GB', peakTflops: { fp8: 1979, bf16: 989, fp16: 989, tf32: 494, fp32: 67 }, memoryGB: 141, memoryGBs: 4800, sms: 132,
    gemmEfficiency: MAMF.h200 * SUSTAINED.hopper, gemmEfficiencyFp8: MAMF_FP8.h200 * SUSTAINED.hopper, memoryEfficiency: STREAM, flashForwardEfficiency: FLASH.hopper.fwd, flashBackwardEfficiency: FLASH.hopper.bwd,
  },
  b200: {
    name: 'B200 SXM 180GB', peakTflops: { fp8: 4500, bf16: 2250, fp16: 2250, tf32: 1100, fp32: 75 }, memoryGB: 180, memoryGBs: 8000, sms: 148,
    gemmEfficiency: MAMF.b200 * SUSTAINED.blackwell, gemmEfficiencyFp8: MAMF_FP8.b200 * SUSTAINED.blackwell, memoryEfficiency: STREAM,
    flashForwardEfficiency: (FLASH.hopper.fwd / SUSTAINED.hopper) * (MAMF.b200 / MAMF.h100) * SUSTAINED.blackwell, flashBackwardEfficiency: (FLASH.hopper.bwd / SUSTAINED.hopper) * (MAMF.b200 / MAMF.h100) * SUSTAINED.blackwell,
  },
};

/** Per-GPU NVLink bandwidth, both directions together, as vendors quote it, by GPU. */
export const NVLINK_GBS: Record<string, number> = { v100: 300, 'a100-40': 600, 'a100-80': 600, h100: 900, h200: 900, b200: 1800 };

/** Defaults for GPU specs from JSON files that leave the measured fractions out. */
export const DEFAULT_GPU_EFFICIENCY = { gemm: 0.8, memory: STREAM, flashForward: 0.6, flashBackward: 0.5, sms: 108 };
