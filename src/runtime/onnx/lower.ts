// Lowers a Program (ir/) to an ONNX graph, one primitive at a time. bfloat16 values cross
// the boundary as float32 (the JavaScript API has no bfloat16 tensor) with a Cast inside.
import type { Node, Program } from '../../ir/graph.js';
import { type DType, ONNX_DTYPE } from '../../ir/dtype.js';
import { hostValue, type HostValue } from '../../ir/value.js';
import { numel } from '../../ir/shape.js';
import type { OnnxGraph, OnnxInitializer, OnnxNode } from './model.js';

const UNARY: Record<string, string> = {
  neg: 'Neg', exp: 'Exp', log: 'Log', sqrt: 'Sqrt', tanh: 'Tanh', sigmoid: 'Sigmoid', erf: 'Erf',
  relu: 'Relu', abs: 'Abs', reciprocal: 'Reciprocal',
};
const BINARY: Record<string, string> = {
  add: 'Add', sub: 'Sub', mul: 'Mul', div: 'Div', pow: 'Pow', maximum: 'Max', minimum: 'Min',
  equal: 'Equal', less: 'Less', greater: 'Greater', less_equal: 'LessOrEqual', greater_equal: 'GreaterOrEqual',
};

/** The dtype a value has at the host boundary. */
export function boundaryDType(d: DType): DType {
  return d === 'bfloat16' ? 'float32' : d;
}

/** Hash constants of the counter-based dropout mask; reference/kernels.ts uses the same. */
export const DROPOUT_MULT = 0x45d9f3b;
export const DROPOUT_SALT_MULT = 0x9e3779b1;
export const DROPOUT_INDEX_MULT = 0x2c1b3c6d;
/** ONNX TensorProto.DataType of uint32 (the dropout hash's arithmetic; not a host dtype). */
const ONNX_UINT32 = 12;

class Lowering {
  nodes: OnnxNode[] = [];
  initializers: OnnxInitializer[] = [];
  private tmp = 0;
  /** Scope of the IR node being lowered; every ONNX node it emits carries it. */
  scope = '';

  fresh(base: string): string {
    return `${base}_t${this.tmp++}`;
  }

  emit(op: string, inputs: string[], outputs: string[], attrs?: OnnxNode['attrs']): void {
    this.nodes.push({ op, inputs, outputs, attrs, ...(this.scope ? { scope: this.scope } : {}) });
  }

  ints(values: readonly number[], base: string): string {
    const name = this.fresh(base);
    this.initializers.push({ name, value: hostValue('int64', [values.length], values) });
    return name;
  }

  scalarI64(v: number, base: string): string {
    const name = this.fresh(base);
    this.initializers.push({ name, value: hostValue('int64', [], [v]) });
    return name;
  }
}

