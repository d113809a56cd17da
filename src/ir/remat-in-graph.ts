// Selective recomputation inside ONE graph (the fused step: forward, backward and optimizer in
// a single ONNX Runtime session). remat.ts cuts a forward+backward into two programs with the
// saved tensors between them; here there is no cut to move nodes across, so the attention core
// (the T x T scores, softmax, dropout mask and dropped probabilities, Korthikanti et al. 2022,
// 4.1) is cloned for the backward: the backward's nodes read the clones, the forward's copies
// die as soon as att @ v has read them, and the B x nh x T x T tensors no longer live from a
// layer's forward to its backward.
//
// A clone with the same inputs as its original would be merged back by common-subexpression
// elimination (ours and ONNX Runtime's), and even unmerged it could be scheduled anywhere after
// q and k, i.e. in the forward, which saves nothing. So each component's roots read their first
// non-constant input through a gate, Where(c, x, x) with c a bool cast of one element of a
// tensor of that layer's backward: the value is x whatever c is, but the clones now depend on
// the backward having reached that layer.
import { BACKWARD_MARK, Graph, type Program } from './graph.js';
import { ancestors, attentionCore } from './remat.js';
import { optimize } from './passes.js';

export interface InGraphRemat {
  program: Program;
  /** Attention cores recomputed (one per layer). */
  components: number;
  /** Forward elements each step no longer keeps alive until the backward. */
  elementsFreed: number;
}

/**
 * Recomputes the attention core of `program` in its backward. `lossOutput`: the index of the
 * output that is the forward result (its ancestors are the forward); `seq`: the sequence length.
 */
