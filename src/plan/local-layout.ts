// The step time of a parallel layout run on this machine (atscale launch on one host, one ONNX
// Runtime thread per rank), from the calibrated machine spec: the single-process step model of
// calibrate.ts split into per-layer and per-model work, then arranged as the engine runs it.
// - one process or data parallelism: every rank runs the fused step graph on its rows of each
//   micro-batch, m times, then one update; gradients are all-reduced (ring: 2 (dp-1)/dp of them);
// - pipeline: each stage runs its layers per micro-batch as separate block programs (a session
//   run each, forward and backward), recomputing what the granularity dropped; the last stage
//   also holds the head and the loss. The step is the schedule the trainer runs, instruction
//   by instruction (schedule-timeline.ts): every send costs one handoff (the transport's
//   latency plus bytes, as --calibrate measured it between two processes), the reduce and the
//   step their small collectives' latency, and the bubble is whatever waiting that leaves.
// Ranks beyond the free cores share them: on a quiet machine compute slows by running ranks /
// cores; beside other programs (the load the calibration saw), by (load + running) / (load + 1).
// In a pipeline only the ranks computing at that moment count (a waiting rank takes no core).
// Per-parameter traffic is charged where it happens: the calibrated fused step spends 249.4
// bytes per parameter (flat gradient, clipping, AdamW), which a layout with m micro-batches
// pays once per step in its update; each micro-batch only writes and accumulates the flat
// gradient. (Splitting the fused step by layer count instead put every layer's AdamW traffic
// into the per-layer time, so it was charged m times: 38% too much for one process, m = 4.)
// A pipeline block that recomputes less hands what it keeps out of ONNX Runtime: every kept
// tensor is a session output, written into a JavaScript buffer (one set per micro-batch in
// flight, reused step after step; onnxruntime-node returns a copy besides) and fed back to its
// backward later. The fused step never does this (its activations stay inside one run), so
// the handing out is charged on its own: the bytes (stashedBytesPerLayer) at the calibrated
// rate (outputCopySecondsPerByte).
import { type GptShape, type MachineSpec, STEP_BYTES_PER_PARAM, atscaleElementwiseBytes, gemmStepSeconds, gptParams, sessionRunSeconds } from './calibrate.js';
import type { Recompute } from './specs.js';
import { coRunSlowdown, profileFor } from './program-profile.js';
import { type TimelineInstr, simulateTimeline } from './schedule-timeline.js';
import { elementwiseSecondsPerByte, stashedBytesPerLayer, stepWorkingSetBytes, workingSetBytes } from './working-set.js';

export interface LocalLayout {
  dp: number;
  pp: number;
  /** Model chunks per pipeline rank (interleaved 1F1B). */
  v: number;
  /** Micro-batches per step (gradient accumulation), each `rows` sequences per replica. */
  microBatches: number;
  rows: number;
  recompute: Recompute;
}

export interface LocalPrediction {
  ms: number;
  /** Milliseconds of the parts (per step, on the critical path); `stash`: copying what pipeline
   * blocks keep for their backward out of ONNX Runtime. */
  parts: { compute: number; bubble: number; stash: number; pointToPoint: number; allReduce: number; update: number };
  /** Activations and gradients sent between pipeline ranks in one step (each charged one handoff). */
  handoffs: number;
  /** Where the programs' costs came from: timed at this shape by --calibrate, or the machine's rates. */
  basis: 'profiled programs' | 'calibrated rates';
  /** Pipeline layouts: per virtual stage, one micro-batch's forward and backward, ms alone on a core. */
  stageMs?: { forward: number[]; backward: number[] };
}

/** Seconds per byte of the loopback link (all-reduce bus bandwidth, or a quarter of memory bandwidth). */
function linkSecondsPerByte(spec: MachineSpec): number {
  return 1 / ((spec.loopbackBusbwGBs ?? spec.memBandwidthGBs / 4) * 1e9);
}

/** Seconds of one activation or gradient handoff of `bytes` between two pipeline ranks: the
 * transport's per-message latency plus its bytes at its per-byte rate, as --calibrate measured
 * them through the engine's own point-to-point path. A spec written before that: the loopback
 * link's bytes alone. */
