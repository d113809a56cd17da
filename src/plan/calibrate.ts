// This machine as the planner sees it: measured GEMM throughput by matrix size, memory
// bandwidth and (when the dist layer exists) loopback collective bandwidth, stored as a small
// JSON machine spec. From it the planner predicts atscale's own single-process CPU training
// step, so its model of time can be checked against a run one can actually measure.
import { EFFICIENCY } from './efficiency.js';
import { type ProgramProfile, checkProgramProfile } from './program-profile.js';
import { layerActivationBytes } from './memory.js';
import { paramCount } from './params-flops.js';
import { type ClusterSpec, type ModelSpec, PlanInputError, type TrainingSpec } from './specs.js';
import { type ElementwisePoint, elementwiseSecondsPerByte, stepWorkingSetBytes } from './working-set.js';

export interface Measurements {
  /** Square n -> fp32 GFLOP/s of an n x n x n MatMul through onnxruntime-node. */
  gemmGflopsByN: Record<number, number>;
  /** Streaming copy bandwidth, GB/s (bytes read + written). */
  memBandwidthGBs: number;
  /** All-reduce bus bandwidth between processes on this host, GB/s. */
  loopbackBusbwGBs?: number;
  /** Effective bytes/s of atscale's non-GEMM kernels, measured on a calibration training step
   * (CALIBRATION_PROXY): see elementwiseFromProxy. */
  elementwiseGBs?: number;
  /** The same rate from two calibration steps of one shape, a small one (its tensors fit in the
   * last-level cache) and the large one, each with the bytes its tensors span (working-set.ts). */
  elementwiseAt?: ElementwisePoint[];
  /** Last-level (L3) cache, bytes, as the OS reports it. */
  cacheBytes?: number;
  /** Fixed cost of one session run (a one-element graph, fed and fetched), seconds. */
  sessionRunSeconds?: number;
  /** Share of a layer's forward + backward time that is its forward (what full recomputation
   * runs again), measured on the small calibration step without dropout. */
  forwardFraction?: number;
  /** Seconds per byte of a session output handed to JavaScript in a buffer it reuses (with the
   * copy onnxruntime-node returns besides). */
  outputCopySecondsPerByte?: number;
  /** One point-to-point message between two processes through the engine's transport, as a
   * pipeline stage hands an activation or a gradient on (copied into a tagged message, framed,
   * written, read, copied out): seconds of a small one (the per-message latency), and seconds
   * per byte beyond it. */
  handoffSeconds?: number;
  handoffSecondsPerByte?: number;
  /** Seconds of an all-reduce of a few floats between two processes (its latency). */
  smallAllReduceSeconds?: number;
  /** The programs of one model shape, timed when --calibrate was given that shape (program-profile.ts). */
  programs?: ProgramProfile;
  /** Runnable threads of other programs while calibrating (from the CPU time they took,
   * cli/host-load.ts; the 1-minute load average where that is not readable): the rates above are what one thread got beside them, so more ranks share the cores with them. */
  backgroundLoad?: number;
}

export interface MachineSpec extends Measurements {
  kind: 'atscale-machine';
  version: 1;
  name: string;
  measuredAt: string;
  threads: number;
  memoryGB: number;
  cpuModel?: string;
}

export function machineFromMeasurements(
  meas: Measurements,
  about: { name: string; threads: number; memoryGB: number; cpuModel?: string; measuredAt?: string },
): MachineSpec {
  const spec: MachineSpec = {
    kind: 'atscale-machine',
    version: 1,
    name: about.name,
    measuredAt: about.measuredAt ?? new Date().toISOString(),
    threads: about.threads,
    memoryGB: about.memoryGB,
    gemmGflopsByN: { ...meas.gemmGflopsByN },
    memBandwidthGBs: meas.memBandwidthGBs,
  };
  if (about.cpuModel !== undefined) spec.cpuModel = about.cpuModel;
  if (meas.loopbackBusbwGBs !== undefined) spec.loopbackBusbwGBs = meas.loopbackBusbwGBs;
  if (meas.elementwiseGBs !== undefined) spec.elementwiseGBs = meas.elementwiseGBs;
  if (meas.backgroundLoad !== undefined) spec.backgroundLoad = meas.backgroundLoad;
  if (meas.elementwiseAt !== undefined) spec.elementwiseAt = meas.elementwiseAt.map((p) => ({ ...p }));
  if (meas.cacheBytes !== undefined) spec.cacheBytes = meas.cacheBytes;
  if (meas.sessionRunSeconds !== undefined) spec.sessionRunSeconds = meas.sessionRunSeconds;
  if (meas.outputCopySecondsPerByte !== undefined) spec.outputCopySecondsPerByte = meas.outputCopySecondsPerByte;
  if (meas.forwardFraction !== undefined) spec.forwardFraction = meas.forwardFraction;
  for (const k of ['handoffSeconds', 'handoffSecondsPerByte', 'smallAllReduceSeconds'] as const) if (meas[k] !== undefined) spec[k] = meas[k];
  if (meas.programs !== undefined) spec.programs = meas.programs; // checked (and copied) by checkMachine below
  return checkMachine(spec as unknown as Record<string, unknown>);
}

