// Reading ONNX Runtime's profile (SessionOptions.enableProfiling): a Chrome trace, one event per
// kernel per run. Node names carry the module path (onnx/model.ts onnxNodeName), so a kernel's
// time goes back to the module that recorded it, forward and backward apart.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { BACKWARD_MARK } from '../ir/graph.js';
import type { LoweredNode } from './execute.js';

/** The newest PREFIX_*.json written at or after `sinceMs` (ORT appends a timestamp to the prefix). */
export function newestProfileFile(prefix: string, sinceMs: number): string {
  const dir = dirname(prefix);
  const base = basename(prefix);
  const found = readdirSync(dir)
    .filter((f) => f.startsWith(`${base}_`) && f.endsWith('.json'))
    .map((f) => ({ f: join(dir, f), t: statSync(join(dir, f)).mtimeMs }))
    .filter((x) => x.t >= sinceMs - 1000)
    .sort((a, b) => b.t - a.t);
  if (!found[0]) throw new Error(`ONNX Runtime wrote no profile ${prefix}_*.json in ${dir}`);
  return found[0].f;
}

interface TraceEvent {
  cat?: string;
  name?: string;
  ph?: string;
  ts?: number;
  dur?: number;
  args?: { op_name?: string; [k: string]: unknown };
}

export interface KernelTime {
  /** ONNX node name as the trace gives it (ONNX Runtime may rename nodes it fused). */
  node: string;
  op: string;
  /** Module path ('' for nodes outside any module) and pass. */
  module: string;
  backward: boolean;
  us: number;
}

export interface StepProfile {
  /** Wall time of the profiled run (ONNX Runtime's model_run event), microseconds. */
  stepUs: number;
  /** Runs in the trace; the summary is of the last one (earlier ones include warm-up). */
  runs: number;
  kernels: KernelTime[];
  /** FLOPs of the lowered graph by module and pass (from our own graph, not ORT's fused one). */
  flops: Map<string, { fwd: number; bwd: number }>;
}

/** Splits `a.b.c#bwd::Op_12` (or ORT's derived names, which keep our prefix) into module and pass. */
export function scopeOfNodeName(node: string): { module: string; backward: boolean } {
  const cut = node.indexOf('::');
  if (cut < 0) return { module: '', backward: false };
  const scope = node.slice(0, cut);
  const backward = scope.endsWith(BACKWARD_MARK);
  return { module: backward ? scope.slice(0, -BACKWARD_MARK.length) : scope, backward };
}

/** Kernel times of the last run in an ONNX Runtime trace, attributed to modules. */
export function readStepProfile(traceFile: string, nodes: readonly LoweredNode[]): StepProfile {
  let events: TraceEvent[];
  try {
    const parsed = JSON.parse(readFileSync(traceFile, 'utf8')) as TraceEvent[] | { traceEvents: TraceEvent[] };
    events = Array.isArray(parsed) ? parsed : parsed.traceEvents;
  } catch (e) {
    throw new Error(`cannot read ONNX Runtime profile ${traceFile}: ${(e as Error).message}`);
  }
  const runs = events.filter((e) => e.cat === 'Session' && e.name === 'model_run');
  const last = runs[runs.length - 1];
  if (!last || last.ts === undefined || last.dur === undefined) throw new Error(`profile ${traceFile} has no model_run event; run the session at least once before ending profiling`);
  const t0 = last.ts;
  const t1 = last.ts + last.dur;
  const kernels: KernelTime[] = [];
  for (const e of events) {
    if (e.cat !== 'Node' || !e.name?.endsWith('_kernel_time') || e.ts === undefined || e.dur === undefined) continue;
    if (e.ts < t0 || e.ts > t1) continue;
    const node = e.name.slice(0, -'_kernel_time'.length);
    kernels.push({ node, op: e.args?.op_name ?? '?', ...scopeOfNodeName(node), us: e.dur });
  }
  const flops = new Map<string, { fwd: number; bwd: number }>();
  for (const n of nodes) {
    if (!n.flops) continue;
    const s = scopeOfNodeName(`${n.scope}::`);
    const f = flops.get(s.module) ?? { fwd: 0, bwd: 0 };
    if (s.backward) f.bwd += n.flops;
    else f.fwd += n.flops;
    flops.set(s.module, f);
  }
  return { stepUs: last.dur, runs: runs.length, kernels, flops };
}
