// The fused step: the trainer's fast path on the mesh of one (one process, no process group).
// Training state and steps on one process: flat params and AdamW moments as host buffers of
// the training dtype (float32, or float64 for exactness checks),
// double-buffered so each compiled step reads one set and writes the other (no state is
// reallocated per step). One graph per step without accumulation; with accumulation a
// micro-step graph adds into a gradient buffer and an update graph applies AdamW.
import { hostValue, type HostValue } from '../../ir/value.js';
import type { LoweredNode } from '../../runtime/execute.js';
import { NamedExecutable, type Named } from '../named-program.js';
import type { ExecOptions } from '../../runtime/session.js';
import { FlatLayout } from '../../nn/flat.js';
import type { LanguageModel } from '../../models/model.js';
import { type AdamWConfig, adamwScalars } from '../../optim/adamw.js';
import { evalProgram, fusedStepProgram, microstepProgram, updateProgram, type InGraphRecompute, type StepShape } from '../step-graphs.js';
import { dropoutKey } from '../dropout-key.js';
import type { MicroBatch } from '../trainer.js';
import type { HeldBytes, StepStrategy } from './strategy.js';
import { saveCheckpoint, type CheckpointContents } from '../../checkpoint/index.js';
import { readFullState } from '../universal/state.js';
import { OPT_M, OPT_V } from '../optimizer-names.js';
import { type FloatArray, type TrainDType, toFloat } from '../../ir/dtype.js';
import { withFloat } from '../../tensor/trace.js';
import { checkpointDType, checkStateDType, safetensorsDType } from '../train-dtype.js';

export interface FusedOptions extends ExecOptions {
  shape: StepShape;
  optimizer: AdamWConfig;
  gradClip: number;
  gradAccum: number;
  seed: number;
  /** Starting parameters (e.g. a pretrained model being fine-tuned); default: initialised from seed. */
  initialParams?: Float32Array;
  /** 'selective': recompute the attention core in the backward of the step graph; default 'none'. */
  recompute?: InGraphRecompute;
  /** Dtype of parameters, activations, gradients and optimizer state (default float32). */
  dtype?: TrainDType;
}

/** A pair of buffers: `cur` holds the state, `next` receives the step's output. */
class DoubleBuffer {
  constructor(public cur: HostValue, public next: HostValue) {}
  swap(): void {
    [this.cur, this.next] = [this.next, this.cur];
  }
}

export class FusedStep implements StepStrategy {
  readonly kind = 'fused';
  readonly layout: FlatLayout;
  readonly params: DoubleBuffer;
  readonly m: DoubleBuffer;
  readonly v: DoubleBuffer;
  private readonly mask: HostValue;
  readonly dtype: TrainDType;
  private readonly scalarBuf: HostValue;
  private readonly lossBuf: HostValue;
  private readonly normBuf: HostValue;
  private fused?: NamedExecutable;
  private micro?: NamedExecutable;
  private update?: NamedExecutable;
  private evaluator?: NamedExecutable;
  private grads?: DoubleBuffer;
  private hasKey = false;

  constructor(readonly model: LanguageModel, readonly opts: FusedOptions) {
    this.layout = new FlatLayout(model);
    const n = this.layout.size;
    if (opts.initialParams && opts.initialParams.length !== n) throw new Error(`initial parameters have ${opts.initialParams.length} values, the model needs ${n}`);
    const dt = (this.dtype = opts.dtype ?? 'float32');
    const f = (n: number) => hostValue(dt, [n]);
    // The initial values are the float32 draws in either dtype: a float64 run starts where the
    // float32 one does.
    this.params = new DoubleBuffer(hostValue(dt, [n], toFloat(dt, opts.initialParams ?? this.layout.initialise(opts.seed))), f(n));
    this.m = new DoubleBuffer(f(n), f(n));
    this.v = new DoubleBuffer(f(n), f(n));
    this.mask = hostValue(dt, [n], this.layout.decayMask());
    this.scalarBuf = f(3);
    this.lossBuf = hostValue(dt, [], [0]);
    this.normBuf = hostValue(dt, [], [0]);
  }

  private exec(): ExecOptions {
    return { device: this.opts.device, threads: this.opts.threads, profile: this.opts.profile };
  }

  private ready?: Promise<void>;

  /** Traces and compiles the step graphs, once (the first step calls it if the caller did not). */
  prepare(): Promise<void> {
    this.ready ??= this.build();
    return this.ready;
  }

