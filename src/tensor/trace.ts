// Where recorded ops go. A trace (jit, grad) installs a fresh graph; outside a trace, each
// constant starts its own small graph and ops extend it, which gives eager-looking code.
import { Graph } from '../ir/graph.js';
import type { DType } from '../ir/dtype.js';

let active: Graph | undefined;
let float: DType = 'float32';

/** The float dtype that traced inputs and new float constants get unless told otherwise. */
export function defaultFloat(): DType {
  return float;
}

/** Runs fn (a trace) with d as the default float dtype: a model traced under
 * withFloat('float64', ...) computes in float64 end to end without naming the dtype anywhere. */
export function withFloat<T>(d: DType, fn: () => T): T {
  const prev = float;
  float = d;
  try {
    return fn();
  } finally {
    float = prev;
  }
}

export function activeGraph(): Graph | undefined {
  return active;
}

/** Runs fn with g as the graph that new constants are recorded into. */
export function withGraph<T>(g: Graph, fn: () => T): T {
  const prev = active;
  active = g;
  try {
    return fn();
  } finally {
    active = prev;
  }
}
