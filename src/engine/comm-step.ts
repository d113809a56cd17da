// Runs one communication step of a partitioned program (ir/partition.ts) on process groups.
// ProcessGroup collectives work on flat float buffers (float32, float64 for --dtype float64), rank-major; a collective node
// concatenates or splits along any `dim`, so the values are regrouped around the call:
//   all_gather:     [P, outer, inner] as the ranks send it -> [outer, P, inner] (dim-major)
//   reduce_scatter: [outer, P, inner] as the graph holds it -> [P, outer, inner] before the call
// where outer is the product of the dims before `dim`. With outer = 1 (dim 0, or only size-1
// dims before it) both layouts are the same buffer and nothing is copied.
// All-reduces of one step over one group go as one fused buffer: one round trip, not one per
// tensor (the backward of a transformer has one per block, all ready together).
import type { ProcessGroup } from '../dist/index.js';
import type { CommCall, CommStep } from '../ir/partition.js';
import type { HostValue } from '../ir/value.js';
import { allocFloat, floatDTypeOf, floatToHalfBits, halfBitsToFloat, type FloatArray } from '../ir/dtype.js';
import { numel, shapeStr } from '../ir/shape.js';

/** The values of a run so far, by original node id, and which of them this run allocated
 * (those a collective may overwrite in place when nothing reads them afterwards). */
export interface RunValues {
  get(id: number): HostValue;
  set(id: number, v: HostValue, owned: boolean): void;
  /** True when `id` was made in this run and nothing else (no other read, no output) needs it. */
  consumable(id: number, step: number): boolean;
}

/** float32 and bfloat16 travel as Float32Array already, float64 as Float64Array; float16
 * arrives as bits (and travels as float32). */
function asFloat(v: HostValue): FloatArray {
  if (v.dtype !== 'float16') return v.data as FloatArray;
  const bits = v.data as Uint16Array;
  const out = new Float32Array(bits.length);
  for (let i = 0; i < bits.length; i++) out[i] = halfBitsToFloat(bits[i]!);
  return out;
}

function fromFloat(call: CommCall, data: FloatArray): HostValue {
  if (call.dtype !== 'float16') return { dtype: call.dtype, shape: [...call.outShape], data };
  const bits = new Uint16Array(data.length);
  for (let i = 0; i < data.length; i++) bits[i] = floatToHalfBits(data[i]!);
  return { dtype: call.dtype, shape: [...call.outShape], data: bits };
}

/** Moves `parts` x `outer` blocks of `inner` elements: src[a][b] -> dst[b][a]. */
function swapBlocks(src: FloatArray, a: number, b: number, inner: number): FloatArray {
  const dst = allocFloat(floatDTypeOf(src), src.length);
  for (let i = 0; i < a; i++) for (let j = 0; j < b; j++) dst.set(src.subarray((i * b + j) * inner, (i * b + j + 1) * inner), (j * a + i) * inner);
  return dst;
}

/** outer and inner of a split of `shape` into `parts` along `dim` (inner: one part's block). */
function blocks(shape: readonly number[], dim: number, parts: number): { outer: number; inner: number } {
  return { outer: numel(shape.slice(0, dim)), inner: numel(shape.slice(dim)) / parts };
}

async function allReduce(calls: CommCall[], pg: ProcessGroup, vals: RunValues, step: number, op: 'sum' | 'max'): Promise<void> {
  const only = calls[0]!;
  // One tensor that nothing else reads: reduce it where it lies.
  if (calls.length === 1 && only.dtype !== 'float16' && vals.consumable(only.input, step)) {
    const data = vals.get(only.input).data as FloatArray;
    await pg.allReduce(data, op);
    vals.set(only.id, fromFloat(only, data), true);
    return;
  }
  const sizes = calls.map((c) => numel(c.inShape));
  const fused = allocFloat(only.dtype === 'float64' ? 'float64' : 'float32', sizes.reduce((a, b) => a + b, 0));
  let at = 0;
  calls.forEach((c, i) => {
    fused.set(asFloat(vals.get(c.input)), at);
    at += sizes[i]!;
  });
  await pg.allReduce(fused, op);
  at = 0;
  calls.forEach((c, i) => {
    vals.set(c.id, fromFloat(c, fused.subarray(at, at + sizes[i]!)), true);
    at += sizes[i]!;
  });
}