  private async build(): Promise<void> {
    const { shape, optimizer, gradClip, gradAccum } = this.opts;
    const dt = this.dtype;
    if (gradAccum === 1) {
      const f = withFloat(dt, () => fusedStepProgram(this.model, this.layout, shape, optimizer, gradClip, this.opts.recompute));
      this.hasKey = f.hasKey;
      this.fused = await NamedExecutable.of(f, this.exec());
    } else {
      const mp = withFloat(dt, () => microstepProgram(this.model, this.layout, shape, this.opts.recompute));
      this.hasKey = mp.hasKey;
      this.micro = await NamedExecutable.of(mp, this.exec());
      this.update = await NamedExecutable.of(withFloat(dt, () => updateProgram(this.layout.size, optimizer, gradClip)), this.exec());
      this.grads = new DoubleBuffer(hostValue(dt, [this.layout.size]), hostValue(dt, [this.layout.size]));
    }
  }

  /** Step programs compiled: 1 (the fused one-graph step) without accumulation, 2 (micro-step
   * and update) with it; 0 before prepare(). */
  get stepPrograms(): number {
    return [this.fused, this.micro, this.update].filter((e) => e !== undefined).length;
  }

  /** Flat params (the current buffer; valid until the next step). */
  get flatParams(): FloatArray {
    return this.params.cur.data as FloatArray;
  }

  /** Wraps a micro-batch's token arrays as graph inputs (no copy). */
  private batchValues(b: MicroBatch): { idx: HostValue; targets: HostValue } {
    const { batch, seq } = this.opts.shape;
    if (b.x.length !== batch * seq || b.y.length !== batch * seq) {
      throw new RangeError(`a micro-batch must hold ${batch} x ${seq} = ${batch * seq} tokens in x and y, got ${b.x.length} and ${b.y.length}`);
    }
    return { idx: { dtype: 'int32', shape: [batch, seq], data: b.x }, targets: { dtype: 'int32', shape: [batch, seq], data: b.y } };
  }

  /** One optimizer step over gradAccum micro-batches; `iter` is 0-based. Returns mean loss and grad norm. */
  async step(micro: MicroBatch[], lr: number, iter: number): Promise<{ loss: number; gradNorm: number }> {
    if (micro.length !== this.opts.gradAccum) throw new Error(`step needs ${this.opts.gradAccum} micro-batches, got ${micro.length}`);
    await this.prepare();
    (this.scalarBuf.data as FloatArray).set(adamwScalars(this.opts.optimizer, lr, iter + 1));
    const key = (k: number): Named => (this.hasKey ? { key: hostValue('int64', [], [dropoutKey(this.opts.seed, iter, k)]) } : {});
    if (this.fused) {
      await this.fused.run(
        { params: this.params.cur, m: this.m.cur, v: this.v.cur, decay_mask: this.mask, ...this.batchValues(micro[0]!), scalars: this.scalarBuf, ...key(0) },
        { params: this.params.next, m: this.m.next, v: this.v.next, loss: this.lossBuf, grad_norm: this.normBuf },
      );
      this.params.swap();
      this.m.swap();
      this.v.swap();
      return { loss: (this.lossBuf.data as FloatArray)[0]!, gradNorm: (this.normBuf.data as FloatArray)[0]! };
    }
    const grads = this.grads!;
    (grads.cur.data as FloatArray).fill(0);
    const scale = hostValue(this.dtype, [1], [1 / micro.length]);
    let loss = 0;
    for (let k = 0; k < micro.length; k++) {
      await this.micro!.run({ params: this.params.cur, grad_acc: grads.cur, ...this.batchValues(micro[k]!), scale, ...key(k) }, { grad_acc: grads.next, loss: this.lossBuf });
      grads.swap();
      loss += (this.lossBuf.data as FloatArray)[0]! / micro.length;
    }
    await this.update!.run(
      { params: this.params.cur, grad: grads.cur, m: this.m.cur, v: this.v.cur, decay_mask: this.mask, scalars: this.scalarBuf },
      { params: this.params.next, m: this.m.next, v: this.v.next, grad_norm: this.normBuf },
    );
    this.params.swap();
    this.m.swap();
    this.v.swap();
    return { loss, gradNorm: (this.normBuf.data as FloatArray)[0]! };
  }

