// Activation checkpointing as a cut through one traced forward + backward graph: the forward
// program returns, beside its result, the tensors the backward reads (the "saved" tensors a
// micro-batch keeps alive between its forward and its backward), and the backward program
// takes them as inputs and recomputes everything else it needs. What is saved is a policy:
// - none: every tensor the backward reads, except what is free or nearly free to redo from
//   other saved tensors (views, casts, products with constants, LayerNorm's normalisation from
//   its input, as Megatron's fused LayerNorm keeps only its input; a sequence-parallel
//   all-gather from its shard). Dropout masks stay saved, as bool (1 byte), not as the float
//   they are cast to.
// - selective: as none, but the attention core (the T x T scores, softmax and dropout around
//   each softmax) is recomputed from q and k (Korthikanti et al. 2022, section 4.1).
// - full: nothing; the backward recomputes the whole forward from the program's inputs.
// Any policy gives the same gradients: it only moves nodes between the two programs.
import { Graph, type Node, type Program } from './graph.js';
import { optimize } from './passes.js';
import type { DType } from './dtype.js';

export type Granularity = 'none' | 'selective' | 'full';
export const GRANULARITIES: readonly Granularity[] = ['none', 'selective', 'full'];

export interface SavedTensor {
  /** Output name in the forward program, input name in the backward program. */
  name: string;
  shape: number[];
  dtype: DType;
  /** Node of the forward graph it was (op and the module that recorded it), for reports. */
  op: string;
  scope: string;
}

export interface SplitPrograms {
  /** Takes the forward inputs it reads; returns the forward outputs, then the saved tensors. */
  forward: Program;
  /** Takes the original inputs it reads (parameters, cotangents, ...), then the saved tensors. */
  backward: Program;
  saved: SavedTensor[];
  /** Names of the original inputs the backward still reads (e.g. 'x' when LayerNorm needs it). */
  backwardInputs: string[];
}

/** Ops whose result is a view or a copy of another tensor: never worth keeping. */
const FREE = new Set(['reshape', 'permute', 'slice', 'expand', 'cast', 'const', 'concat']);
const ELEMENTWISE = new Set(['add', 'sub', 'mul', 'div', 'neg']);

/**
 * Splits `p`, whose first `nForward` outputs are the forward results and whose other outputs
 * (gradients) depend on the cotangent inputs named in `cotangents`, at the tensors `granularity`
 * saves. `seq`: the sequence length (the attention core is the T x T region around a softmax).
 */
export function splitForwardBackward(program: Program, nForward: number, cotangents: readonly string[], granularity: Granularity, seq: number): SplitPrograms {
  const p = optimize(program);
  const nodes = p.graph.nodes;
  const n = nodes.length;
  const nameOf = (id: number) => String(nodes[id]!.attrs.name);
  // Nodes that depend on a cotangent belong to the backward.
  const bwd = new Uint8Array(n);
  for (const node of nodes) {
    if (node.op === 'input') bwd[node.id] = cotangents.includes(nameOf(node.id)) ? 1 : 0;
    else if (node.inputs.some((i) => bwd[i])) bwd[node.id] = 1;
  }
  // The forward proper: ancestors of the forward results.
  const fwd = ancestors(nodes, p.outputs.slice(0, nForward));
  const core = granularity === 'selective' ? attentionCore(nodes, fwd, seq) : new Uint8Array(n);
  const recompute = (node: Node): boolean => {
    if (granularity === 'full') return true;
    // A sequence-parallel all-gather is redone from its shard, as Megatron re-gathers the
    // LayerNorm output in the backward instead of keeping the gathered copy (Korthikanti et
    // al. 2022, 4.2.2): 1/t of the bytes for one more all-gather. An identity is free; any
    // reduction (all-reduce, reduce-scatter) is kept, since redoing it is communication plus
    // its whole input.
    if (node.op === 'collective') return node.attrs.kind === 'all_gather' || node.attrs.kind === 'identity';
    if (core[node.id]) return true;
    if (FREE.has(node.op) || node.op === 'layer_norm') return true;
    // A product or sum with a constant (a scale, the causal bias) is redone from the other side.
    return ELEMENTWISE.has(node.op) && node.inputs.filter((i) => nodes[i]!.op !== 'const').length <= 1;
  };
  // The backward program: everything the gradients need, with forward nodes either recomputed
  // (policy) or cut (saved); original inputs stay inputs.
  const inBwd = new Uint8Array(n);
  const saved = new Uint8Array(n);
  const todo = p.outputs.slice(nForward);
  while (todo.length) {
    const id = todo.pop()!;
    if (inBwd[id] || saved[id]) continue;
    const node = nodes[id]!;
    if (fwd[id] && !bwd[id] && node.op !== 'input' && !recompute(node)) {
      saved[id] = 1;
      continue;
    }
    inBwd[id] = 1;
    todo.push(...node.inputs);
  }
  const savedIds = [...saved.keys()].filter((id) => saved[id]);
  const savedList: SavedTensor[] = savedIds.map((id, k) => {
    const s = nodes[id]!;
    return { name: `saved.${k}`, shape: [...s.shape], dtype: s.dtype, op: s.op, scope: s.scope };
  });
  // The forward program: the forward results and the saved tensors.
  const fOut = [...p.outputs.slice(0, nForward), ...savedIds];
  const live = new Uint8Array(n);
  const walk = [...fOut];
  while (walk.length) {
    const id = walk.pop()!;
    if (live[id]) continue;
    live[id] = 1;
    walk.push(...nodes[id]!.inputs);
  }
  const forward = extract(p, (id) => live[id] === 1, p.inputs.filter((i) => live[i]), fOut, new Map());
  const sub = new Map(savedIds.map((id, k) => [id, savedList[k]!.name]));
  const bInputs = p.inputs.filter((i) => inBwd[i]);
  const backward = extract(p, (id) => inBwd[id] === 1 || saved[id] === 1, [...bInputs, ...savedIds], p.outputs.slice(nForward), sub);
  return { forward, backward, saved: savedList, backwardInputs: bInputs.map(nameOf) };
}

