// Program -> optimized graph -> ONNX bytes -> cached ONNX Runtime session -> run.
import * as ort from 'onnxruntime-node';
import type { Program } from '../ir/graph.js';
import { optimize } from '../ir/passes.js';
import { type HostValue, hostValue } from '../ir/value.js';
import { type DType, ONNX_DTYPE } from '../ir/dtype.js';
import { shapeStr, sameShape } from '../ir/shape.js';
import { lowerProgram } from './onnx/lower.js';
import { type Int8Weight, ONNX_INT8, toInt8Dynamic } from './onnx/quantize.js';
import { modelProto, onnxNodeName, type OnnxGraph, type OnnxInitializer, type OnnxValueInfo } from './onnx/model.js';
import type { WeightsFile } from './weights-file.js';
import { newestProfileFile } from './profile.js';
import { foldEvaluate } from './reference/interpreter.js';
import { type ExecOptions, getSession, toOrt, fromOrt } from './session.js';

export interface CompileOptions extends ExecOptions {
  /** Run the graph passes (default true). Tests turn folding off to exercise every kernel in ORT. */
  optimize?: boolean;
  /** Write outputs into buffers owned by the executable and reused on every run (no
   * allocation per step); results are then only valid until the next run. */
  reuseOutputs?: boolean;
  /** Float32 constants that are tensors of this file are read from it (external data), not
   * written into the model: sessions over one file share its pages (weights-file.ts). */
  weights?: WeightsFile;
  /** 'int8': every MatMul by a 2-D float32 weight runs on int8 weights with activations
   * quantized at run time (onnx/quantize.ts, toInt8Dynamic): a quarter of the weight bytes to
   * read per step, at some accuracy. Default 'none'. */
  quantization?: Quantization;
  /** The int8 forms of weights by their float32 data, shared by the graphs compiled with it
   * (with `weights` holding their bytes, the graphs then read one copy; see lowerForSession). */
  int8Cache?: Map<HostValue['data'], Int8Weight>;
}

export type Quantization = 'none' | 'int8';

/** `q` if it names a quantization, else a RangeError that lists them. */
export function checkQuantization(q: unknown): Quantization {
  if (q !== 'none' && q !== 'int8') throw new RangeError(`quantization must be 'none' or 'int8', got ${JSON.stringify(q)}`);
  return q;
}

/** Constants whose data is a tensor of `weights` (float32, or int8's raw bytes), as references
 * into its file. */
function externalize(graph: OnnxGraph, weights: WeightsFile): OnnxGraph {
  const initializers = graph.initializers.map((init): OnnxInitializer => {
    const t = 'value' in init && init.value.dtype === 'float32'
      ? { onnxType: ONNX_DTYPE.float32, shape: init.value.shape, data: init.value.data as Float32Array }
      : 'raw' in init && init.raw.onnxType === ONNX_INT8 ? { onnxType: ONNX_INT8, shape: init.raw.shape, data: init.raw.bytes } : undefined;
    const offset = t && weights.locate(t.data);
    if (!t || offset === undefined) return init;
    return { name: init.name, external: { onnxType: t.onnxType, shape: t.shape, location: weights.name, offset, length: t.data.byteLength } };
  });
  return { ...graph, initializers };
}

/** One node of the lowered ONNX graph as the profiler needs it. */
export interface LoweredNode {
  name: string;
  op: string;
  scope: string;
  flops: number;
}

/** What a run checks its feeds and output buffers against: the program's own inputs and outputs. */
interface Declared {
  name: string;
  dtype: DType;
  shape: readonly number[];
}

/**
 * A compiled program. It keeps neither the ONNX bytes nor the program, only what a run checks:
 * a graph with its weights as constants would otherwise hold two more copies of them per session
 * beside ONNX Runtime's own (a 16-slot server compiles 24 graphs).
 */
export class Executable {
  private outBuffers?: Record<string, ort.Tensor>;
  private readonly declaredInputs: Declared[];
  private readonly declaredOutputs: Declared[];

  constructor(
    private readonly session: ort.InferenceSession,
    private readonly inputInfo: OnnxValueInfo[],
    private readonly outputInfo: OnnxValueInfo[],
    program: Program,
    private readonly reuse: boolean,
    /** The ONNX nodes, named as ONNX Runtime's profile names them. */
    readonly nodes: readonly LoweredNode[] = [],
    private readonly profilePrefix = '',
  ) {
    const declared = (id: number): Declared => {
      const n = program.graph.node(id);
      return { name: String(n.attrs.name), dtype: n.dtype, shape: [...n.shape] };
    };
    this.declaredInputs = program.inputs.map(declared);
    this.declaredOutputs = program.outputs.map(declared);
  }

