// Where recorded ops go. A trace (jit, grad) installs a fresh graph; outside a trace, each
// constant starts its own small graph and ops extend it, which gives eager-looking code.
import { Graph } from '../ir/graph.js';

let active: Graph | undefined;

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