export function handoffSeconds(spec: MachineSpec, bytes: number): number {
  if (spec.handoffSeconds === undefined) return bytes * linkSecondsPerByte(spec);
  return spec.handoffSeconds + bytes * (spec.handoffSecondsPerByte ?? linkSecondsPerByte(spec));
}

/** Latency of one small all-reduce between processes (a message each way and the wake-ups),
 * as --calibrate measured it; 0 for a spec written before. */
export function smallCollectiveSeconds(spec: MachineSpec): number {
  return spec.smallAllReduceSeconds ?? 0;
}

/** Of the bytes per parameter that atscale's fused step moves outside the per-layer activation
 * work (STEP_BYTES_PER_PARAM), the first 8 write the flat gradient (concat: read + write). */
const FLAT_GRAD_BYTES = 8;
/** Accumulating a micro-batch's flat gradient: one process scales it and adds it in its graph
 * (read 4 + write 4, then read 8 + write 4); a pipeline stage adds it in place on the host
 * (read 8 + write 4). */
const ACCUMULATE_BYTES = { graph: 20, host: 12 };

/** Seconds per byte of a session output on its way into JavaScript, as --calibrate measured it.
 * A spec written before that was measured: ONNX Runtime writes the output into the caller's
 * buffer and onnxruntime-node (1.30) still returns a copy of it in a new ArrayBuffer, so each
 * byte is written, read and written again: 3 bytes of traffic at the calibrated copy bandwidth
 * (which counts bytes read + written). */
function outputCopySecondsPerByte(spec: MachineSpec): number {
  return spec.outputCopySecondsPerByte ?? 3 / (spec.memBandwidthGBs * 1e9);
}

/** Bytes per parameter AdamW's program keeps touching: weights, gradient, both moments and the
 * decay mask read, weights and moments written. */
const UPDATE_WORKING_BYTES_PER_PARAM = 32;

/** `backgroundLoad`: other programs' runnable threads while the layout runs (default: what the
 * calibration ran beside, spec.backgroundLoad). */