  /** Ends ONNX Runtime's profiling of this session and returns the trace file it wrote. */
  endProfiling(): string {
    if (!this.profilePrefix) throw new Error('this executable was compiled without the profile option; compile with { profile: PREFIX }');
    const since = Date.now();
    this.session.endProfiling();
    return newestProfileFile(this.profilePrefix, since);
  }

  /** Runs the graph. With `into`, outputs are written into those host values (double
   * buffering for training state: feed one set of buffers, write the other, swap). */
  async run(feeds: readonly HostValue[], into?: readonly HostValue[]): Promise<HostValue[]> {
    if (feeds.length !== this.inputInfo.length) {
      throw new Error(`compiled graph takes ${this.inputInfo.length} inputs, got ${feeds.length}`);
    }
    const ortFeeds: Record<string, ort.Tensor> = {};
    feeds.forEach((v, i) => {
      const info = this.inputInfo[i]!;
      const declared = this.declaredInputs[i]!;
      if (!sameShape(v.shape, info.shape) || v.dtype !== declared.dtype) {
        throw new TypeError(`input ${i} (${declared.name}) expects ${declared.dtype}${shapeStr(info.shape)}, got ${v.dtype}${shapeStr(v.shape)}`);
      }
      ortFeeds[info.name] = toOrt(v, info);
    });
    let fetches: Record<string, ort.Tensor> | undefined;
    if (into) {
      if (into.length !== this.outputInfo.length) throw new Error(`compiled graph has ${this.outputInfo.length} outputs, got ${into.length} buffers`);
      into.forEach((v, i) => {
        const want = this.declaredOutputs[i]!;
        if (!sameShape(v.shape, want.shape) || v.dtype !== want.dtype) {
          throw new TypeError(`output buffer ${i} must be ${want.dtype}${shapeStr(want.shape)}, got ${v.dtype}${shapeStr(v.shape)}`);
        }
      });
      fetches = Object.fromEntries(this.outputInfo.map((o, i) => [o.name, toOrt(into[i]!, o)]));
      await this.session.run(ortFeeds, fetches);
      return [...into];
    }
    if (this.reuse) {
      this.outBuffers ??= Object.fromEntries(this.outputInfo.map((o) => [o.name, toOrt(hostValue(o.dtype, o.shape), o)]));
      fetches = this.outBuffers;
    }
    const res = fetches ? await this.session.run(ortFeeds, fetches) : await this.session.run(ortFeeds);
    return this.outputInfo.map((o, i) => fromOrt(fetches ? fetches[o.name]! : res[o.name]!, this.declaredOutputs[i]!.dtype));
  }
}

/**
 * The ONNX graph a session gets, before its weights are moved to a file: optimized, lowered and
 * quantized as `opts` say. With int8 its quantized weights land in `opts.int8Cache`: lowering
 * each graph first and writing the cache's arrays into the weights file lets every graph read
 * one copy of them.
 */
export function lowerForSession(p: Program, opts: CompileOptions = {}): { program: Program; graph: OnnxGraph } {
  const program = opts.optimize === false ? p : optimize(p, foldEvaluate);
  const base = lowerProgram(program).graph;
  return { program, graph: checkQuantization(opts.quantization ?? 'none') === 'int8' ? toInt8Dynamic(base, opts.int8Cache) : base };
}

export function toModel(p: Program, opts: CompileOptions = {}): { model: Uint8Array; program: Program; inputs: OnnxValueInfo[]; outputs: OnnxValueInfo[]; graph: OnnxGraph } {
  const { program, graph: lowered } = lowerForSession(p, opts);
  const graph = opts.weights ? externalize(lowered, opts.weights) : lowered;
  return { model: modelProto(graph), program, inputs: graph.inputs, outputs: graph.outputs, graph };
}

export async function compile(p: Program, opts: CompileOptions = {}): Promise<Executable> {
  const { model, program, inputs, outputs, graph } = toModel(p, opts);
  const exact = [...inputs, ...outputs].some((v) => v.dtype === 'float64');
  const session = await getSession(model, { ...opts, ...(opts.weights ? { externalDataFolder: opts.weights.folder } : {}) }, exact);
  const nodes = graph.nodes.map((n, i) => ({ name: onnxNodeName(n, i), op: n.op, scope: n.scope ?? '', flops: n.flops ?? 0 }));
  return new Executable(session, inputs, outputs, program, opts.reuseOutputs ?? false, nodes, opts.profile ?? '');
}
