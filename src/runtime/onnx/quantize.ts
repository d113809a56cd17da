// Smaller variants of a float32 ONNX graph, rewritten on the graph itself:
// - fp16 weights: every large float32 weight is stored as float16 and cast back to float32 in
//   the graph (half the file; arithmetic stays float32, so inputs and outputs are unchanged);
// - int8 dynamic quantization (what onnxruntime's quantize_dynamic does for MatMul): each
//   MatMul whose second input is a 2-D weight keeps it as int8 with one symmetric scale per
//   output column, and quantizes its activations at run time (DynamicQuantizeLinear) before
//   MatMulInteger; the int32 result is rescaled to float32. Weights use 7 bits ([-63, 63], as
//   quantize_dynamic's reduce_range): x86 AVX2 kernels add pairs of uint8 x int8 products in
//   int16, and 2 * 255 * 127 would saturate it.
import { ONNX_DTYPE, floatToHalfBits } from '../../ir/dtype.js';
import { hostValue, type HostValue } from '../../ir/value.js';
import type { OnnxGraph, OnnxInitializer, OnnxNode } from './model.js';

type Graph = OnnxGraph<number | string>;

const MIN_ELEMENTS = 256;

/** ONNX TensorProto.DataType of int8 (host values have no int8: its weights travel as raw bytes). */
export const ONNX_INT8 = 3;

function floatWeights(g: Pick<Graph, 'initializers'>): Map<string, HostValue> {
  const m = new Map<string, HostValue>();
  for (const i of g.initializers) if ('value' in i && i.value.dtype === 'float32' && i.value.data.length >= MIN_ELEMENTS) m.set(i.name, i.value);
  return m;
}

export function toFp16Weights(g: Graph): Graph {
  const big = floatWeights(g);
  const casts: OnnxNode[] = [];
  const initializers: OnnxInitializer[] = g.initializers.map((init) => {
    if (!big.has(init.name)) return init;
    const v = big.get(init.name)!;
    const bits = Uint16Array.from(v.data as Float32Array, (x) => floatToHalfBits(x));
    casts.push({ op: 'Cast', inputs: [`${init.name}_fp16`], outputs: [init.name], attrs: { to: { kind: 'int', v: ONNX_DTYPE.float32 } } });
    return { name: `${init.name}_fp16`, value: hostValue('float16', v.shape, bits) };
  });
  return { ...g, initializers, nodes: [...casts, ...g.nodes] };
}

/** A 2-D float32 weight [rows, cols] as int8 values in [-63, 63] (raw bytes) with one
 * symmetric scale per column. */
export interface Int8Weight {
  bytes: Uint8Array;
  scales: Float32Array;
}

export function quantizeWeight(w: HostValue): Int8Weight {
  const [rows, cols] = w.shape as [number, number];
  const data = w.data as Float32Array;
  const scales = new Float32Array(cols);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) scales[c] = Math.max(scales[c]!, Math.abs(data[r * cols + c]!));
  for (let c = 0; c < cols; c++) scales[c] = scales[c]! / 63 || 1;
  const q = new Int8Array(rows * cols);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) q[r * cols + c] = Math.round(data[r * cols + c]! / scales[c]!);
  return { bytes: new Uint8Array(q.buffer), scales };
}

/**
 * The int8 rewrite. `cache` (by the float weight's data) lets graphs that share weights share
 * their int8 forms too: the same arrays, which a weights file can then hold once.
 */
export function toInt8Dynamic<D extends number | string>(g: OnnxGraph<D>, cache = new Map<HostValue['data'], Int8Weight>()): OnnxGraph<D> {
  const big = floatWeights(g);
  const initializers: OnnxInitializer[] = [...g.initializers];
  const quantized = new Map<string, { q: string; scale: string }>();
  const nodes: OnnxNode[] = [];
  let n = 0;
  for (const node of g.nodes) {
    const wName = node.inputs[1]!;
    const w = node.op === 'MatMul' ? big.get(wName) : undefined;
    if (!w || w.shape.length !== 2) {
      nodes.push(node);
      continue;
    }
    let q = quantized.get(wName);
    if (!q) {
      let iw = cache.get(w.data);
      if (!iw) cache.set(w.data, (iw = quantizeWeight(w)));
      q = { q: `${wName}_int8`, scale: `${wName}_scale` };
      initializers.push({ name: q.q, raw: { onnxType: ONNX_INT8, shape: w.shape, bytes: iw.bytes } });
      initializers.push({ name: q.scale, value: { dtype: 'float32', shape: [iw.scales.length], data: iw.scales } });
      quantized.set(wName, q);
    }
    const t = `dq${n++}`;
    nodes.push({ op: 'DynamicQuantizeLinear', inputs: [node.inputs[0]!], outputs: [`${t}_x`, `${t}_xs`, `${t}_xz`] });
    nodes.push({ op: 'MatMulInteger', inputs: [`${t}_x`, q.q, `${t}_xz`], outputs: [`${t}_acc`] });
    nodes.push({ op: 'Cast', inputs: [`${t}_acc`], outputs: [`${t}_f`], attrs: { to: { kind: 'int', v: ONNX_DTYPE.float32 } } });
    nodes.push({ op: 'Mul', inputs: [`${t}_xs`, q.scale], outputs: [`${t}_s`] });
    nodes.push({ op: 'Mul', inputs: [`${t}_f`, `${t}_s`], outputs: node.outputs });
  }
  // Weights used only by quantized MatMuls are dropped from the file.
  const used = new Set(nodes.flatMap((x) => x.inputs));
  return { ...g, nodes, initializers: initializers.filter((i) => used.has(i.name)) };
}
