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

/** The host-side form of a tensor tree, as jax-js types its transformations: every Tensor
 * becomes a HostValue and the structure (tuples, arrays, records) is kept, so
 * `jit((p: { w: Tensor }, x: Tensor) => [a, b])` takes `({ w: HostValue }, HostValue)` and
 * gives `[HostValue, HostValue]`. Untyped (any/never) or wide TensorTree positions stay HostTree. */
export type HostOf<T> = 0 extends 1 & T
  ? HostTree
  : [T] extends [never]
    ? HostTree
    : [TensorTree] extends [T]
      ? HostTree
      : T extends Tensor
        ? HostValue
        : T extends readonly unknown[] | object
          ? { -readonly [K in keyof T]: HostOf<T[K]> }
          : never;

/** The host arguments of a function of tensors (a tuple, one HostOf per parameter). */
export type HostArgs<A extends readonly unknown[]> = { [K in keyof A]: HostOf<A[K]> };

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

export interface Jitted<A extends readonly unknown[] = HostTree[], R = HostTree> {
  (...args: A): Promise<R>;
  /** The traced graph and executable for these arguments (compiling if needed). */
  lower(...args: A): Promise<{ traced: Traced; exe: Executable }>;
}

/** jit(f): f compiled once per input signature; arguments and result follow f's signature. */
export function jit<F extends TensorFn<TensorTree>>(fn: F, opts: CompileOptions = {}): Jitted<HostArgs<Parameters<F>>, HostOf<ReturnType<F>>> {
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
  // The untyped runner is the typed one: HostOf/HostArgs only describe what flatten/unflatten do.
  return Object.assign(run, { lower }) as unknown as Jitted<HostArgs<Parameters<F>>, HostOf<ReturnType<F>>>;
}
