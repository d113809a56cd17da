// jit: trace a function of tensors once per input signature, compile it to one ONNX graph,
// and run it on host values. The trace is cached by the shapes and dtypes of the inputs.
import { Graph } from '../ir/graph.js';
import type { HostValue } from '../ir/value.js';
import { type CompileOptions, type Executable, compile } from '../runtime/execute.js';
import { Tensor } from './tensor.js';
import { withGraph } from './trace.js';
import { type Tree, flatten, unflatten } from './tree.js';

export type HostTree = Tree<HostValue>;
export type TensorTree = Tree<Tensor>;

export function isHostValue(x: unknown): x is HostValue {
  return !!x && typeof x === 'object' && 'dtype' in x && 'shape' in x && 'data' in x;
}

export function isTensor(x: unknown): x is Tensor {
  return x instanceof Tensor;
}

export interface Traced {
  graph: Graph;
  inputs: Tensor[];
  outputs: Tensor[];
  outTemplate: TensorTree;
}

/** Records fn on placeholder inputs shaped like args. */
/** Any function of tensors (or arrays/records of them): `(x: Tensor) => ...` and
 * `(p: { w: Tensor }, x: Tensor) => ...` both fit; the arguments are built from the host values. */
export type TensorFn<R> = (...args: never[]) => R;

export function trace(fn: TensorFn<TensorTree>, args: readonly HostTree[]): Traced {
  const graph = new Graph();
  return withGraph(graph, () => {
    const inputs: Tensor[] = [];
    const tensorArgs = args.map((a, i) => {
      const leaves = flatten(a, isHostValue, `arg${i}`);
      const ts = leaves.map(({ path, leaf }) => {
        const t = new Tensor(graph, graph.input(path, leaf.shape, leaf.dtype));
        inputs.push(t);
        return t;
      });
      return unflatten(a, isHostValue, ts);
    });
    const out = (fn as (...a: TensorTree[]) => TensorTree)(...tensorArgs);
    const outputs = flatten(out, isTensor, 'out').map((l) => l.leaf);
    for (const o of outputs) if (o.graph !== graph) throw new Error(`jit: output ${o} was not computed from the traced inputs`);
    return { graph, inputs, outputs, outTemplate: out };
  });
}

function signature(args: readonly HostTree[]): string {
  return args.map((a, i) => flatten(a, isHostValue, `arg${i}`).map(({ path, leaf }) => `${path}:${leaf.dtype}[${leaf.shape.join(',')}]`).join(';')).join('|');
}

export interface Jitted {
  (...args: HostTree[]): Promise<HostTree>;
  /** The traced graph and executable for these arguments (compiling if needed). */
  lower(...args: HostTree[]): Promise<{ traced: Traced; exe: Executable }>;
}

export function jit(fn: TensorFn<TensorTree>, opts: CompileOptions = {}): Jitted {
  const cache = new Map<string, Promise<{ traced: Traced; exe: Executable }>>();
  const lower = (...args: HostTree[]) => {
    const key = signature(args);
    let entry = cache.get(key);
    if (!entry) {
      const traced = trace(fn, args);
      entry = compile({ graph: traced.graph, inputs: traced.inputs.map((t) => t.id), outputs: traced.outputs.map((t) => t.id) }, opts).then((exe) => ({ traced, exe }));
      entry.catch(() => cache.delete(key));
      cache.set(key, entry);
    }
    return entry;
  };
  const run = async (...args: HostTree[]) => {
    const { traced, exe } = await lower(...args);
    const feeds = args.flatMap((a, i) => flatten(a, isHostValue, `arg${i}`).map((l) => l.leaf));
    const outs = await exe.run(feeds);
    return unflatten(traced.outTemplate, isTensor, outs);
  };
  return Object.assign(run, { lower });
}
