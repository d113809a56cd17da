// Building a Program by tracing: a fresh graph, named inputs, and the outputs the body returns.
import { Graph, type Program } from '../ir/graph.js';
import type { DType } from '../ir/dtype.js';
import { Tensor } from './tensor.js';
import { defaultFloat, withGraph } from './trace.js';

/** Inputs without a dtype get the default float dtype (trace.ts: withFloat). */
export interface Tracer {
  graph: Graph;
  input(name: string, shape: readonly number[], dtype?: DType): Tensor;
}

/** Traces body into a fresh graph; body returns the program's inputs and outputs, in order. */
export function buildProgram(body: (t: Tracer) => { inputs: Tensor[]; outputs: Tensor[] }): Program {
  const graph = new Graph();
  const r = withGraph(graph, () => body({ graph, input: (name, shape, dtype = defaultFloat()) => new Tensor(graph, graph.input(name, shape, dtype)) }));
  return { graph, inputs: r.inputs.map((x) => x.id), outputs: r.outputs.map((x) => x.id) };
}