async function allGather(c: CommCall, pg: ProcessGroup, vals: RunValues): Promise<void> {
  const local = asFloat(vals.get(c.input));
  const gathered = allocFloat(floatDTypeOf(local), local.length * c.parts);
  await pg.allGather(local, gathered);
  const { outer, inner } = blocks(c.outShape, c.dim, c.parts);
  vals.set(c.id, fromFloat(c, outer === 1 ? gathered : swapBlocks(gathered, c.parts, outer, inner)), true);
}

async function reduceScatter(c: CommCall, pg: ProcessGroup, vals: RunValues): Promise<void> {
  const full = asFloat(vals.get(c.input));
  const { outer, inner } = blocks(c.inShape, c.dim, c.parts);
  const out = allocFloat(floatDTypeOf(full), full.length / c.parts);
  await pg.reduceScatter(outer === 1 ? full : swapBlocks(full, outer, c.parts, inner), out);
  vals.set(c.id, fromFloat(c, out), true);
}

/** Checks, before any part runs, that every axis a step talks over has a group of the right size. */
export function checkGroups(steps: readonly CommStep[], groups: Readonly<Record<string, ProcessGroup>>): void {
  for (const s of steps) {
    for (const c of s.calls) {
      const pg = groups[c.group];
      const have = Object.keys(groups);
      if (!pg) throw new Error(`this program has a ${c.kind} over mesh axis '${c.group}' (${c.parts} ranks) but was compiled without a process group for it (groups given: ${have.length ? have.join(', ') : 'none'}); pass { ${c.group}: <the ProcessGroup of that axis> } as the groups argument of NamedExecutable.compile`);
      if (pg.worldSize !== c.parts) throw new Error(`mesh axis '${c.group}': the program was traced for ${c.parts} ranks but its process group has ${pg.worldSize}; trace the model with the axis size of the group`);
      if ((c.kind === 'all_gather' || c.kind === 'reduce_scatter') && !(c.dim >= 0 && c.dim < c.inShape.length)) throw new Error(`${c.kind} over '${c.group}': dim ${c.dim} is outside the ${c.inShape.length} dims of ${shapeStr(c.inShape)}`);
    }
  }
}

/** Runs the collectives of one step, all-reduces fused per (group, op), in a fixed order that
 * every rank derives from the same program (collectives must be called in the same order). */
export async function runCommStep(s: CommStep, index: number, groups: Readonly<Record<string, ProcessGroup>>, vals: RunValues): Promise<void> {
  const fused = new Map<string, CommCall[]>();
  const ordered: (CommCall | CommCall[])[] = [];
  for (const c of s.calls) {
    if (c.kind !== 'all_reduce_sum' && c.kind !== 'all_reduce_max') {
      ordered.push(c);
      continue;
    }
    const key = `${c.group}|${c.kind}|${c.dtype === 'float64' ? 'float64' : 'float32'}`;
    let list = fused.get(key);
    if (!list) {
      list = [];
      fused.set(key, list);
      ordered.push(list);
    }
    list.push(c);
  }
  for (const item of ordered) {
    const first = Array.isArray(item) ? item[0]! : item;
    const pg = groups[first.group]!;
    try {
      if (Array.isArray(item)) await allReduce(item, pg, vals, index, first.kind === 'all_reduce_max' ? 'max' : 'sum');
      else if (item.kind === 'all_gather') await allGather(item, pg, vals);
      else await reduceScatter(item, pg, vals);
    } catch (e) {
      const what = Array.isArray(item) && item.length > 1 ? `${item.length} fused ${first.kind}s` : `${first.kind} of ${shapeStr(first.inShape)}`;
      throw new Error(`communication step ${s.level} (${what} over '${first.group}'): ${(e as Error).message}`);
    }
  }
}