/** Validates a machine spec read from JSON; errors name the key. */
export function checkMachine(o: Record<string, unknown>, where = 'machine spec'): MachineSpec {
  if (o.kind !== 'atscale-machine') throw new PlanInputError(`${where}: key 'kind' must be 'atscale-machine' (write one with atscale plan --calibrate)`);
  if (o.version !== 1) throw new PlanInputError(`${where}: key 'version' must be 1, got ${JSON.stringify(o.version)}`);
  const pos = (key: string, v: unknown) => {
    if (typeof v !== 'number' || !(v > 0) || !Number.isFinite(v)) throw new PlanInputError(`${where}: key '${key}' must be a positive number, got ${JSON.stringify(v)}`);
    return v;
  };
  const table = o.gemmGflopsByN;
  if (typeof table !== 'object' || table === null || Object.keys(table).length === 0) {
    throw new PlanInputError(`${where}: key 'gemmGflopsByN' must be an object like {"256": 80, "1024": 140}`);
  }
  const gemm: Record<number, number> = {};
  for (const [n, g] of Object.entries(table)) {
    const size = Number(n);
    if (!Number.isInteger(size) || size < 1) throw new PlanInputError(`${where}: gemmGflopsByN key '${n}' must be a matrix size (a whole number)`);
    gemm[size] = pos(`gemmGflopsByN.${n}`, g);
  }
  const spec: MachineSpec = {
    kind: 'atscale-machine',
    version: 1,
    name: typeof o.name === 'string' ? o.name : 'this machine',
    measuredAt: typeof o.measuredAt === 'string' ? o.measuredAt : '',
    threads: pos('threads', o.threads),
    memoryGB: pos('memoryGB', o.memoryGB),
    gemmGflopsByN: gemm,
    memBandwidthGBs: pos('memBandwidthGBs', o.memBandwidthGBs),
  };
  if (typeof o.cpuModel === 'string') spec.cpuModel = o.cpuModel;
  if (o.loopbackBusbwGBs !== undefined) spec.loopbackBusbwGBs = pos('loopbackBusbwGBs', o.loopbackBusbwGBs);
  if (o.elementwiseGBs !== undefined) spec.elementwiseGBs = pos('elementwiseGBs', o.elementwiseGBs);
  if (o.backgroundLoad !== undefined) {
    if (typeof o.backgroundLoad !== 'number' || !(o.backgroundLoad >= 0)) throw new PlanInputError(`${where}: key 'backgroundLoad' must be a number >= 0, got ${JSON.stringify(o.backgroundLoad)}`);
    spec.backgroundLoad = o.backgroundLoad;
  }
  if (o.elementwiseAt !== undefined) {
    if (!Array.isArray(o.elementwiseAt)) throw new PlanInputError(`${where}: key 'elementwiseAt' must be a list like [{"workingSetBytes": 2e7, "GBs": 11}, {"workingSetBytes": 6e7, "GBs": 6}]`);
    spec.elementwiseAt = o.elementwiseAt.map((p: Record<string, unknown>, i) => ({ workingSetBytes: pos(`elementwiseAt[${i}].workingSetBytes`, p?.workingSetBytes), GBs: pos(`elementwiseAt[${i}].GBs`, p?.GBs) }));
  }
  if (o.cacheBytes !== undefined) spec.cacheBytes = pos('cacheBytes', o.cacheBytes);
  if (o.sessionRunSeconds !== undefined) spec.sessionRunSeconds = pos('sessionRunSeconds', o.sessionRunSeconds);
  if (o.outputCopySecondsPerByte !== undefined) spec.outputCopySecondsPerByte = pos('outputCopySecondsPerByte', o.outputCopySecondsPerByte);
  for (const k of ['handoffSeconds', 'handoffSecondsPerByte', 'smallAllReduceSeconds'] as const) if (o[k] !== undefined) spec[k] = pos(k, o[k]);
  if (o.programs !== undefined) spec.programs = checkProgramProfile(o.programs, where);
  if (o.forwardFraction !== undefined) {
    if (typeof o.forwardFraction !== 'number' || !(o.forwardFraction > 0 && o.forwardFraction < 1)) throw new PlanInputError(`${where}: key 'forwardFraction' must be a number between 0 and 1, got ${JSON.stringify(o.forwardFraction)}`);
    spec.forwardFraction = o.forwardFraction;
  }
  return spec;
}

