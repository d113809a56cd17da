// Runs a whole Program through the reference kernels, and adapts them for constant folding.
import type { Node, Program } from '../../ir/graph.js';
import { type HostValue, toNumbers, fromNumbers } from '../../ir/value.js';
import { type RefValue, evaluateRef } from './kernels.js';

export type { RefValue };

export function refFromHost(v: HostValue): RefValue {
  return { dtype: v.dtype, shape: [...v.shape], data: toNumbers(v) };
}

export function hostFromRef(v: RefValue): HostValue {
  return fromNumbers(v.dtype, v.shape, v.data);
}

export function runReference(p: Program, feeds: RefValue[]): RefValue[] {
  if (feeds.length !== p.inputs.length) throw new Error(`reference: expected ${p.inputs.length} inputs, got ${feeds.length}`);
  const vals = new Map<number, RefValue>();
  p.inputs.forEach((id, i) => vals.set(id, feeds[i]!));
  for (const n of p.graph.nodes) {
    if (vals.has(n.id)) continue;
    if (n.op === 'input') throw new Error(`reference: input node ${n.id} (${String(n.attrs.name)}) was not fed`);
    vals.set(n.id, n.op === 'const' ? refFromHost(n.value!) : evaluateRef(n, n.inputs.map((i) => vals.get(i)!)));
  }
  return p.outputs.map((o) => vals.get(o)!);
}

/** Constant folding's evaluator: reference kernels, rounded to the node's dtype. */
export function foldEvaluate(n: Node, ins: HostValue[]): HostValue {
  return hostFromRef(evaluateRef(n, ins.map(refFromHost)));
}