function lowerNode(L: Lowering, n: Node, nodeOf: (id: number) => Node, name: (id: number) => string): void {
  const shapeOf = (id: number) => nodeOf(id).shape;
  const out = name(n.id);
  const ins = n.inputs.map(name);
  const a = n.attrs;
  if (n.op === 'erf' && n.dtype === 'float64') return viaFloat32(L, 'Erf', ins[0]!, out);
  if (UNARY[n.op]) return L.emit(UNARY[n.op]!, ins, [out]);
  if (BINARY[n.op]) return L.emit(BINARY[n.op]!, ins, [out]);
  switch (n.op) {
    case 'rsqrt': {
      const s = L.fresh(out);
      L.emit('Sqrt', ins, [s]);
      return L.emit('Reciprocal', [s], [out]);
    }
    case 'where':
      return L.emit('Where', ins, [out]);
    case 'softmax':
      return L.emit('Softmax', ins, [out], { axis: { kind: 'int', v: a.axis as number } });
    case 'log_softmax':
      return L.emit('LogSoftmax', ins, [out], { axis: { kind: 'int', v: a.axis as number } });
    case 'gelu':
      if (n.dtype === 'float64') return lowerGelu64(L, ins[0]!, out, a.approximate as string);
      return L.emit('Gelu', ins, [out], { approximate: { kind: 'string', v: a.approximate as string } });
    case 'layer_norm': {
      const c = n.shape[n.shape.length - 1]!;
      const ones = L.fresh(out);
      L.initializers.push({ name: ones, value: hostValue(n.dtype, [c], new Array(c).fill(1)) });
      return L.emit('LayerNormalization', [ins[0]!, ones], [out], { axis: { kind: 'int', v: -1 }, epsilon: { kind: 'float', v: a.eps as number } });
    }
    case 'cast':
      return L.emit('Cast', ins, [out], { to: { kind: 'int', v: ONNX_DTYPE[a.to as DType] } });
    case 'sum':
    case 'max': {
      const axes = a.axes as number[];
      if (axes.length === 0) return L.emit('Identity', ins, [out]);
      const op = n.op === 'sum' ? 'ReduceSum' : 'ReduceMax';
      return L.emit(op, [ins[0]!, L.ints(axes, out)], [out], { keepdims: { kind: 'int', v: a.keepdims ? 1 : 0 } });
    }
    case 'matmul': {
      L.emit('MatMul', ins, [out]);
      const lhs = shapeOf(n.inputs[0]!);
      L.nodes[L.nodes.length - 1]!.flops = 2 * numel(n.shape) * lhs[lhs.length - 1]!;
      return;
    }
    case 'reshape':
      // allowzero: a 0 in the shape is a zero-length dimension, not "copy the input's".
      return L.emit('Reshape', [ins[0]!, L.ints(a.shape as number[], out)], [out], { allowzero: { kind: 'int', v: 1 } });
    case 'permute':
      return L.emit('Transpose', ins, [out], { perm: { kind: 'ints', v: a.perm as number[] } });
    case 'expand':
      return L.emit('Expand', [ins[0]!, L.ints(a.shape as number[], out)], [out]);
    case 'slice': {
      const inShape = shapeOf(n.inputs[0]!);
      const steps = a.steps as number[];
      // ONNX reads a negative end as counted from the back; "before index 0" is -(dim + 1).
      const ends = (a.ends as number[]).map((e, i) => (e < 0 ? -(inShape[i]! + 1) : e));
      const axes = inShape.map((_, i) => i);
      return L.emit('Slice', [ins[0]!, L.ints(a.starts as number[], out), L.ints(ends, out), L.ints(axes, out), L.ints(steps, out)], [out]);
    }
    case 'unslice':
      return lowerUnslice(L, n, ins[0]!, out, shapeOf(n.inputs[0]!));
    case 'concat':
      return L.emit('Concat', ins, [out], { axis: { kind: 'int', v: a.axis as number } });
    case 'gather0':
      return L.emit('Gather', ins, [out], { axis: { kind: 'int', v: 0 } });
    case 'scatter_add0': {
      // ScatterElements, not ScatterND: ONNX Runtime's CPU ScatterND applies its updates in
      // parallel, and with reduction 'add' two updates of the same row race (measured: the
      // embedding gradient of a GPT batch with repeated tokens moved by up to 24% of its largest
      // value between runs at 2 threads, and was exact at 1). ScatterElements adds in order.
      const idxShape = shapeOf(n.inputs[0]!);
      const count = numel(idxShape);
      const row = numel(n.shape.slice(1));
      // The indices stay int32 when they are (token ids are): ScatterElements takes either, and
      // the expanded copy costs half as much.
      const column = L.fresh(out);
      L.emit('Reshape', [ins[0]!, L.ints([count, 1], out)], [column]);
      const wide = L.fresh(out);
      L.emit('Expand', [column, L.ints([count, row], out)], [wide]);
      const upd = L.fresh(out);
      L.emit('Reshape', [ins[1]!, L.ints([count, row], out)], [upd]);
      const zeros = L.fresh(out);
      L.emit('ConstantOfShape', [L.ints([n.shape[0]!, row], out)], [zeros], { value: { kind: 'tensor', v: hostValue(n.dtype, [1]) } });
      const flat = L.fresh(out);
      L.emit('ScatterElements', [zeros, wide, upd], [flat], { axis: { kind: 'int', v: 0 }, reduction: { kind: 'string', v: 'add' } });
      return L.emit('Reshape', [flat, L.ints(n.shape, out)], [out]);
    }
    case 'dropout_mask':
      return lowerDropoutMask(L, n, ins[0]!, out);
    case 'collective':
      // Communication runs between ONNX programs (the engine cuts the graph at these nodes,
      // ir/partition.ts); only the no-op forward of Megatron's f, or any collective over a
      // single rank, can stay inside one.
      if (a.kind === 'identity' || a.parts === 1) return L.emit('Identity', ins, [out]);
      throw new Error(`collective ${String(a.kind)} over '${String(a.group)}' cannot run inside one ONNX program: compile the program with NamedExecutable.compile(program, outputNames, opts, { ${String(a.group)}: processGroup }), which runs it between ONNX parts`);
    default:
      throw new Error(`no ONNX lowering for primitive '${n.op}'`);
  }
}

