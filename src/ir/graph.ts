// The graph: an append-only list of nodes in topological order (a node only refers to
// earlier nodes), so every pass is a single forward or backward sweep.
import type { DType } from './dtype.js';
import { type Attrs, OPS, type TypeInfo } from './ops.js';
import type { HostValue } from './value.js';
import { ShapeError } from './site.js';

export interface Node {
  readonly id: number;
  readonly op: string;
  readonly inputs: readonly number[];
  readonly attrs: Attrs;
  readonly shape: readonly number[];
  readonly dtype: DType;
  /** For op 'const': the value. */
  readonly value?: HostValue;
  /** The module path that recorded it ('' outside any module), with BACKWARD_MARK appended on
   * nodes that differentiation made for it: what the profiler charges the node's time to. */
  readonly scope: string;
}

/** Appended to a scope for the nodes of its backward pass. */
export const BACKWARD_MARK = '#bwd';

let activeScope = '';

export function currentScope(): string {
  return activeScope;
}

/** Records every node that fn adds under `scope` (a module path), then restores the old one. */
export function withScope<T>(scope: string, fn: () => T): T {
  const prev = activeScope;
  activeScope = scope;
  try {
    return fn();
  } finally {
    activeScope = prev;
  }
}

export class Graph {
  readonly nodes: Node[] = [];

  add(op: string, inputs: readonly number[], attrs: Attrs = {}, value?: HostValue, scope = activeScope): number {
    const infer = OPS[op];
    if (!infer) throw new ShapeError(`unknown op '${op}'`);
    const ins: TypeInfo[] = inputs.map((i) => {
      const n = this.nodes[i];
      if (!n) throw new ShapeError(`${op}: input node ${i} does not exist in this graph`);
      return { shape: n.shape as number[], dtype: n.dtype };
    });
    const t = infer(ins, attrs);
    const id = this.nodes.length;
    this.nodes.push({ id, op, inputs: [...inputs], attrs, shape: t.shape, dtype: t.dtype, value, scope });
    return id;
  }

  node(id: number): Node {
    const n = this.nodes[id];
    if (!n) throw new RangeError(`node ${id} does not exist`);
    return n;
  }

  input(name: string, shape: readonly number[], dtype: DType): number {
    return this.add('input', [], { name, shape: [...shape], dtype });
  }

  constant(value: HostValue): number {
    return this.add('const', [], { shape: value.shape, dtype: value.dtype }, value);
  }
}

/** A compiled unit: a graph with named inputs and outputs. */
export interface Program {
  graph: Graph;
  inputs: number[];
  outputs: number[];
}