export function recomputeAttentionInGraph(program: Program, lossOutput: number, seq: number): InGraphRemat {
  const p = optimize(program);
  const nodes = p.graph.nodes;
  const n = nodes.length;
  const fwd = ancestors(nodes, [p.outputs[lossOutput]!]);
  const core = attentionCore(nodes, fwd, seq);
  // Beside the attention core, outputs this one graph would keep next to their inputs: a
  // LayerNorm's normalised and affine outputs (its backward reads its input anyway; pipeline
  // stages redo them too, see remat.ts) and a GELU's output (its backward reads its input).
  for (const node of nodes) {
    if (!fwd[node.id]) continue;
    if (node.op === 'gelu' || node.op === 'layer_norm') core[node.id] = 1;
    else if ((node.op === 'mul' || node.op === 'add') && node.inputs.length === 2) {
      // The affine part of a LayerNorm: a product or sum with a vector of the last axis.
      const [a, b] = node.inputs.map((i) => nodes[i]!);
      const small = (x: typeof a) => x!.shape.reduce((p, d) => p * d, 1) <= (node.shape.at(-1) ?? 1);
      if ((core[a!.id] && nodes[a!.id]!.op !== 'gelu' && small(b)) || (core[b!.id] && nodes[b!.id]!.op !== 'gelu' && small(a))) core[node.id] = 1;
    }
  }
  // R: the core, plus backward nodes computed from the core alone (views of it, e.g. the
  // transposed probabilities of dV = P^T dY); they move with the clones.
  const inR = new Uint8Array(n);
  for (const node of nodes) {
    // A constant (the causal bias, shared by every layer) is not cloned: it would join every
    // layer's core into one component.
    if (core[node.id]) inR[node.id] = node.op === 'const' ? 0 : 1;
    else if (!fwd[node.id] && node.op !== 'input' && node.op !== 'const' && node.inputs.some((i) => inR[i]) && node.inputs.every((i) => inR[i] || nodes[i]!.op === 'const')) inR[node.id] = 1;
  }
  // Components of R (one per attention layer) and the backward nodes that read them.
  const users: number[][] = nodes.map(() => []);
  for (const node of nodes) for (const i of node.inputs) users[i]!.push(node.id);
  const comp = new Int32Array(n).fill(-1);
  let count = 0;
  for (const node of nodes) {
    if (!inR[node.id] || comp[node.id] >= 0) continue;
    const todo = [node.id];
    while (todo.length) {
      const id = todo.pop()!;
      if (comp[id] >= 0) continue;
      comp[id] = count;
      for (const j of nodes[id]!.inputs) if (inR[j] && comp[j] < 0) todo.push(j);
      for (const j of users[id]!) if (inR[j] && comp[j] < 0) todo.push(j);
    }
    count++;
  }
  // Each component's gate: the newest backward, non-constant input of its first reader.
  const firstReader = new Int32Array(count).fill(-1);
  for (const node of nodes) {
    if (fwd[node.id] || inR[node.id]) continue;
    for (const i of node.inputs) if (inR[i] && firstReader[comp[i]]! < 0) firstReader[comp[i]!] = node.id;
  }
  const gateOf = [...firstReader].map((r) => {
    if (r < 0) return -1;
    const cands = nodes[r]!.inputs.filter((i) => !inR[i] && !fwd[i] && nodes[i]!.op !== 'const');
    return cands.length ? Math.max(...cands) : -1;
  });

  const g = new Graph();
  const map = new Int32Array(n).fill(-1);
  const clone = new Int32Array(n).fill(-1);
  const cond = new Map<number, number>();
  const gated = new Map<string, number>();
  const bwdScope = (s: string) => (s.endsWith(BACKWARD_MARK) ? s : s + BACKWARD_MARK);
  let elementsFreed = 0;
  const gateCond = (c: number): number => {
    let id = cond.get(c);
    if (id === undefined) {
      const dep = nodes[gateOf[c]!]!;
      let x = map[dep.id]!;
      if (dep.shape.length > 0) {
        x = g.add('slice', [x], { starts: dep.shape.map(() => 0), ends: dep.shape.map(() => 1), steps: dep.shape.map(() => 1) }, undefined, dep.scope);
        x = g.add('reshape', [x], { shape: [] }, undefined, dep.scope);
      }
      id = g.add('cast', [x], { to: 'bool' }, undefined, dep.scope);
      cond.set(c, id);
    }
    return id;
  };
  const cloneOf = (u: number): number => {
    if (clone[u]! >= 0) return clone[u]!;
    const node = nodes[u]!;
    if (node.op === 'const') return map[u]!;
    const c = comp[u]!;
    // A root (no input in R) reads its smallest non-constant input through the gate: a
    // LayerNorm's weight rather than its activations, where there is a choice.
    const root = node.inputs.every((i) => !inR[i]);
    const size = (i: number) => nodes[i]!.shape.reduce((a, d) => a * d, 1);
    const open = node.inputs.filter((i) => nodes[i]!.op !== 'const');
    const toGate = root && open.length ? open.reduce((a, b) => (size(b) < size(a) ? b : a)) : -1;
    const ins = node.inputs.map((i) => {
      if (inR[i]) return cloneOf(i);
      if (i !== toGate) return map[i]!;
      const key = `${c}:${i}`;
      let id = gated.get(key);
      if (id === undefined) {
        id = g.add('where', [gateCond(c), map[i]!, map[i]!], {}, undefined, bwdScope(node.scope));
        gated.set(key, id);
      }
      return id;
    });
    clone[u] = g.add(node.op, ins, node.attrs, node.value, bwdScope(node.scope));
    if (fwd[u]) elementsFreed += node.shape.reduce((a, d) => a * d, 1);
    return clone[u]!;
  };
  for (const node of nodes) {
    const c = comp[node.id]!;
    if (inR[node.id] && !fwd[node.id] && gateOf[c]! >= 0) continue; // made by cloneOf, in the backward
    const reader = !fwd[node.id] && !inR[node.id];
    const ins = node.inputs.map((i) => (reader && inR[i] && gateOf[comp[i]!]! >= 0 ? cloneOf(i) : map[i]!));
    map[node.id] = g.add(node.op, ins, node.attrs, node.value, node.scope);
  }
  const components = gateOf.filter((d) => d >= 0).length;
  return { program: { graph: g, inputs: p.inputs.map((i) => map[i]!), outputs: p.outputs.map((o) => (map[o]! >= 0 ? map[o]! : cloneOf(o))) }, components, elementsFreed };
}