/**
 * ONNX Runtime's CPU provider has no float64 Erf (nor Gelu): a float64 Erf runs in float32
 * between two Casts. It is elementwise, so every layout of a model computes the same value;
 * only its precision is float32's (about 1e-7 relative), the same on every rank.
 */
function viaFloat32(L: Lowering, op: string, x: string, out: string, attrs?: OnnxNode['attrs']): void {
  const x32 = L.fresh(out);
  const y32 = L.fresh(out);
  L.emit('Cast', [x], [x32], { to: { kind: 'int', v: ONNX_DTYPE.float32 } });
  L.emit(op, [x32], [y32], attrs);
  L.emit('Cast', [y32], [out], { to: { kind: 'int', v: ONNX_DTYPE.float64 } });
}

/** float64 GELU: the tanh form written out in float64 kernels (all exist); the exact form
 * goes through float32 Gelu (no float64 Erf, see viaFloat32). */
function lowerGelu64(L: Lowering, x: string, out: string, approximate: string): void {
  if (approximate !== 'tanh') return viaFloat32(L, 'Gelu', x, out, { approximate: { kind: 'string', v: approximate } });
  const c = (v: number) => {
    const name = L.fresh(out);
    L.initializers.push({ name, value: hostValue('float64', [], [v]) });
    return name;
  };
  const step = (op: string, ...xs: string[]): string => {
    const r = L.fresh(out);
    L.emit(op, xs, [r]);
    return r;
  };
  // 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))
  const x3 = step('Mul', step('Mul', x, x), x);
  const inner = step('Mul', step('Add', x, step('Mul', x3, c(0.044715))), c(Math.sqrt(2 / Math.PI)));
  const half = step('Mul', x, c(0.5));
  L.emit('Mul', [half, step('Add', step('Tanh', inner), c(1))], [out]);
}

function lowerUnslice(L: Lowering, n: Node, g: string, out: string, gShape: readonly number[]): void {
  const full = n.attrs.shape as number[];
  const starts = n.attrs.starts as number[];
  const steps = n.attrs.steps as number[];
  if (steps.every((s) => s === 1)) {
    const after = full.map((d, i) => d - starts[i]! - gShape[i]!);
    return L.emit('Pad', [g, L.ints([...starts, ...after], out)], [out]);
  }
  // General steps: scatter into zeros at statically known coordinates.
  const count = numel(gShape);
  const rank = full.length;
  const coords = new Array<number>(count * rank);
  const idx = new Array<number>(rank).fill(0);
  for (let e = 0; e < count; e++) {
    for (let d = 0; d < rank; d++) coords[e * rank + d] = starts[d]! + idx[d]! * steps[d]!;
    for (let d = rank - 1; d >= 0; d--) {
      if (++idx[d]! < gShape[d]!) break;
      idx[d] = 0;
    }
  }
  const coordName = L.fresh(out);
  L.initializers.push({ name: coordName, value: hostValue('int64', [...gShape, rank], coords) });
  const zeros = L.fresh(out);
  L.emit('ConstantOfShape', [L.ints(full, out)], [zeros], { value: { kind: 'tensor', v: hostValue(n.dtype, [1]) } });
  L.emit('ScatterND', [zeros, coordName, g], [out]);
}

/**
 * keep[i] = hash(i) >= p 2^32 in uint32, hash(i) = mul2(xorshift16(i * M1 ^ word)) with
 * word = mix(key + salt) a scalar: eight passes over the tensor, shifts instead of integer
 * divisions (a 13-pass, 3-division hash cost about a tenth of a shakespeare-char step). The
 * word is XORed in, not added to i, so two masks are never shifted copies of each other, and
 * i is the element's index in the global tensor, so every layout draws the same mask.
 * reference/kernels.ts (dropoutHash) computes the same bits.
 */