/**
 * Fixed cost of one kernel in the GEMM table, seconds: the fastest entry (a 64 x 64 MatMul is
 * all overhead), an upper bound on what every GEMM pays before any arithmetic.
 */
export function runOverheadSeconds(spec: MachineSpec): number {
  return Math.min(...Object.entries(spec.gemmGflopsByN).map(([n, g]) => (2 * Number(n) ** 3) / (g * 1e9)));
}

/**
 * GEMM throughput inside a graph for an (m x k) . (k x n) product, FLOP/s. Each table entry
 * timed one whole run, t(n) = t0 + 2n^3 / rate(n). Entries at least twice the run overhead t0
 * give a rate once t0 is taken out; smaller ones are mostly overhead and say nothing about
 * the rate. Rates are interpolated in log size at the cube root of m k n; below the smallest
 * usable size its rate holds (per-operator cost is charged separately).
 */
export function gemmFlopsPerS(spec: MachineSpec, m: number, k: number, n: number): number {
  const t0 = runOverheadSeconds(spec);
  const call = (x: number) => (2 * x ** 3) / (spec.gemmGflopsByN[x]! * 1e9);
  const all = Object.keys(spec.gemmGflopsByN).map(Number).sort((a, b) => a - b);
  const usable = all.filter((x) => call(x) >= 2 * t0);
  const sizes = usable.length > 0 ? usable : all;
  const pure = (x: number) => (2 * x ** 3) / (usable.length > 0 ? call(x) - t0 : call(x));
  // Throughput does not fall as matrices grow; a dip in the table is noise from other load.
  const g = (x: number) => Math.max(...sizes.filter((y) => y <= x).map(pure));
  const size = Math.cbrt(m * k * n);
  const lo = sizes[0]!, hi = sizes[sizes.length - 1]!;
  if (size <= lo) return g(lo);
  if (size >= hi) return g(hi);
  let i = 0;
  while (sizes[i + 1]! < size) i++;
  const a = sizes[i]!, b = sizes[i + 1]!;
  const w = Math.log(size / a) / Math.log(b / a);
  return g(a) * (1 - w) + g(b) * w;
}

/** The machine as a one-node, one-device cluster, for the planner's memory model. */
export function machineToCluster(spec: MachineSpec): ClusterSpec {
  const best = Math.max(...Object.values(spec.gemmGflopsByN));
  const loop = spec.loopbackBusbwGBs ?? spec.memBandwidthGBs / 4;
  return {
    name: spec.name,
    nodes: 1,
    node: { gpusPerNode: 1, gpu: { name: spec.cpuModel ?? 'CPU', peakTflops: { fp32: best / 1000 }, memoryGB: spec.memoryGB, memoryGBs: spec.memBandwidthGBs }, intraNodeGBs: 2 * loop },
    interNodeGbits: loop * 8,
    interNodeLatencyUs: 50,
    dollarsPerGpuHour: 0,
    note: `measured ${spec.measuredAt} with ${spec.threads} threads`,
  };
}

/** A GPT as nanoGPT names it. */
export interface GptShape {
  nLayer: number;
  nHead: number;
  nEmbd: number;
  blockSize: number;
  vocab: number;
  batch: number;
  /** Dropout probability (0: no masks are drawn). */
  dropout?: number;
}

