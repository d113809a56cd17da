// Graph passes, each a rebuild of the program into a fresh graph: dead-code elimination,
// common-subexpression elimination, constant folding. They run before lowering, and they
// also make the signature of a traced step independent of how the user happened to write it.
import { Graph, type Node, type Program } from './graph.js';
import type { HostValue } from './value.js';
import { numel } from './shape.js';
import { isCommunication } from './partition.js';
import { createHash } from 'node:crypto';

/** Evaluates one node on constant inputs (the reference interpreter provides it). */
export type Evaluate = (node: Node, inputs: HostValue[]) => HostValue;

/** Rebuilds `keep` nodes (in order) into a new graph; `replace` may substitute a node. */
function rebuild(p: Program, keep: (n: Node) => boolean, replace?: (n: Node, map: number[], g: Graph) => number | undefined): Program {
  const g = new Graph();
  const map: number[] = new Array(p.graph.nodes.length).fill(-1);
  for (const n of p.graph.nodes) {
    if (!keep(n)) continue;
    const r = replace?.(n, map, g);
    map[n.id] = r ?? g.add(n.op, n.inputs.map((i) => map[i]!), n.attrs, n.value, n.scope);
  }
  return { graph: g, inputs: p.inputs.map((i) => map[i]!), outputs: p.outputs.map((o) => map[o]!) };
}

export function deadCodeElimination(p: Program): Program {
  const live = new Uint8Array(p.graph.nodes.length);
  for (const i of p.inputs) live[i] = 1;
  for (const o of p.outputs) live[o] = 1;
  for (let id = p.graph.nodes.length - 1; id >= 0; id--) {
    if (!live[id]) continue;
    for (const i of p.graph.nodes[id]!.inputs) live[i] = 1;
  }
  return rebuild(p, (n) => live[n.id] === 1);
}

const SMALL_CONST = 64;

/** Small constants are keyed by their values, large ones by a hash of their bytes (so, for
 * example, one causal mask per layer becomes one mask). */
function constKey(v: HostValue): string {
  const head = `${v.dtype}[${v.shape.join(',')}]`;
  if (v.data.length <= SMALL_CONST) return head + Array.from(v.data as ArrayLike<number | bigint>, (x) => (Object.is(x, -0) ? '-0' : String(x))).join(',');
  return head + createHash('sha256').update(new Uint8Array(v.data.buffer, v.data.byteOffset, v.data.byteLength)).digest('hex');
}

export function commonSubexpressionElimination(p: Program): Program {
  const seen = new Map<string, number>();
  return rebuild(
    p,
    () => true,
    (n, map, g) => {
      if (n.op === 'input') return undefined;
      const key = n.op === 'const' ? `const:${constKey(n.value!)}` : `${n.op}(${n.inputs.map((i) => map[i]).join(',')})${JSON.stringify(n.attrs)}`;
      const hit = seen.get(key);
      if (hit !== undefined) return hit;
      const id = g.add(n.op, n.inputs.map((i) => map[i]!), n.attrs, n.value, n.scope);
      seen.set(key, id);
      return id;
    },
  );
}

/** Folds nodes whose inputs are all constants, up to a size bound so weights-sized
 * intermediates are never materialised at compile time. */
export function constantFolding(p: Program, evaluate: Evaluate, maxElements = 1 << 16): Program {
  const folded = new Map<number, HostValue>();
  return rebuild(
    p,
    () => true,
    (n, map, g) => {
      if (n.op === 'const') {
        folded.set(n.id, n.value!);
        return undefined;
      }
      // A collective's value depends on the other ranks, never only on its (constant) input.
      if (n.op === 'input' || n.inputs.length === 0 || numel(n.shape) > maxElements || isCommunication(n)) return undefined;
      const vals = n.inputs.map((i) => folded.get(i));
      if (vals.some((v) => v === undefined)) return undefined;
      const v = evaluate(n, vals as HostValue[]);
      folded.set(n.id, v);
      return g.add('const', [], { shape: v.shape, dtype: v.dtype }, v, n.scope);
    },
  );
}

/**
 * Every permutation of a float32 constant becomes a constant, whatever its size, and programs
 * that pass the same `cache` share one array per constant and permutation. For graphs that
 * keep their weights as constants (a server's decode and prefill graphs): a transposed weight
 * (a tied output layer, a linear layer stored [out, in]) is otherwise transposed again by ONNX
 * Runtime's own constant folding in every session, a copy per graph.
 */
