// Pipeline schedules as an event timeline, not a formula: every stage runs its forward and
// backward passes in the order its schedule prescribes, each as soon as its input has arrived
// from the neighbouring stage (plus the send time) and the stage is free. The step's pipeline
// time is when the last stage goes idle; what each stage spent waiting is its bubble.
// Schedules: GPipe (all forwards, then all backwards), 1F1B (PipeDream-Flush, Narayanan et al.
// 2021), Megatron's interleaved 1F1B with v model chunks per GPU, and zero-bubble (Qi et al.
// 2024, ZB-H1 style): backward split into the input gradient B, on the critical path, and the
// weight gradient W, which fills the stage's idle time.
import type { Schedule } from './specs.js';

export interface PipelineInput {
  schedule: Schedule;
  stages: number;
  /** Model chunks per stage (interleaving); virtual stage j = chunk x stages + stage. */
  chunks: number;
  microBatches: number;
  /** Per virtual stage: forward, full backward (input + weight gradients, with recompute) seconds. */
  forward: number[];
  backward: number[];
  /** Per virtual stage: the weight-gradient part of `backward` (zero-bubble defers it). */
  weightGrad: number[];
  /** Send time of one micro-batch's activations (or their gradients) from virtual stage j to j + 1. */
  send: number[];
}

export interface PipelineResult {
  /** When the last stage finished its last pass. */
  makespan: number;
  /** Per stage: when it finished, and the time it computed. */
  finish: number[];
  busy: number[];
  /** Per stage: duration of its last backward pass (what a bucketed DP reduce overlaps). */
  lastBackward: number[];
}

interface Op {
  kind: 'F' | 'B';
  mb: number;
  chunk: number;
}

/** The order in which stage i runs its passes. */
export function stageOrder(schedule: Schedule, p: number, v: number, m: number, i: number): Op[] {
  const ops: Op[] = [];
  if (schedule === 'gpipe') {
    for (let mb = 0; mb < m; mb++) for (let c = 0; c < v; c++) ops.push({ kind: 'F', mb, chunk: c });
    for (let mb = 0; mb < m; mb++) for (let c = v - 1; c >= 0; c--) ops.push({ kind: 'B', mb, chunk: c });
    return ops;
  }
  if (v === 1) {
    const warm = Math.min(p - i - 1, m);
    for (let k = 0; k < warm; k++) ops.push({ kind: 'F', mb: k, chunk: 0 });
    for (let k = 0; k < m - warm; k++) {
      ops.push({ kind: 'F', mb: warm + k, chunk: 0 });
      ops.push({ kind: 'B', mb: k, chunk: 0 });
    }
    for (let k = m - warm; k < m; k++) ops.push({ kind: 'B', mb: k, chunk: 0 });
    return ops;
  }
  // Megatron's interleaved schedule: micro-batches go through the chunks in groups of p.
  const total = m * v;
  const at = (k: number, forward: boolean): Op => {
    const group = Math.floor(k / p) % v;
    const chunk = forward ? group : v - 1 - group;
    const mb = Math.floor(k / (p * v)) * p + (k % p);
    return { kind: forward ? 'F' : 'B', mb, chunk };
  };
  const warm = Math.min((p - i - 1) * 2 + (v - 1) * p, total);
  for (let k = 0; k < warm; k++) ops.push(at(k, true));
  for (let k = 0; k < total - warm; k++) {
    ops.push(at(warm + k, true));
    ops.push(at(k, false));
  }
  for (let k = total - warm; k < total; k++) ops.push(at(k, false));
  return ops;
}

export function simulatePipeline(x: PipelineInput): PipelineResult {
  const p = x.stages, v = x.chunks, m = x.microBatches, V = p * v;
  const zeroBubble = x.schedule === 'zero-bubble';
  const fDone = new Float64Array(m * V).fill(NaN);
  const bDone = new Float64Array(m * V).fill(NaN);
  const orders = Array.from({ length: p }, (_, i) => stageOrder(x.schedule, p, v, m, i));
  const next = new Array<number>(p).fill(0);
  const free = new Array<number>(p).fill(0);
  const busy = new Array<number>(p).fill(0);
  const lastBackward = new Array<number>(p).fill(0);
  const pendingW: number[][] = Array.from({ length: p }, () => []);
  const run = (i: number, start: number, d: number) => {
    free[i] = start + d;
    busy[i] += d;
    return free[i]!;
  };
  let remaining = orders.reduce((a, o) => a + o.length, 0);
  while (remaining > 0) {
    let progress = false;
    for (let i = 0; i < p; i++) {
      const order = orders[i]!;
      while (next[i]! < order.length) {
        const op = order[next[i]!]!;
        const j = op.chunk * p + i;
        let ready: number;
        if (op.kind === 'F') {
          ready = j === 0 ? 0 : fDone[op.mb * V + j - 1]! + x.send[j - 1]!;
        } else {
          ready = j === V - 1 ? fDone[op.mb * V + j]! : bDone[op.mb * V + j + 1]! + x.send[j]!;
        }
        if (Number.isNaN(ready)) break; // its input is not computed yet: another stage first
        // Zero-bubble: spend idle time before this pass on deferred weight gradients.
        if (zeroBubble) {
          const q = pendingW[i]!;
          while (q.length > 0 && free[i]! + q[0]! <= ready) run(i, free[i]!, q.shift()!);
        }
        const start = Math.max(free[i]!, ready);
        if (op.kind === 'F') {
          fDone[op.mb * V + j] = run(i, start, x.forward[j]!);
        } else {
          const full = x.backward[j]!;
          const w = zeroBubble ? x.weightGrad[j]! : 0;
          bDone[op.mb * V + j] = run(i, start, full - w);
          if (zeroBubble) pendingW[i]!.push(w);
          lastBackward[i] = full;
        }
        next[i]!++;
        remaining--;
        progress = true;
      }
    }
    if (!progress) throw new Error(`pipeline simulation deadlocked (${x.schedule}, p ${p}, v ${v}, m ${m}): a schedule bug`);
  }
  for (let i = 0; i < p; i++) for (const w of pendingW[i]!) run(i, free[i]!, w);
  return { makespan: Math.max(...free), finish: free, busy, lastBackward };
}