/** Rebuilds the kept nodes of p into a fresh graph; nodes in `asInput` become inputs of that name. */
function extract(p: Program, keep: (id: number) => boolean, inputs: number[], outputs: number[], asInput: Map<number, string>): Program {
  const g = new Graph();
  const map = new Int32Array(p.graph.nodes.length).fill(-1);
  for (const node of p.graph.nodes) {
    if (!keep(node.id)) continue;
    const name = asInput.get(node.id);
    map[node.id] = name !== undefined ? g.input(name, node.shape, node.dtype) : g.add(node.op, node.inputs.map((i) => map[i]!), node.attrs, node.value, node.scope);
  }
  return { graph: g, inputs: inputs.map((i) => map[i]!), outputs: outputs.map((o) => map[o]!) };
}


/** 1 for every node that `roots` depend on (the roots included): the forward of a step is the
 * ancestors of its forward results. */
export function ancestors(nodes: readonly { inputs: readonly number[] }[], roots: readonly number[]): Uint8Array {
  const mark = new Uint8Array(nodes.length);
  const stack = [...roots];
  while (stack.length) {
    const id = stack.pop()!;
    if (mark[id]) continue;
    mark[id] = 1;
    stack.push(...nodes[id]!.inputs);
  }
  return mark;
}
/**
 * The attention core: forward nodes shaped [..., T, T] connected, through such nodes only, to
 * a softmax (the scores, the causal bias, the softmax, its dropout mask and the dropped
 * probabilities). Its boundary is q and k on one side and att @ v on the other. With head size
 * equal to T, views of q and k are square too and join it; they are free to redo anyway.
 */
export function attentionCore(nodes: readonly Node[], fwd: Uint8Array, seq: number): Uint8Array {
  const square = (node: Node) => node.shape.length >= 2 && node.shape[node.shape.length - 1] === seq && node.shape[node.shape.length - 2] === seq && node.op !== 'input';
  const users: number[][] = nodes.map(() => []);
  for (const node of nodes) for (const i of node.inputs) users[i]!.push(node.id);
  const core = new Uint8Array(nodes.length);
  const stack = nodes.filter((node) => node.op === 'softmax' && fwd[node.id] && square(node)).map((node) => node.id);
  while (stack.length) {
    const id = stack.pop()!;
    if (core[id]) continue;
    core[id] = 1;
    // Users are followed up to, not into, a matmul: att @ v ends the core even when head size
    // equals T and its output is square too.
    const next = [...nodes[id]!.inputs, ...users[id]!.filter((j) => nodes[j]!.op !== 'matmul')];
    for (const j of next) if (!core[j] && fwd[j] && square(nodes[j]!)) stack.push(j);
  }
  return core;
}
