// Cuts a program that communicates into an ordered list of steps: ONNX-compilable compute
// parts and communication steps between them. ONNX Runtime cannot talk to other processes, so
// every collective that really moves data (any kind but identity, over more than one rank)
// ends a compute part; the engine runs it on a process group and feeds the result to the next.
//
// Nodes are grouped by level: the number of communicating collectives on the longest path from
// the program's inputs. Communication step k holds every collective of level k (whose inputs
// are all ready after compute part k-1); compute part k runs nodes of level k or lower (see
// placementOf) before the collectives of level k+1 that read them. Cutting by level
// rather than at each collective gives the fewest parts, and puts all collectives that do not
// depend on each other into one step, where the engine can send several all-reduces as one
// fused buffer (Megatron's backward has one per block that all become ready together).
import { Graph, type Node, type Program } from './graph.js';
import type { CollectiveKind } from './ops.js';
import type { HostValue } from './value.js';

/** A collective that needs other processes: the ONNX lowering can only keep the rest (as Identity). */
export function isCommunication(n: Node): boolean {
  return n.op === 'collective' && n.attrs.kind !== 'identity' && (n.attrs.parts as number) > 1;
}

export function hasCommunication(p: Program): boolean {
  return p.graph.nodes.some(isCommunication);
}

/** One collective of a communication step; ids are node ids of the original program. */
export interface CommCall {
  /** The collective node: its value is the result. */
  id: number;
  /** The node it reduces, gathers or scatters. */
  input: number;
  /** Mesh axis whose process group runs it ('tp'). */
  group: string;
  parts: number;
  kind: Exclude<CollectiveKind, 'identity'>;
  /** Concatenation / split axis of all_gather and reduce_scatter. */
  dim: number;
  inShape: readonly number[];
  outShape: readonly number[];
  dtype: Node['dtype'];
}

export interface ComputePart {
  kind: 'compute';
  level: number;
  /** A plain program: its inputs are original inputs (same names) and values made earlier. */
  program: Program;
  /** Original node id of each program input, in order. */
  inputs: number[];
  /** Original node id of each program output, in order. */
  outputs: number[];
}

export interface CommStep {
  kind: 'comm';
  /** The level of the collectives in it (the compute part after it has this level). */
  level: number;
  calls: CommCall[];
}

export type PartitionStep = ComputePart | CommStep;

export interface Partition {
  steps: PartitionStep[];
  /** Original program inputs and outputs (node ids), as in the program. */
  inputs: number[];
  outputs: number[];
  /** Outputs that are constants of the program (no part computes them). */
  constants: Map<number, HostValue>;
  /** Highest level: the number of communication steps. */
  levels: number;
}

/** Node ids that an output depends on (inputs and outputs always count as live). */
function liveNodes(p: Program): Uint8Array {
  const live = new Uint8Array(p.graph.nodes.length);
  for (const o of p.outputs) live[o] = 1;
  for (let id = p.graph.nodes.length - 1; id >= 0; id--) {
    if (!live[id]) continue;
    for (const i of p.graph.nodes[id]!.inputs) live[i] = 1;
  }
  return live;
}

/** Level of every live node; -1 for dead ones. */
export function levelsOf(p: Program, live = liveNodes(p)): Int32Array {
  const level = new Int32Array(p.graph.nodes.length).fill(-1);
  for (const n of p.graph.nodes) {
    if (!live[n.id]) continue;
    let l = 0;
    for (const i of n.inputs) l = Math.max(l, level[i]!);
    level[n.id] = isCommunication(n) ? l + 1 : l;
  }
  return level;
}

function commCall(n: Node, g: Graph): CommCall {
  const x = g.node(n.inputs[0]!);
  return {
    id: n.id,
    input: x.id,
    group: n.attrs.group as string,
    parts: n.attrs.parts as number,
    kind: n.attrs.kind as CommCall['kind'],
    dim: (n.attrs.dim as number | undefined) ?? 0,
    inShape: x.shape,
    outShape: n.shape,
    dtype: n.dtype,
  };
}

/** Values computed inside ONNX parts (not inputs, constants or communication). */
const computed = (n: Node) => n.op !== 'input' && n.op !== 'const' && !isCommunication(n);

