// Reverse-mode differentiation over a recorded graph: walk the nodes from the output back
// (node ids are a topological order), apply each primitive's VJP, sum fan-in gradients.
import { BACKWARD_MARK, type Graph, withScope } from '../ir/graph.js';
import { isFloat } from '../ir/dtype.js';
import { Tensor, lift } from '../tensor/tensor.js';
import { VJP } from './vjp.js';

/**
 * Gradients of the scalar (or seeded) `output` with respect to each tensor in `wrt`,
 * recorded into the same graph. A tensor the output does not depend on gets zeros.
 */
export function gradients(output: Tensor, wrt: readonly Tensor[], seed?: Tensor): Tensor[] {
  const g: Graph = output.graph;
  for (const w of wrt) {
    if (w.graph !== g) throw new Error(`gradients: ${w} is not part of the traced computation of the output`);
    if (!isFloat(w.dtype)) throw new TypeError(`gradients: cannot differentiate with respect to a ${w.dtype} tensor; only float tensors have gradients`);
  }
  if (!isFloat(output.dtype)) throw new TypeError(`gradients: the output is ${output.dtype}; only a float output can be differentiated`);
  if (seed && (seed.graph !== g || seed.dtype !== output.dtype || seed.shape.length !== output.shape.length || seed.shape.some((d, i) => d !== output.shape[i]))) {
    throw new TypeError(`gradients: the seed must be a ${output.dtype} tensor of the output's shape [${output.shape.join(', ')}] in the same trace, got ${seed}`);
  }
  if (!seed && output.size !== 1) {
    throw new TypeError(`gradients: the output must be a scalar (got shape [${output.shape.join(', ')}]); reduce it first (e.g. .sum() or .mean()) or pass a seed`);
  }
  // Only nodes on a path from some wrt to the output need gradients.
  const needs = new Uint8Array(output.id + 1);
  for (const w of wrt) if (w.id <= output.id) needs[w.id] = 1;
  for (let id = 0; id <= output.id; id++) {
    if (needs[id]) continue;
    const n = g.nodes[id]!;
    if (isFloat(n.dtype) && n.inputs.some((i) => needs[i])) needs[id] = 1;
  }
  const grads = new Map<number, Tensor>();
  grads.set(output.id, seed ?? lift(1, output).expand(output.shape));
  for (let id = output.id; id >= 0; id--) {
    const gOut = grads.get(id);
    if (!gOut || !needs[id]) continue;
    const n = g.nodes[id]!;
    if (n.inputs.length === 0) continue;
    const rule = VJP[n.op];
    if (!rule) throw new Error(`no VJP rule for primitive '${n.op}'`);
    const ins = n.inputs.map((i) => new Tensor(g, i));
    // The backward nodes of a module's op belong to that module (for the profiler's table).
    const scope = n.scope.endsWith(BACKWARD_MARK) ? n.scope : n.scope + BACKWARD_MARK;
    const inGrads = withScope(scope, () => rule(gOut, ins, new Tensor(g, id), n));
    n.inputs.forEach((inp, k) => {
      const gi = inGrads[k];
      if (!gi || !needs[inp]) return;
      const prev = grads.get(inp);
      grads.set(inp, prev ? withScope(scope, () => prev.add(gi)) : gi);
    });
  }
  return wrt.map((w) => grads.get(w.id) ?? lift(0, w).expand(w.shape));
}
