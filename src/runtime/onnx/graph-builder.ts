// Writing an ONNX graph node by node, for graphs the IR cannot express: dynamic dimensions
// (batch, sequence and past length unknown until run time), as Hugging Face's exported decoders
// have. Names are generated; shapes travel as runtime tensors (Shape, Gather, Concat).
import { hostValue, type HostValue } from '../../ir/value.js';
import type { DType } from '../../ir/dtype.js';
import type { OnnxAttr, OnnxGraph, OnnxInitializer, OnnxNode, OnnxValueInfo } from './model.js';

export type Attrs = Record<string, number | number[] | string | HostValue>;

function attr(v: Attrs[string]): OnnxAttr {
  if (typeof v === 'number') return Number.isInteger(v) ? { kind: 'int', v } : { kind: 'float', v };
  if (typeof v === 'string') return { kind: 'string', v };
  if (Array.isArray(v)) return { kind: 'ints', v };
  return { kind: 'tensor', v };
}

export class GraphBuilder {
  readonly nodes: OnnxNode[] = [];
  readonly initializers: OnnxInitializer[] = [];
  readonly inputs: OnnxValueInfo<number | string>[] = [];
  readonly outputs: OnnxValueInfo<number | string>[] = [];
  private n = 0;

  input(name: string, dtype: DType, shape: (number | string)[]): string {
    this.inputs.push({ name, dtype, shape });
    return name;
  }

  /** Marks `value` as the graph output `name` (through an Identity). */
  output(name: string, value: string, dtype: DType, shape: (number | string)[]): void {
    this.op('Identity', [value], {}, name);
    this.outputs.push({ name, dtype, shape });
  }

  /** A weight, under its own name. */
  weight(name: string, value: HostValue): string {
    this.initializers.push({ name, value });
    return name;
  }

  ints(values: number[]): string {
    return this.weight(`c${this.n++}`, hostValue('int64', [values.length], values));
  }

  scalar(v: number, dtype: DType = 'float32'): string {
    return this.weight(`c${this.n++}`, hostValue(dtype, [], [v]));
  }

  /** Emits one node; returns its (first) output's name. `float` attrs must be passed as non-integers or via floatAttrs. */
  op(type: string, inputs: string[], attrs: Attrs = {}, out = `${type.toLowerCase()}_${this.n++}`, floatAttrs: Record<string, number> = {}): string {
    const a: Record<string, OnnxAttr> = {};
    for (const [k, v] of Object.entries(attrs)) a[k] = attr(v);
    for (const [k, v] of Object.entries(floatAttrs)) a[k] = { kind: 'float', v };
    this.nodes.push({ op: type, inputs, outputs: [out], attrs: a });
    return out;
  }

  /** A node with several outputs. */
  multi(type: string, inputs: string[], count: number, attrs: Attrs = {}): string[] {
    const outs = Array.from({ length: count }, () => `${type.toLowerCase()}_${this.n++}`);
    const a: Record<string, OnnxAttr> = {};
    for (const [k, v] of Object.entries(attrs)) a[k] = attr(v);
    this.nodes.push({ op: type, inputs, outputs: outs, attrs: a });
    return outs;
  }

  /** Dimension `axis` of x as an int64 tensor of shape [1]. */
  dim(x: string, axis: number): string {
    return this.op('Shape', [x], { start: axis, end: axis + 1 });
  }

  graph(name: string): OnnxGraph<number | string> {
    return { name, nodes: this.nodes, initializers: this.initializers, inputs: this.inputs, outputs: this.outputs };
  }
}
