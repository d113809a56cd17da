// Model FLOPs utilisation, measured against this machine's own GEMM peak. The peak is a
// measurement, never a constant: from `atscale plan --calibrate`'s machine spec (same thread
// count), or a short in-graph GEMM probe at start-up. A probe on a shared machine can read low
// (the 122.6% that `atscale train` once printed came from a single 1024^3 probe taken while
// other jobs held the cores), so a run that itself demonstrates more GEMM throughput than the
// probe raises the peak to what it demonstrated: every model FLOP is a GEMM FLOP, so model
// FLOPs / step time is a lower bound on the machine's GEMM rate, and MFU cannot pass 100%.
import { existsSync, readFileSync } from 'node:fs';
import { checkMachine } from '../plan/calibrate.js';

export const MFU_DEFINITION =
  'MFU (model FLOPs utilisation) = model FLOPs per second / peak GEMM FLOPs per second. Model FLOPs per token = ' +
  '6 x (parameters - position embeddings) + 12 x layers x context x width (forward + backward, PaLM appendix B; ' +
  'recomputation and masked attention entries are not counted). The peak is this machine\'s own fp32 GEMM rate ' +
  'inside an ONNX Runtime graph at the same thread count: --peak-gflops, else the largest rate in --machine ' +
  '(written by atscale plan --calibrate; default ./atscale-machine.json when its thread count matches), else a ' +
  'short 1024x1024 GEMM probe at start-up. With several ranks the peak is one rank\'s times the ranks (each rank its own cores). If the run itself shows more GEMM throughput than that peak, the peak ' +
  'is raised to it (and said so), so MFU never exceeds 100%.';

export interface Peak {
  gflops: number;
  /** Where the figure came from, printed with it. */
  source: string;
}

/** The peak from a calibration file, if it exists and was measured with `threads` threads. */
export function peakFromMachineSpec(path: string, threads: number): Peak | undefined {
  if (!existsSync(path)) return undefined;
  let spec;
  try {
    spec = checkMachine(JSON.parse(readFileSync(path, 'utf8')) as Record<string, unknown>, path);
  } catch (e) {
    throw new Error(`cannot use machine spec ${path} for the MFU peak: ${(e as Error).message}; rerun atscale plan --calibrate --out ${path}`);
  }
  if (spec.threads !== threads) return undefined;
  const gflops = Math.max(...Object.values(spec.gemmGflopsByN));
  return { gflops, source: `${path} (atscale plan --calibrate, ${spec.measuredAt || 'undated'}, ${threads} threads)` };
}

/**
 * The MFU peak: given > machine spec > probe. `machine` undefined means ./atscale-machine.json
 * when present; a path that was named explicitly must exist and match the thread count.
 */
export async function resolvePeak(o: { given?: number; machine?: string; threads: number }): Promise<Peak> {
  if (o.given !== undefined) {
    if (!(o.given > 0) || !Number.isFinite(o.given)) throw new RangeError(`--peak-gflops must be a positive number, got ${o.given}`);
    return { gflops: o.given, source: '--peak-gflops' };
  }
  if (o.machine !== undefined) {
    if (!existsSync(o.machine)) throw new Error(`machine spec ${o.machine} not found; write it with atscale plan --calibrate --threads ${o.threads} --out ${o.machine}`);
    const p = peakFromMachineSpec(o.machine, o.threads);
    if (!p) throw new Error(`machine spec ${o.machine} was measured with a different thread count than this run's ${o.threads}; recalibrate with --threads ${o.threads}`);
    return p;
  }
  const cached = peakFromMachineSpec('atscale-machine.json', o.threads);
  if (cached) return cached;
  const { measurePeakGflops } = await import('../runtime/gemm-probe.js');
  const gflops = await measurePeakGflops(o.threads, [1024]);
  return { gflops, source: `GEMM probe at start-up (1024^3 in-graph, ${o.threads} threads)` };
}

/** MFU of training windows; raises the peak when a window beats it (see the file comment). */
export class MfuMeter {
  private gflops: number;
  /** The starting peak of the whole job: one rank's, times the ranks. */
  private readonly start: number;

  /** `ranks`: processes sharing the step's FLOPs, each with the thread count the peak was
   * measured at (a rank's peak times the ranks, as Megatron's per-GPU MFU counts each GPU's). */
  constructor(private readonly peak: Peak, private readonly ranks = 1) {
    this.gflops = this.start = peak.gflops * ranks;
  }

  get peakGflops(): number {
    return this.gflops;
  }

  /** Whether a window beat the starting peak (so the peak in use was raised). */
  get raised(): boolean {
    return this.gflops > this.start;
  }

  /** MFU of `flops` model FLOPs done in `seconds`, in [0, 1]. */
  measure(flops: number, seconds: number): number {
    const gflops = flops / seconds / 1e9;
    if (gflops > this.gflops) this.gflops = gflops;
    return gflops / this.gflops;
  }

  describe(): string {
    const raised = this.raised ? `, raised to ${this.gflops.toFixed(1)} GFLOP/s because this run's own model FLOP rate beat it` : '';
    const job = this.ranks > 1 ? ` per rank, ${this.start.toFixed(1)} GFLOP/s for the ${this.ranks} ranks` : '';
    return `MFU peak ${this.peak.gflops.toFixed(1)} GFLOP/s${job} from ${this.peak.source}${raised}`;
  }
}