/**
 * The part each computed node runs in: the latest one that still precedes every reader (a
 * part of a later level, or the communication step of the next level). A node of level k may
 * run in any part from k to that one; the latest keeps values that only the backward needs,
 * such as transposed weights, from being made in the first part and carried through all of
 * them. Communication nodes keep their level, so independent collectives stay in one step.
 */
function placementOf(p: Program, live: Uint8Array, level: Int32Array, levels: number): Int32Array {
  const g = p.graph;
  const place = new Int32Array(g.nodes.length).fill(levels);
  for (let id = g.nodes.length - 1; id >= 0; id--) {
    const n = g.nodes[id]!;
    if (!live[id]) continue;
    const latest = isCommunication(n) ? level[id]! - 1 : place[id]!;
    for (const i of n.inputs) place[i] = Math.min(place[i]!, latest);
  }
  return place;
}

export function partitionProgram(p: Program): Partition {
  const g = p.graph;
  const live = liveNodes(p);
  const level = levelsOf(p, live);
  let levels = 0;
  for (const l of level) levels = Math.max(levels, l);
  const place = placementOf(p, live, level, levels);
  const isInput = new Set(p.inputs);
  // Values that something outside the part computing them reads become outputs of that part.
  const exported = new Uint8Array(g.nodes.length);
  for (const n of g.nodes) {
    if (!live[n.id]) continue;
    for (const i of n.inputs) if (computed(g.node(i)) && (isCommunication(n) || place[i] !== place[n.id])) exported[i] = 1;
  }
  for (const o of p.outputs) if (computed(g.node(o))) exported[o] = 1;
  // Crossing values get input names that cannot clash with the program's own.
  const taken = new Set(p.inputs.map((id) => String(g.node(id).attrs.name)));
  const crossingName = (id: number) => {
    let name = `crossing_v${id}`;
    while (taken.has(name)) name += '_';
    return name;
  };

  // One sweep sorts the live nodes into their parts and steps (in graph order, so each part
  // is topologically ordered and every rank lists the collectives of a step alike).
  const members: Node[][] = Array.from({ length: levels + 1 }, () => []);
  const calls: CommCall[][] = Array.from({ length: levels + 1 }, () => []);
  for (const n of g.nodes) {
    if (!live[n.id]) continue;
    if (isCommunication(n)) calls[level[n.id]!]!.push(commCall(n, g));
    else if (computed(n)) members[place[n.id]!]!.push(n);
  }
  const steps: PartitionStep[] = [];
  for (let k = 0; k <= levels; k++) {
    if (k > 0) steps.push({ kind: 'comm', level: k, calls: calls[k]! });
    if (members[k]!.length > 0) steps.push(buildPart(p, k, members[k]!, exported, isInput, crossingName));
  }
  const constants = new Map<number, HostValue>();
  for (const o of p.outputs) if (g.node(o).op === 'const') constants.set(o, g.node(o).value!);
  return { steps, inputs: [...p.inputs], outputs: [...p.outputs], constants, levels };
}

/** The compute part of level k: its members as a program of their own. */
function buildPart(p: Program, k: number, members: Node[], exported: Uint8Array, isInput: Set<number>, crossingName: (id: number) => string): ComputePart {
  const src = p.graph;
  const g = new Graph();
  const map = new Map<number, number>();
  const inputs: number[] = [];
  const inputIds: number[] = [];
  // A value from outside the part: a constant is re-created (cheaper than sending it around,
  // and it stays foldable); anything else becomes an input of the part, once.
  const resolve = (id: number): number => {
    const hit = map.get(id);
    if (hit !== undefined) return hit;
    const n = src.node(id);
    let mine: number;
    if (n.op === 'const') mine = g.add('const', [], n.attrs, n.value, n.scope);
    else {
      const name = isInput.has(id) ? String(n.attrs.name) : crossingName(id);
      mine = g.add('input', [], { name, shape: [...n.shape], dtype: n.dtype }, undefined, n.scope);
      inputs.push(id);
      inputIds.push(mine);
    }
    map.set(id, mine);
    return mine;
  };
  for (const n of members) map.set(n.id, g.add(n.op, n.inputs.map(resolve), n.attrs, n.value, n.scope));
  const outputs = members.filter((n) => exported[n.id]).map((n) => n.id);
  return { kind: 'compute', level: k, program: { graph: g, inputs: inputIds, outputs: outputs.map((id) => map.get(id)!) }, inputs, outputs };
}