export function predictLocalStepMs(g: Omit<GptShape, 'batch'>, l: LocalLayout, spec: MachineSpec, cores: number, backgroundLoad?: number, schedule?: { ranks: TimelineInstr[][] }): LocalPrediction {
  const shape = (nLayer: number): GptShape => ({ ...g, nLayer, batch: l.rows });
  const params = gptParams(shape(g.nLayer));
  const ranks = l.dp * l.pp;
  // Seconds per byte of non-GEMM traffic in a program touching `ws` bytes; all ranks' tensors
  // share the one L3 (working-set.ts). A spec without a calibrated rate has the copy bandwidth.
  const perByte = (ws: number) => elementwiseSecondsPerByte(spec, ws, ranks) ?? 1 / (spec.memBandwidthGBs * 1e9);
  // One micro-batch's forward + backward without the per-parameter traffic, both linear in
  // layers: GEMM seconds and non-GEMM bytes per layer, and of everything else (embedding, head, loss).
  const gemmOf = (n: number) => gemmStepSeconds(shape(n), spec);
  const bytesOf = (n: number) => atscaleElementwiseBytes(shape(n), gptParams(shape(n))) - STEP_BYTES_PER_PARAM * gptParams(shape(n));
  const layer = { gemm: gemmOf(2) - gemmOf(1), bytes: bytesOf(2) - bytesOf(1) };
  const head = { gemm: Math.max(gemmOf(1) - layer.gemm, 0), bytes: Math.max(bytesOf(1) - layer.bytes, 0) };
  const ms = (part: { gemm: number; bytes: number }, t: number) => 1000 * (part.gemm + part.bytes * t);
  // AdamW (with clipping), once per step over this rank's parameters, in its own program.
  const rankParams = params / l.pp;
  const updateMs = 1000 * (STEP_BYTES_PER_PARAM - FLAT_GRAD_BYTES) * rankParams * perByte(UPDATE_WORKING_BYTES_PER_PARAM * rankParams);
  // Ranks share the cores with each other and with other programs; the calibrated rates are one
  // thread's among the `backgroundLoad` others the calibration ran beside.
  const busy = spec.backgroundLoad ?? 0;
  // Programs timed at this very shape by --calibrate (program-profile.ts): each rank's calls cost
  // what they took alone on a core, and only their arrangement (schedule, sharing, messages,
  // collectives) is modelled.
  const prof = profileFor(spec.programs, g, l.rows);
  // With them, ranks computing at once also slow each other as much as --calibrate measured.
  // The one-process step and a pipeline rank's stage calls slow differently (co-run.ts).
  // (Recompute full on one pipeline stage runs the pipeline step, not the fused one.)
  const fusedStep = l.pp === 1 && l.recompute !== 'full';
  const kind = fusedStep ? 'fused' : 'stages';
  const shareOf = (running: number) => (Math.max(1, ((backgroundLoad ?? busy) + running) / cores) / Math.max(1, (busy + 1) / cores)) * coRunSlowdown(prof, kind, running, cores);
  const share = shareOf(ranks);
  const m = l.microBatches;
  // Data parallelism: the gradients' ring all-reduce (bytes over the link), and one more small
  // all-reduce (norm and loss) that costs its latency.
  const allReduce = l.dp > 1 ? (1000 * 2 * ((l.dp - 1) / l.dp) * 4 * rankParams * linkSecondsPerByte(spec)) : 0;
  const dpCollectives = allReduce + (l.dp > 1 ? 1000 * smallCollectiveSeconds(spec) : 0);
  if (fusedStep && prof) {
    const f = prof.fused[l.recompute as 'none' | 'selective'];
    const compute = m * f.microMs * share;
    return { ms: compute + f.updateMs * share + dpCollectives, parts: { compute, bubble: 0, stash: 0, pointToPoint: 0, allReduce: dpCollectives, update: f.updateMs * share }, handoffs: 0, basis: 'profiled programs' };
  }
  if (l.pp === 1) {
    // The fused micro-step holds every layer's activations and the head's logits at once.
    const t = perByte(stepWorkingSetBytes(shape(g.nLayer), params));
    const accumulateMs = 1000 * (FLAT_GRAD_BYTES + ACCUMULATE_BYTES.graph) * params * t;
    const compute = m * (g.nLayer * ms(layer, t) + ms(head, t) + accumulateMs) * share;
    return { ms: compute + updateMs * share + dpCollectives, parts: { compute, bubble: 0, stash: 0, pointToPoint: 0, allReduce: dpCollectives, update: updateMs * share }, handoffs: 0, basis: 'calibrated rates' };
  }
  if (!schedule || schedule.ranks.length !== l.pp) throw new Error(`the step of a pipeline layout (pp ${l.pp}) is timed on the schedule the trainer runs: pass its instructions (engine/pipeline/schedule.ts buildSchedule), one list per pipeline rank`);
  const C = g.nEmbd;
  const T = g.blockSize;
  const stageLayers = g.nLayer / l.pp;
  const rows = { ...g, batch: l.rows };
  // A stage's programs keep touching what its in-flight micro-batches keep (1F1B: up to p of
  // them on the first stage; each block's input besides what the granularity keeps), the one
  // layer a backward rebuilds, the head's logits (the last stage's time is the stage time) and
  // its parameters' arrays.
  const kept = stashedBytesPerLayer(rows, l.recompute) + 4 * l.rows * T * C;
  const ws = workingSetBytes(rows, { keptLayers: Math.min(m, l.pp) * stageLayers, keptPerLayer: kept, head: true, params: rankParams, rebuilt: l.recompute !== 'none' });
  const t = perByte(ws);
  // Recomputation in backward: the block forward again (the calibrated forward share of a
  // layer's forward + backward; a third, as the FLOPs split, for a spec without it), or only
  // the attention core (its share of the layer's FLOPs, of that).
  const forward = spec.forwardFraction ?? 1 / 3;
  const coreShare = (2 * T * C) / (24 * C * C + 4 * T * C);
  const extra = l.recompute === 'full' ? forward : l.recompute === 'selective' ? coreShare * forward : 0;
  const layerParams = gptParams(shape(2)) - gptParams(shape(1));
  const actBytes = 4 * l.rows * T * C;
  const copy = outputCopySecondsPerByte(spec);
  const run = sessionRunSeconds(spec);
  const layerS = ms(layer, t) / 1000;
  // One virtual stage's programs for one micro-batch, CPU seconds alone on a core (`stash`:
  // with the kept tensors copied out of ONNX Runtime). Each block is a session run forward and
  // one backward; the forward hands its output to JavaScript (into a reused buffer, at the
  // calibrated rate); the backward writes its input gradient and its parameters' gradients
  // into buffers it reuses (engine/pipeline/stage.ts; the copy onnxruntime-node returns
  // besides is not charged here), which are then added into the rank's gradient on the host.
  // Stage 0 also runs the embedding forward and backward; the last stage runs the head and the
  // loss (one program, in its backward).
  const V = l.pp * l.v;
  const n = g.nLayer / V;
  const seg = prof?.stages[l.recompute];
  const costs = (o: { stash: boolean }) => {
    const fwd: number[] = [];
    const bwd: number[] = [];
    if (seg) {
      // The profiled calls already hold what they keep handed out of ONNX Runtime (no stash term).
      for (let j = 0; j < V; j++) {
        fwd.push((n * seg.blockForwardMs + (j === 0 ? seg.embedForwardMs : 0) + (j === V - 1 ? seg.headForwardMs : 0)) / 1000);
        bwd.push((n * seg.blockBackwardMs + (j === 0 ? seg.embedBackwardMs : 0) + (j === V - 1 ? seg.headBackwardMs : 0)) / 1000);
      }
      return { fwd, bwd };
    }
    for (let j = 0; j < V; j++) {
      const embed = j === 0 ? run : 0;
      const stash = o.stash ? stashedBytesPerLayer(rows, l.recompute) * copy : 0;
      fwd.push(n * (forward * layerS + run + actBytes * copy + stash) + embed);
      const accumulate = (FLAT_GRAD_BYTES + ACCUMULATE_BYTES.host) * n * layerParams * t;
      const headS = j === V - 1 ? ms(head, t) / 1000 + run + (FLAT_GRAD_BYTES + ACCUMULATE_BYTES.host) * (params - g.nLayer * layerParams) * t : 0;
      bwd.push(n * ((1 - forward + extra) * layerS + run) + accumulate + headS + embed);
    }
    return { fwd, bwd };
  };
  // Collectives after the last micro-batch: the tied embedding's gradient between the first and
  // the last stage (vocab x width, ring over 2), the gradients over dp, then in the step one
  // all-reduce of the norm and the loss over the world: each a small-message latency (measured
  // by --calibrate) plus its bytes over the link.
  const tieBytes = 4 * g.vocab * C;
  const reduceS = smallCollectiveSeconds(spec) + tieBytes * linkSecondsPerByte(spec) + allReduce / 1000;
  const sim = (o: { stash: boolean; handoff: boolean; collectives: boolean; update: boolean }) => {
    const { fwd, bwd } = costs(o);
    return simulateTimeline(schedule.ranks, {
      forward: fwd, backward: bwd,
      handoff: o.handoff ? handoffSeconds(spec, actBytes + 8) : 0,
      reduceMembers: [0, l.pp - 1],
      reduce: o.collectives ? reduceS : 0,
      stepCollective: o.collectives ? smallCollectiveSeconds(spec) : 0,
      // AdamW over this rank's parameters: the one process's per-step rest, by its share of them.
      update: o.update ? (prof ? (prof.fused.none.updateMs * rankParams) / params : updateMs) / 1000 : 0,
      slowdown: (active) => shareOf(active * l.dp),
    });
  };
  const all = { stash: true, handoff: true, collectives: true, update: true };
  const full = sim(all);
  const bare = sim({ stash: false, handoff: false, collectives: false, update: false });
  // Each part is what the step loses without it; compute is the busiest rank's forwards and
  // backwards, and the bubble what remains (idle time waiting on other stages).
  const without = (k: keyof typeof all) => 1000 * (full.makespan - sim({ ...all, [k]: false }).makespan);
  const msTotal = 1000 * full.makespan;
  const compute = 1000 * Math.max(...bare.computing);
  const stash = without('stash');
  const pointToPoint = without('handoff');
  const collectives = without('collectives');
  const update = without('update');
  const bubble = msTotal - compute - stash - pointToPoint - collectives - update;
  const c = costs(all);
  return { ms: msTotal, parts: { compute, bubble, stash, pointToPoint, allReduce: collectives, update }, handoffs: full.handoffs, basis: seg ? 'profiled programs' : 'calibrated rates', stageMs: { forward: c.fwd.map((x) => 1000 * x), backward: c.bwd.map((x) => 1000 * x) } };
}