  /** Loss of a batch with the current parameters, no dropout. */
  async evalLoss(b: MicroBatch, shape: StepShape = this.opts.shape): Promise<number> {
    this.evaluator ??= await NamedExecutable.of(withFloat(this.dtype, () => evalProgram(this.model, this.layout, shape)), { ...this.exec(), profile: undefined });
    const { loss } = await this.evaluator.run({ params: this.params.cur, idx: hostValue('int32', [shape.batch, shape.seq], b.x), targets: hostValue('int32', [shape.batch, shape.seq], b.y) });
    return (loss!.data as FloatArray)[0]!;
  }

  /** With the profile option: ends ONNX Runtime's profiling of the training step's session and
   * returns the trace file and the step graph's nodes (to attribute its kernels to modules). */
  endProfiling(): { file: string; nodes: readonly LoweredNode[] } {
    const exe = this.fused ?? this.micro;
    if (!exe) throw new Error('endProfiling: no step has been compiled yet');
    return exe.endTrace();
  }

  /** As float32 (sampling, export), whatever the training dtype. */
  async fullParams(): Promise<Float32Array> {
    return Float32Array.from(this.flatParams);
  }

  /** Both halves of each double buffer; the gradient accumulator exists only with accumulation
   * (the fused graph's gradients live inside ONNX Runtime for the step's duration). */
  memoryReport(): HeldBytes {
    const bytes = (...b: (DoubleBuffer | undefined)[]) => b.reduce((a, d) => a + (d ? d.cur.data.byteLength + d.next.data.byteLength : 0), 0);
    return { paramBytes: bytes(this.params), gradBytes: bytes(this.grads), optimBytes: bytes(this.m, this.v) };
  }

  /** Model parameters under their names (a plain safetensors state dict), plus the flat AdamW moments. */
  async save(dir: string, meta: Record<string, unknown>, files: Record<string, string>): Promise<void> {
    saveCheckpoint(dir, this.contents(this.flatParams, this.m.cur.data as FloatArray, this.v.cur.data as FloatArray, meta, files));
  }

  /** The same contents over copies of the state (three memcpys into one buffer from `alloc`,
   *  e.g. one a finished background write gave back), for a background writer. */
  snapshot(meta: Record<string, unknown>, files: Record<string, string>, alloc: (bytes: number) => ArrayBuffer = (b) => new ArrayBuffer(b)): CheckpointContents {
    const n = this.layout.size;
    const bytes = this.dtype === 'float64' ? 8 : 4;
    const buf = this.dtype === 'float64' ? new Float64Array(alloc(3 * n * bytes), 0, 3 * n) : new Float32Array(alloc(3 * n * bytes), 0, 3 * n);
    const copy = (src: FloatArray, k: number) => {
      const dst = buf.subarray(k * n, (k + 1) * n);
      dst.set(src);
      return dst;
    };
    return this.contents(copy(this.flatParams, 0), copy(this.m.cur.data as FloatArray, 1), copy(this.v.cur.data as FloatArray, 2), meta, files);
  }

  private contents(params: FloatArray, m: FloatArray, v: FloatArray, meta: Record<string, unknown>, files: Record<string, string>): CheckpointContents {
    const dtype = safetensorsDType(this.dtype);
    const tensors: Record<string, { dtype: 'F32' | 'F64'; shape: number[]; data: FloatArray }> = {};
    for (const s of this.layout.slots) tensors[s.name] = { dtype, shape: [...s.shape], data: params.subarray(s.offset, s.offset + s.size) };
    tensors[OPT_M] = { dtype, shape: [this.layout.size], data: m };
    tensors[OPT_V] = { dtype, shape: [this.layout.size], data: v };
    return { tensors, meta: { ...meta, ...checkpointDType(this.dtype) }, files };
  }

  /** Resumes from a plain or a universal checkpoint (any layout); everything is read and
   *  checked before any buffer is touched, so nothing is half-loaded. */
  async load(dir: string): Promise<{ meta: Record<string, unknown>; files: Record<string, string> }> {
    const st = readFullState(dir, this.layout, this.model);
    checkStateDType(dir, st.meta, this.dtype);
    (this.params.cur.data as FloatArray).set(st.params);
    (this.m.cur.data as FloatArray).set(st.m);
    (this.v.cur.data as FloatArray).set(st.v);
    return { meta: st.meta, files: st.files };
  }
}

export { OPT_M, OPT_V } from '../optimizer-names.js';