/** The training step `atscale plan --calibrate` measures to learn how fast atscale's non-GEMM
 * kernels move data on this machine: big enough that its tensors leave the caches and its
 * per-kernel costs are small next to its traffic, with dropout so the mask hash is in the mix. */
export const CALIBRATION_PROXY: GptShape = { nLayer: 1, nHead: 4, nEmbd: 256, blockSize: 128, vocab: 65, batch: 16, dropout: 0.2 };

/**
 * Bytes that atscale's non-GEMM kernels read and write in one fused fp32 training step
 * (forward, backward, AdamW). A property of atscale's lowering, not of the machine: the
 * coefficients were fitted to the byte counts of the actual traced and optimised step graphs
 * of 144 GPT shapes (1-2 layers, width 64-384, context 16-256, batch 2-8, vocab 65-200, with
 * and without dropout; largest error 5%). Dropout adds its masks and the counter-based hash
 * that draws them (about 12 int32 passes, 8 bytes each, per mask element).
 */
export function atscaleElementwiseBytes(g: GptShape, params: number): number {
  const { nLayer: L, nHead: H, nEmbd: C, blockSize: T, vocab: V, batch: B } = g;
  const btc = B * T * C;
  const bht2 = B * H * T * T;
  let bytes = 1386.1 * L * btc + 58.67 * L * bht2 + 94.39 * B * T * V + STEP_BYTES_PER_PARAM * params - 51.52 * btc - 164756;
  if ((g.dropout ?? 0) > 0) bytes += 118.8 * L * btc + 28.92 * L * bht2 + 28.49 * btc + 96 * (L * bht2 + 2 * L * btc + btc);
  return Math.max(bytes, 0);
}

/** Fixed cost of one session run, seconds: measured by --calibrate; a spec written before it
 * was measured falls back to the GEMM table's per-kernel overhead. */
export function sessionRunSeconds(spec: MachineSpec): number {
  return spec.sessionRunSeconds ?? runOverheadSeconds(spec);
}

/** Seconds of the step's GEMMs (forward, and twice that backward) at the calibrated in-graph rates. */
export function gemmStepSeconds(g: GptShape, spec: MachineSpec): number {
  const { nLayer: L, nHead: H, nEmbd: C, blockSize: T, vocab: V, batch: B } = g;
  const d = C / H;
  const gemm = (m: number, k: number, n: number, count = 1) => (count * 2 * m * k * n) / gemmFlopsPerS(spec, m, k, n);
  const bt = B * T;
  const layerForward = gemm(bt, C, 3 * C) + gemm(bt, C, C) + gemm(bt, C, 4 * C) + gemm(bt, 4 * C, C) + gemm(T, d, T, B * H) + gemm(T, T, d, B * H);
  return 3 * (L * layerForward + gemm(bt, C, V));
}

export function gptParams(g: GptShape): number {
  return paramCount({ name: 'cpu', layers: g.nLayer, hidden: g.nEmbd, heads: g.nHead, seqLen: g.blockSize, vocab: g.vocab, ffn: 4 * g.nEmbd });
}

/** The small calibration step: the same shape on few rows, so that its tensors (about 19 MB,
 * stepWorkingSetBytes) fit in a typical server L3 where the large one's (about 56 MB) do not. */
export const CALIBRATION_PROXY_SMALL: GptShape = { ...CALIBRATION_PROXY, batch: 2 };

/**
 * The elementwise throughput implied by a measured calibration step: its bytes over the part
 * of its time that the GEMMs (at the calibrated rates) do not explain, at most `copyGBs` (the
 * machine's copy bandwidth for tensors of that size: DRAM for the large step, cache for the
 * small). The step is mostly GEMMs, whose rates are measured on square shapes and
 * interpolated, so that remainder is a small difference of two measurements: on a quiet
 * machine it can come out tiny or negative. Non-GEMM kernels cannot move bytes faster than a
 * memory copy, which bounds the figure instead of failing the calibration.
 */
export function elementwiseFromProxy(measuredMs: number, spec: MachineSpec, proxy: GptShape = CALIBRATION_PROXY, copyGBs = spec.memBandwidthGBs): number {
  const rest = measuredMs / 1000 - gemmStepSeconds(proxy, spec);
  const implied = atscaleElementwiseBytes(proxy, gptParams(proxy)) / rest / 1e9;
  return rest > 0 ? Math.min(implied, copyGBs) : copyGBs;
}