function lowerDropoutMask(L: Lowering, n: Node, key: string, out: string): void {
  const count = numel(n.shape);
  const i32 = (v: number) => {
    const name = L.fresh(out);
    L.initializers.push({ name, value: hostValue('int32', [], [v | 0]) });
    return name;
  };
  // uint32 has no host dtype here; its scalars are raw initializers.
  const u32 = (v: number) => {
    const name = L.fresh(out);
    L.initializers.push({ name, raw: { onnxType: ONNX_UINT32, shape: [], bytes: new Uint8Array(Uint32Array.from([v >>> 0]).buffer) } });
    return name;
  };
  const step = (op: string, ...xs: string[]): string => {
    const r = L.fresh(out);
    L.emit(op, xs, [r]);
    return r;
  };
  const toU32 = (x: string): string => {
    const r = L.fresh(out);
    L.emit('Cast', [x], [r], { to: { kind: 'int', v: ONNX_UINT32 } });
    return r;
  };
  // The key's low 32 bits (wrapping cast) are the key proper; the bits above are the first
  // batch row of this tensor in the global batch, so the element index is the global one.
  const key32 = L.fresh(out);
  L.emit('Cast', [key], [key32], { to: { kind: 'int', v: ONNX_DTYPE.int32 } });
  const two32 = L.fresh(out);
  L.initializers.push({ name: two32, value: hostValue('int64', [], [2 ** 32]) });
  let index: string;
  const global = n.attrs.global as number[] | undefined;
  if (global) {
    const row0 = L.fresh(out);
    L.emit('Cast', [step('Div', key, two32)], [row0], { to: { kind: 'int', v: ONNX_DTYPE.int32 } });
    // A block of a larger tensor: the element index is the global tensor's, the sum over axes
    // of (offset + local index) x global stride, each axis a broadcast Range.
    const offset = n.attrs.offset as number[];
    const strides = global.map((_, d) => numel(global.slice(d + 1)));
    index = step('Mul', row0, i32(numel(global) / Math.max(1, global[0]!)));
    n.shape.forEach((len, d) => {
      const r = step('Mul', step('Range', i32(offset[d]!), i32(offset[d]! + len), i32(1)), i32(strides[d]!));
      index = step('Add', index, step('Reshape', r, L.ints(n.shape.map((x, e) => (e === d ? x : 1)), out)));
    });
    index = step('Reshape', index, L.ints([count], out));
  } else {
    // One Range from the tensor's first global element, in int64 so that it cannot wrap
    // inside the range (the cast to uint32 below takes it modulo 2^32).
    const rowElems = n.shape.length > 0 && n.shape[0]! > 0 ? count / n.shape[0]! : 0;
    const base = step('Mul', step('Div', key, two32), L.scalarI64(rowElems, out));
    index = step('Range', base, step('Add', base, L.scalarI64(count, out)), L.scalarI64(1, out));
  }
  const two16 = i32(65536);
  let word = step('Add', key32, i32(dropoutSalt(n.attrs.salt as number)));
  word = toU32(step('Mul', step('BitwiseXor', word, step('Div', word, two16)), i32(DROPOUT_MULT)));
  let h = step('BitwiseXor', step('Mul', toU32(index), u32(DROPOUT_INDEX_MULT)), word);
  const shift = L.fresh(out);
  L.emit('BitShift', [h, u32(16)], [shift], { direction: { kind: 'string', v: 'RIGHT' } });
  h = step('Mul', step('BitwiseXor', h, shift), u32(DROPOUT_MULT));
  const keep = step('GreaterOrEqual', h, u32(dropoutThreshold(n.attrs.p as number)));
  L.emit('Reshape', [keep, L.ints(n.shape, out)], [out]);
}

/** The per-call-site offset added to the key (int32). */
export function dropoutSalt(salt: number): number {
  return Math.imul(salt >>> 0, DROPOUT_SALT_MULT) | 0;
}