export function foldConstantPermutes(p: Program, evaluate: Evaluate, cache: Map<HostValue['data'], Map<string, HostValue>>): Program {
  return rebuild(
    p,
    () => true,
    (n, map, g) => {
      if (n.op !== 'permute') return undefined;
      const src = p.graph.nodes[n.inputs[0]!]!;
      if (src.op !== 'const' || src.value!.dtype !== 'float32') return undefined;
      let byPerm = cache.get(src.value!.data);
      if (!byPerm) cache.set(src.value!.data, (byPerm = new Map()));
      const key = String(n.attrs.perm);
      let v = byPerm.get(key);
      if (!v) byPerm.set(key, (v = key === '1,0' ? transpose2d(src.value!) : evaluate(n, [src.value!])));
      return g.add('const', [], { shape: v.shape, dtype: v.dtype }, v, n.scope);
    },
  );
}

/** A float32 matrix transposed (the common case of foldConstantPermutes, without the float64
 * round trip of the reference kernel: a tied output layer has tens of millions of entries). */
function transpose2d(v: HostValue): HostValue {
  const [r, c] = v.shape as [number, number];
  const src = v.data as Float32Array;
  const out = new Float32Array(r * c);
  for (let i = 0; i < r; i++) for (let j = 0; j < c; j++) out[j * r + i] = src[i * c + j]!;
  return { dtype: 'float32', shape: [c, r], data: out };
}

/**
 * A sum of unslices that tile one axis of their common shape (the gradient of a split: each
 * part's gradient padded with zeros to the whole, then added) becomes one concat of the parts:
 * one write of the result instead of a zero-padded copy per part and an add per part.
 */
export function unsliceSumsToConcat(p: Program): Program {
  const nodes = p.graph.nodes;
  const uses = new Uint32Array(nodes.length);
  for (const n of nodes) for (const i of n.inputs) uses[i]!++;
  for (const o of p.outputs) uses[o]!++;
  const leaves = (id: number, top: boolean, out: number[]): void => {
    const n = nodes[id]!;
    if (n.op === 'add' && (top || uses[id] === 1) && sameShape(nodes[n.inputs[0]!]!.shape, n.shape) && sameShape(nodes[n.inputs[1]!]!.shape, n.shape)) {
      for (const i of n.inputs) leaves(i, false, out);
    } else out.push(id);
  };
  return rebuild(p, () => true, (n, map, g) => {
    if (n.op !== 'add') return undefined;
    const parts: number[] = [];
    leaves(n.id, true, parts);
    const axis = tiledAxis(parts.map((id) => nodes[id]!), nodes, n.shape);
    if (axis === undefined) return undefined;
    const sorted = [...parts].sort((a, b) => (nodes[a]!.attrs.starts as number[])[axis]! - (nodes[b]!.attrs.starts as number[])[axis]!);
    return g.add('concat', sorted.map((id) => map[nodes[id]!.inputs[0]!]!), { axis }, undefined, n.scope);
  });
}

/** The axis that unslices `parts` tile exactly (unit steps, whole extent on every other axis), if any. */
function tiledAxis(parts: Node[], nodes: readonly Node[], shape: readonly number[]): number | undefined {
  if (parts.length < 2 || parts.some((u) => u.op !== 'unslice' || !sameShape(u.shape, shape) || (u.attrs.steps as number[]).some((st) => st !== 1))) return undefined;
  const spans = parts.map((u) => ({ start: u.attrs.starts as number[], len: nodes[u.inputs[0]!]!.shape }));
  const axes = shape.map((_, d) => d).filter((d) => spans.some((s) => s.start[d] !== 0 || s.len[d] !== shape[d]));
  if (axes.length !== 1) return undefined;
  const axis = axes[0]!;
  const sorted = spans.map((s) => [s.start[axis]!, s.len[axis]!] as const).sort((a, b) => a[0] - b[0]);
  let at = 0;
  for (const [start, len] of sorted) {
    if (start !== at) return undefined;
    at += len;
  }
  return at === shape[axis] ? axis : undefined;
}

function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

export function optimize(p: Program, evaluate?: Evaluate): Program {
  let q = deadCodeElimination(p);
  if (evaluate) q = constantFolding(q, evaluate);
  q = commonSubexpressionElimination(q);
  q = unsliceSumsToConcat(q);
  return deadCodeElimination(q);
}
