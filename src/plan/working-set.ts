// How fast atscale's memory-bound (non-GEMM) kernels move bytes depends on where the bytes
// are: a program whose tensors fit in the last-level cache streams them from there, one whose
// tensors do not streams them from DRAM. `atscale plan --calibrate` times two training steps of
// one shape, one with few rows (its tensors fit in the L3) and one with many (they do not), and
// stores the rate each showed with its working set; the planner then charges each program the
// rate its own working set gets, by the share of its bytes the cache can hold.
//
// The rule (a two-level memory): a program touching W bytes, of which a cache of S bytes holds
// h = min(1, S / W), spends t = h t_cache + (1 - h) t_dram seconds per byte. The two calibration
// steps give two equations for t_cache and t_dram. Ranks that run at once share the one L3, so
// each gets S / ranks of it; the calibration steps ran alone (S whole).
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { GptShape } from './calibrate.js';

/** A calibrated non-GEMM rate: what a training step whose tensors span `workingSetBytes` showed. */
export interface ElementwisePoint {
  workingSetBytes: number;
  GBs: number;
}

/**
 * Bytes one block's forward returns for its backward, per micro-batch, as atscale lowers it
 * (fp32 tensors, bool masks; engine/segments.ts cut by ir/remat.ts). Both none and selective keep
 * 15 tensors of B x T x C elements: ln_1's output, q, k and v, the attention output before its
 * projection, the residual, ln_2's output, and the MLP's two 4C-wide tensors (its input to GELU
 * and GELU's output). None also keeps the softmax probabilities (B x H x T x T); with dropout,
 * both keep the two residual-path masks and none also the attention mask and the dropped
 * probabilities. Full recomputation keeps only the block input, which is already a JavaScript
 * value (the stage's received or previous activation), so nothing more crosses.
 */
export function stashedBytesPerLayer(g: Omit<GptShape, 'nLayer'>, recompute: 'none' | 'selective' | 'full'): number {
  if (recompute === 'full') return 0;
  const btc = g.batch * g.blockSize * g.nEmbd;
  const bhtt = g.batch * g.nHead * g.blockSize * g.blockSize;
  const dropout = (g.dropout ?? 0) > 0;
  let bytes = 4 * 15 * btc + (dropout ? 2 * btc : 0);
  if (recompute === 'none') bytes += 4 * bhtt + (dropout ? bhtt + 4 * bhtt : 0);
  return bytes;
}

/** Bytes per parameter a training program keeps touching: the weights, their gradient, and the
 * gradient accumulator read and written (4 fp32 arrays). */
export const WORKING_BYTES_PER_PARAM = 16;

/**
 * Bytes a training program's kernels keep live between a tensor's write and its last read:
 * what every layer keeps for its backward (`keptLayers` of them; a block's backward rebuilds
 * one layer's worth, counted once when `rebuilt`), the logits and their gradient (B x T x V,
 * when the program holds the head), and the parameters' arrays.
 */
export function workingSetBytes(g: Omit<GptShape, 'nLayer'>, o: { keptLayers: number; keptPerLayer: number; head: boolean; params: number; rebuilt?: boolean }): number {
  const rebuilt = o.rebuilt ? stashedBytesPerLayer(g, 'none') : 0;
  const head = o.head ? 2 * 4 * g.batch * g.blockSize * g.vocab : 0;
  return o.keptLayers * o.keptPerLayer + rebuilt + head + WORKING_BYTES_PER_PARAM * o.params;
}

/** Working set of a one-process training step of shape g (what the calibration steps run). */
export function stepWorkingSetBytes(g: GptShape, params: number): number {
  return workingSetBytes(g, { keptLayers: g.nLayer, keptPerLayer: stashedBytesPerLayer(g, 'none'), head: true, params });
}

/** Where the machine's rates come from, for the rule below. */
export interface CacheAwareRates {
  /** The single calibrated rate (the large calibration step's), used when the two-point rule cannot be. */
  elementwiseGBs?: number;
  elementwiseAt?: ElementwisePoint[];
  /** Last-level cache, bytes. */
  cacheBytes?: number;
}

/**
 * Seconds per byte of non-GEMM traffic for a program touching `workingSet` bytes while `sharers`
 * ranks (itself included) share the L3. Without two calibrated points or a known cache size it
 * is the one calibrated rate (undefined if there is none). If noise makes the larger step the
 * faster per byte, the cache is taken to buy nothing (the larger step's rate holds throughout).
 */
export function elementwiseSecondsPerByte(spec: CacheAwareRates, workingSet: number, sharers = 1): number | undefined {
  const single = spec.elementwiseGBs !== undefined ? 1 / (spec.elementwiseGBs * 1e9) : undefined;
  const pts = [...(spec.elementwiseAt ?? [])].sort((a, b) => a.workingSetBytes - b.workingSetBytes);
  if (pts.length < 2 || !spec.cacheBytes) return single;
  const small = pts[0]!, big = pts[pts.length - 1]!;
  const hit = (ws: number, cache: number) => Math.min(1, cache / ws);
  const [hs, hb] = [hit(small.workingSetBytes, spec.cacheBytes), hit(big.workingSetBytes, spec.cacheBytes)];
  const [ts, tb] = [1 / (small.GBs * 1e9), 1 / (big.GBs * 1e9)];
  // Both steps wholly in (or equally out of) the cache: nothing to tell the levels apart by.
  if (hs - hb < 0.05) return (ts + tb) / 2;
  // t_cache - t_dram: negative when the cache saves time; never positive (noise).
  const d = Math.min(0, (ts - tb) / (hs - hb));
  const tDram = tb - hb * d;
  const tCache = tDram + d;
  // Only if the small step was itself mostly out of cache can this extrapolate below zero.
  if (tCache <= 0) return tb;
  const h = hit(workingSet, spec.cacheBytes / Math.max(1, sharers));
  return h * tCache + (1 - h) * tDram;
}

/** The last-level cache's size in bytes, from the kernel's description of cpu0's caches (Linux
 * sysfs: the highest `level` under /sys/devices/system/cpu/cpu0/cache, its `size`, e.g. 32768K);
 * undefined where that is not readable (other systems), and the planner then uses the one
 * calibrated non-GEMM rate for every working set. */
export function lastLevelCacheBytes(root = '/sys/devices/system/cpu/cpu0/cache'): number | undefined {
  let best: { level: number; bytes: number } | undefined;
  try {
    for (const d of readdirSync(root).filter((x) => x.startsWith('index'))) {
      const level = Number(readFileSync(join(root, d, 'level'), 'utf8').trim());
      const m = /^(\d+)([KMG]?)$/.exec(readFileSync(join(root, d, 'size'), 'utf8').trim());
      if (!m || !Number.isFinite(level)) continue;
      const bytes = Number(m[1]) * ({ '': 1, K: 1024, M: 1024 ** 2, G: 1024 ** 3 } as Record<string, number>)[m[2]!]!;
      if (!best || level > best.level) best = { level, bytes };
    }
  } catch {
    return undefined;
  }
  return best?.bytes;
}
