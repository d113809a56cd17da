// ONNX ModelProto pieces (field numbers from onnx.proto), built with our ProtoWriter.
import { ProtoWriter } from './proto.js';
import { type DType, ONNX_DTYPE, floatToBf16Bits } from '../../ir/dtype.js';
import type { HostValue } from '../../ir/value.js';

export const OPSET = 20;
export const IR_VERSION = 9;

export type OnnxAttr = { kind: 'int'; v: number } | { kind: 'ints'; v: number[] } | { kind: 'float'; v: number } | { kind: 'string'; v: string } | { kind: 'tensor'; v: HostValue };

export interface OnnxNode {
  op: string;
  /** Module path of the IR node it lowers (see ir/graph.ts scope); becomes part of the node name. */
  scope?: string;
  /** Multiply-add FLOPs (2 per MAC) for GEMM nodes, for the profiler. */
  flops?: number;
  inputs: string[];
  outputs: string[];
  attrs?: Record<string, OnnxAttr>;
  domain?: string;
}

/** Dims are numbers, or (in graphs written for other runtimes) strings naming a dynamic dimension. */
export interface OnnxValueInfo<Dim extends number | string = number> {
  name: string;
  dtype: DType;
  shape: readonly Dim[];
}

export interface OnnxGraph<Dim extends number | string = number> {
  name: string;
  nodes: OnnxNode[];
  initializers: OnnxInitializer[];
  inputs: OnnxValueInfo<Dim>[];
  outputs: OnnxValueInfo<Dim>[];
}

/** A weight whose bytes stay outside the model: `length` bytes at `offset` of the file
 * `location`, next to the model or in the folder the session is given (ONNX external data). */
export interface ExternalTensor {
  onnxType: number;
  shape: readonly number[];
  location: string;
  offset: number;
  length: number;
}

/** A weight: a host value, raw bytes of an ONNX type that host values lack (int8, uint8), or a
 * reference to external data. */
export type OnnxInitializer =
  | { name: string; value: HostValue }
  | { name: string; raw: { onnxType: number; shape: readonly number[]; bytes: Uint8Array } }
  | { name: string; external: ExternalTensor };

/** Raw little-endian bytes of a host value in its ONNX dtype (bfloat16 re-encoded from float32). */
function rawBytes(v: HostValue): Uint8Array {
  if (v.dtype === 'bfloat16') {
    const src = v.data as Float32Array;
    const bits = new Uint16Array(src.length);
    for (let i = 0; i < src.length; i++) bits[i] = floatToBf16Bits(src[i]!);
    return new Uint8Array(bits.buffer);
  }
  return new Uint8Array(v.data.buffer, v.data.byteOffset, v.data.byteLength);
}

export function tensorProto(name: string, v: HostValue): ProtoWriter {
  const t = new ProtoWriter();
  if (v.shape.length) t.packedInts(1, v.shape);
  t.int(2, ONNX_DTYPE[v.dtype]);
  t.string(8, name);
  t.bytes(9, rawBytes(v));
  return t;
}

/** TensorProto of external data: external_data (13) as key/value entries, data_location (14)
 * EXTERNAL (1). */
function externalTensorProto(name: string, e: ExternalTensor): ProtoWriter {
  const t = new ProtoWriter();
  if (e.shape.length) t.packedInts(1, e.shape);
  t.int(2, e.onnxType);
  t.string(8, name);
  for (const [k, v] of [['location', e.location], ['offset', String(e.offset)], ['length', String(e.length)]] as const) {
    t.message(13, new ProtoWriter().string(1, k).string(2, v));
  }
  t.int(14, 1);
  return t;
}

function valueInfo(vi: OnnxValueInfo<number | string>): ProtoWriter {
  const shape = new ProtoWriter();
  // TensorShapeProto.Dimension: dim_value (1) or dim_param (2).
  for (const d of vi.shape) shape.message(1, typeof d === 'string' ? new ProtoWriter().string(2, d) : new ProtoWriter().int(1, d));
  const tensorType = new ProtoWriter().int(1, ONNX_DTYPE[vi.dtype]).message(2, shape);
  return new ProtoWriter().string(1, vi.name).message(2, new ProtoWriter().message(1, tensorType));
}

function attribute(name: string, a: OnnxAttr): ProtoWriter {
  const w = new ProtoWriter().string(1, name);
  switch (a.kind) {
    case 'int':
      return w.int(20, 2).int(3, a.v);
    case 'ints':
      return w.int(20, 7).packedInts(8, a.v);
    case 'float':
      return w.int(20, 1).float(2, a.v);
    case 'string':
      return w.int(20, 3).string(4, a.v);
    case 'tensor':
      return w.int(20, 4).message(5, tensorProto('', a.v));
  }
}

/** The NodeProto name: `module.path#bwd::Op_index`, so ONNX Runtime's profile names the module. */
export function onnxNodeName(n: OnnxNode, index: number): string {
  return n.scope ? `${n.scope}::${n.op}_${index}` : `${n.op}_${index}`;
}

function nodeProto(n: OnnxNode, index: number): ProtoWriter {
  const w = new ProtoWriter();
  for (const i of n.inputs) w.string(1, i);
  for (const o of n.outputs) w.string(2, o);
  w.string(3, onnxNodeName(n, index));
  w.string(4, n.op);
  for (const [k, a] of Object.entries(n.attrs ?? {})) w.message(5, attribute(k, a));
  if (n.domain) w.string(7, n.domain);
  return w;
}

export function modelProto(g: OnnxGraph<number | string>, producer = 'atscale'): Uint8Array {
  const graph = new ProtoWriter();
  g.nodes.forEach((n, i) => graph.message(1, nodeProto(n, i)));
  graph.string(2, g.name);
  for (const init of g.initializers) {
    if ('value' in init) graph.message(5, tensorProto(init.name, init.value));
    else if ('external' in init) graph.message(5, externalTensorProto(init.name, init.external));
    else {
      const t = new ProtoWriter();
      if (init.raw.shape.length) t.packedInts(1, init.raw.shape);
      graph.message(5, t.int(2, init.raw.onnxType).string(8, init.name).bytes(9, init.raw.bytes));
    }
  }
  for (const i of g.inputs) graph.message(11, valueInfo(i));
  for (const o of g.outputs) graph.message(12, valueInfo(o));
  const model = new ProtoWriter();
  model.int(1, IR_VERSION);
  model.string(2, producer);
  model.string(3, '0.1.0');
  model.message(7, graph);
  model.message(8, new ProtoWriter().string(1, '').int(2, OPSET));
  return model.finish();
}