/** Hash values are uniform over [0, 2^32) (uint32); keep those at or above this. */
export function dropoutThreshold(p: number): number {
  return Math.floor(p * 2 ** 32);
}

export interface LoweredNames {
  inputs: string[];
  outputs: string[];
}

export function lowerProgram(p: Program, graphName = 'atscale'): { graph: OnnxGraph; names: LoweredNames } {
  const L = new Lowering();
  const g = p.graph;
  const inputs: OnnxGraph['inputs'] = [];
  const inputNames: string[] = [];
  // Graph inputs keep their external name (no Identity copy per step), except bfloat16 ones,
  // which arrive as float32 and are cast.
  const internal = new Map<number, string>();
  for (const id of p.inputs) {
    const n = g.node(id);
    const ext = `in_${String(n.attrs.name)}`;
    inputNames.push(ext);
    inputs.push({ name: ext, dtype: boundaryDType(n.dtype), shape: n.shape });
    if (n.dtype === 'bfloat16') L.emit('Cast', [ext], [`v${id}`], { to: { kind: 'int', v: ONNX_DTYPE.bfloat16 } });
    else internal.set(id, ext);
  }
  // An output computed by a kernel is that kernel's output under its external name: no Identity
  // copy per step (the training step's parameters and moments are tens of MB each).
  const direct = new Set<number>();
  p.outputs.forEach((id, k) => {
    const n = g.node(id);
    if (n.op === 'input' || n.op === 'const' || n.dtype === 'bfloat16' || direct.has(id)) return;
    direct.add(id);
    internal.set(id, `out_${k}`);
  });
  const name = (id: number) => internal.get(id) ?? `v${id}`;
  for (const n of g.nodes) {
    if (n.op === 'input') continue;
    L.scope = n.scope;
    if (n.op === 'const') L.initializers.push({ name: name(n.id), value: n.value! });
    else lowerNode(L, n, (id) => g.node(id), name);
  }
  L.scope = '';
  const outputs: OnnxGraph['outputs'] = [];
  const outputNames: string[] = [];
  p.outputs.forEach((id, k) => {
    const n = g.node(id);
    const ext = `out_${k}`;
    outputNames.push(ext);
    outputs.push({ name: ext, dtype: boundaryDType(n.dtype), shape: n.shape });
    if (n.dtype === 'bfloat16') L.emit('Cast', [name(id)], [ext], { to: { kind: 'int', v: ONNX_DTYPE.float32 } });
    else if (name(id) !== ext) L.emit('Identity', [name(id)], [ext]);
  });
  renameOutputsInPlace(L, new Set(inputNames), new Set(outputNames));
  return { graph: { name: graphName, nodes: L.nodes, initializers: L.initializers, inputs, outputs }, names: { inputs: inputNames, outputs: outputNames } };
}

/**
 * An output computed by a node gets that node's output renamed to the external name instead of
 * an Identity copy: ONNX Runtime keeps Identity nodes that feed graph outputs, and for large
 * outputs (KV caches written every decode step) the copy is a real cost.
 */
function renameOutputsInPlace(L: Lowering, graphInputs: Set<string>, graphOutputs: Set<string>): void {
  const constants = new Set(L.initializers.map((i) => i.name));
  const producedBy = new Map<string, OnnxNode>();
  for (const n of L.nodes) for (const o of n.outputs) producedBy.set(o, n);
  const renamed = new Map<string, string>();
  const keep: OnnxNode[] = [];
  for (const n of L.nodes) {
    const src = n.inputs[0]!;
    // An Identity from one graph output to another (the same value returned twice, or an
    // identity collective of an output) must stay: renaming would lose the first output.
    if (n.op === 'Identity' && graphOutputs.has(n.outputs[0]!) && producedBy.has(src) && !graphInputs.has(src) && !graphOutputs.has(src) && !constants.has(src) && !renamed.has(src)) {
      renamed.set(src, n.outputs[0]!);
      continue;
    }
    keep.push(n);
  }
  if (renamed.size === 0) return;
  const r = (x: string) => renamed.get(x) ?? x;
  for (const n of keep) {
    n.inputs = n.inputs.map(r);
    n.outputs = n.outputs.map(r);
  }
  L.nodes = keep;
}