/** Bytes per parameter of atscale's fused step outside the per-layer activation work (the
 * 249.4 of atscaleElementwiseBytes): the flat gradient, clipping and AdamW. */
export const STEP_BYTES_PER_PARAM = 249.4;

/**
 * Share of a step's forward + backward that its forward takes, from one shape timed on few and
 * on more rows (step and forward pass alone each): what the extra rows added to the forward
 * over what they added to the step. AdamW, clipping and every per-run cost do not grow with
 * rows, so the differences leave them out. Outside (0, 1), which only contradicting
 * measurements give, undefined.
 */
export function forwardFractionFromSteps(few: { msPerIter: number; forwardMs?: number }, more: { msPerIter: number; forwardMs?: number }): number | undefined {
  const f = (more.forwardMs! - few.forwardMs!) / (more.msPerIter - few.msPerIter);
  return f > 0 && f < 1 ? f : undefined;
}

/** A calibration step's rate with the bytes its tensors span. */
export function elementwisePoint(measuredMs: number, spec: MachineSpec, proxy: GptShape, copyGBs?: number): ElementwisePoint {
  return { workingSetBytes: stepWorkingSetBytes(proxy, gptParams(proxy)), GBs: elementwiseFromProxy(measuredMs, spec, proxy, copyGBs) };
}

/** ONNX nodes one layer adds to a forward + backward + AdamW graph (an estimate of atscale's lowering). */
const OPS_PER_LAYER = 100;
const OPS_FIXED = 60;
/** Dispatch cost of one ONNX Runtime CPU kernel, seconds (not measured by --calibrate). */
const OP_OVERHEAD_S = 3e-6;

/**
 * Predicted milliseconds of one single-process fp32 training step (forward, backward, AdamW)
 * on the measured CPU: every GEMM at the throughput the calibration table gives for its size,
 * memory-bound kernels at the measured bandwidth, a dispatch cost per operator and one
 * session run's fixed cost.
 */
export function predictCpuStepMs(g: GptShape, spec: MachineSpec): number {
  // Calibrated with measured steps: GEMMs at in-graph rates plus atscale's non-GEMM traffic
  // at the throughput a step with this one's working set gets (working-set.ts).
  const perByte = elementwiseSecondsPerByte(spec, stepWorkingSetBytes(g, gptParams(g)));
  if (perByte !== undefined) return 1000 * (gemmStepSeconds(g, spec) + atscaleElementwiseBytes(g, gptParams(g)) * perByte);
  const { nLayer: L, nHead: H, nEmbd: C, blockSize: T, vocab: V, batch: B } = g;
  const d = C / H;
  const gemm = (m: number, k: number, n: number, count = 1) => (count * 2 * m * k * n) / gemmFlopsPerS(spec, m, k, n);
  const bt = B * T;
  const layerForward =
    gemm(bt, C, 3 * C) + gemm(bt, C, C) + gemm(bt, C, 4 * C) + gemm(bt, 4 * C, C) + gemm(T, d, T, B * H) + gemm(T, T, d, B * H);
  const logitsForward = gemm(bt, C, V);
  const gemmSeconds = 3 * (L * layerForward + logitsForward);

  const model: ModelSpec = { name: 'cpu', layers: L, hidden: C, heads: H, seqLen: T, vocab: V, ffn: 4 * C };
  const t: TrainingSpec = {
    gpus: 1, globalBatch: B, microBatch: B, seqLen: T, dtype: 'fp32', tp: 1, pp: 1, dp: 1, interleave: 1, zero: 0, recompute: 'none', sequenceParallel: false, tokens: 1,
  };
  const bw = spec.memBandwidthGBs * 1e9;
  // The GPU model's traffic rule; there are no fused kernels here, so nothing is discounted:
  // forward moves twice what it stores, backward 1.5x the forward.
  const elementwise = (L * 2 * (1 + EFFICIENCY.elementwiseBackward) * layerActivationBytes(model, t)) / bw;
  const crossEntropy = (5 * 4 * bt * V) / bw;
  const adamw = (28 * paramCount(model)) / bw;

  const overhead = (OPS_PER_LAYER * L + OPS_FIXED) * OP_OVERHEAD_S + runOverheadSeconds(spec);
  return 1000 * (gemmSeconds + elementwise + crossEntropy + adamw + overhead);
}
