// Continuous batching: a fixed pool of B KV-cache slots. Between steps, finished or cancelled
// sequences leave their slot and waiting ones take it. Each step runs one prefill chunk for up to
// `prefillRows` sequences (one compiled graph, [rows, chunk] tokens, in the order they took their
// slots) and then one decode step for every slot at once (one compiled graph,
// [B, 1] tokens): a long prompt is read a chunk per step, so the others keep generating meanwhile.
//
// Caches live on the host as one [B, h, L, d] buffer per layer and kind; slot b's cache is a
// contiguous view of it (batch is the outermost axis). L, the pool's length, is the smallest of
// a few buckets (T/4, T/2, T) that holds every live position: the graphs are built for each, and
// the pool is re-laid out when the longest live sequence crosses a bucket (rarely: once per
// bucket per wave of requests). Attention then reads L positions instead of the context's T; with
// 32-token answers to short prompts a 16-slot decode step attended over 128 positions where at
// most 56 were live. The graphs only read them: they return
// the new tokens' keys and values ([B, h, S, d], S = 1 when decoding), which are written into
// the pool here. Returning rewritten caches instead cost a full pass over every cache per step
// inside the graph (a broadcast select) plus as much again in output: 70% of a 16-slot decode
// step on the bench model (see bench/serve.ts).
import { freemem } from 'node:os';
import { hostValue, type HostValue } from '../ir/value.js';
import { checkQuantization, compile, lowerForSession, type CompileOptions, type Executable, type Quantization } from '../runtime/execute.js';
import type { Int8Weight } from '../runtime/onnx/quantize.js';
import { deadCodeElimination, foldConstantPermutes } from '../ir/passes.js';
import type { Program } from '../ir/graph.js';
import { foldEvaluate } from '../runtime/reference/interpreter.js';
import { WeightsFile } from '../runtime/weights-file.js';
import type { ExecOptions } from '../runtime/session.js';
import { buildProgram } from '../tensor/program.js';
import type { Rng } from '../tensor/rng.js';
import { FlatLayout, withParams } from '../nn/flat.js';
import { constant } from '../tensor/tensor.js';
import type { LanguageModel, LayerCache } from '../models/model.js';
import { chooseToken, type SamplingParams, type TokenChoice } from './sampling.js';

export type FinishReason = 'stop' | 'length' | 'cancelled' | 'error';

/** One sequence to continue (one choice of a request). */
export interface Sequence {
  prompt: readonly number[];
  maxTokens: number;
  sampling: SamplingParams;
  rng: Rng;
  /** Called with each new token; return false to end the sequence here (a stop sequence matched). */
  onToken(t: TokenChoice): boolean;
  /** Called exactly once when the sequence leaves the batcher. */
  onDone(reason: FinishReason, error?: Error): void;
  /** Set by the owner (client gone, timeout); the slot is freed before the next step. */
  cancelled?: boolean;
}

interface Active {
  seq: Sequence;
  /** Prompt then generated tokens. */
  tokens: number[];
  /** Positions already written into the cache. */
  cached: number;
  generated: number;
  counts: Map<number, number>;
  /** Order of admission: prompts are read first come, first served. */
  admitted: number;
}

export interface BatcherOptions {
  /** KV-cache slots: how many sequences decode together. */
  slots: number;
  /** Prompt tokens read per sequence and prefill step. */
  prefillChunk: number;
  /** Sequences whose prompts are read together in one prefill step (default 4). Requests tend
   * to arrive together; one graph run for several prompts costs far less than one each. */
  prefillRows?: number;
  /** ONNX Runtime settings; spinning is off unless asked for (see compile). */
  exec?: ExecOptions;
  /**
   * Whether each graph keeps ONNX Runtime's GEMM-packed copy of the weights: faster decoding,
   * but one copy of the weights per graph (5 batch sizes x 3 pool lengths of decode graphs and
   * 3 x 3 of prefill graphs at 16 slots). Without it every graph reads the one shared copy.
   * 'auto' (default): packed unless the packed copies would take more than half of the memory
   * that is free when the graphs are built.
   */
  packWeights?: boolean | 'auto';
  /** 'int8': the graphs' weight GEMMs run on int8 weights, activations quantized per step
   * (CompileOptions.quantization): faster decoding, logits a little off. Default 'none'. */
  quantization?: Quantization;
}

export class Batcher {
  readonly slots: number;
  readonly chunk: number;
  private readonly layout: FlatLayout;
  /** Each parameter as a view of the caller's buffer, read only to build the graphs and let go
   * once all are built (they read the weights file then), so that the buffer can be freed. */
  private readonly weightViews = new Map<string, Float32Array>();
  private readonly active: (Active | undefined)[];
  private readonly waiting: Sequence[] = [];
  /** Decode graphs by batch size and pool length (key `${B}x${L}`); batch sizes are powers of
   * two below `slots`, and `slots` itself. */
  private readonly decodeExes = new Map<string, Executable>();
  private readonly buckets: number[];
  /** Prefill graphs by rows and pool length: rows are powers of two below `prefillRows`, and
   * `prefillRows` itself. */
  private readonly prefillExes = new Map<string, Executable>();
  private readonly prefillBuckets: number[];
  /** Pool lengths the graphs are built for, ascending; the last is the context T. */
  private readonly lengths: number[];
  /** Backing store of the pool: per layer, keys then values, room for [slots, h, T, d]. */
  private readonly backing: Float32Array[];
  /** The pool: per layer, keys then values, each [slots, h, L, d] with L = this.length, laid
   * out at the start of its backing buffer. */
  private caches: HostValue[];
  private length: number;
  /** Output buffers of each graph (logits, then new keys/values), by batch size. */
  private readonly decodeOuts = new Map<number, HostValue[]>();
  private readonly prefillOuts = new Map<number, HostValue[]>();
  private looping = false;
  private admissions = 0;
  /** Totals for /metrics. */
  promptTokens = 0;
  generatedTokens = 0;
  /** Whether the graphs keep packed copies of the weights (see BatcherOptions.packWeights). */
  packed = true;
  /** Why the last graphs built could not share a weights file (undefined: they do). */
  weightsFileError: string | undefined;

  constructor(readonly model: LanguageModel, params: Float32Array, private readonly opts: BatcherOptions) {
    const d = model.dims;
    if (!(Number.isInteger(opts.slots) && opts.slots > 0)) throw new RangeError(`slots must be a positive integer, got ${opts.slots}`);
    if (!(Number.isInteger(opts.prefillChunk) && opts.prefillChunk > 0)) throw new RangeError(`prefill chunk must be a positive integer, got ${opts.prefillChunk}`);
    this.slots = opts.slots;
    this.chunk = Math.min(opts.prefillChunk, d.blockSize);
    this.layout = new FlatLayout(model);
    if (params.length !== this.layout.size) throw new Error(`parameters have ${params.length} values, the model needs ${this.layout.size}`);
    for (const sl of this.layout.slots) this.weightViews.set(sl.name, this.layout.view(params, sl.name));
    this.active = new Array<Active | undefined>(this.slots).fill(undefined);
    if (!(opts.packWeights === undefined || opts.packWeights === 'auto' || typeof opts.packWeights === 'boolean')) {
      throw new RangeError(`packWeights must be true, false or 'auto', got ${JSON.stringify(opts.packWeights)}`);
    }
    checkQuantization(opts.quantization ?? 'none');
    const rows = opts.prefillRows ?? 4;
    if (!(Number.isInteger(rows) && rows > 0)) throw new RangeError(`prefill rows must be a positive integer, got ${rows}`);
    this.buckets = powersUpTo(this.slots);
    this.prefillBuckets = powersUpTo(Math.min(rows, this.slots));
    this.lengths = [...new Set([d.blockSize >> 2, d.blockSize >> 1, d.blockSize].filter((n) => n > 0))];
    this.length = this.lengths[0]!;
    this.backing = Array.from({ length: 2 * d.nLayer }, () => new Float32Array(this.slots * d.nKvHead * d.blockSize * d.headDim));
    this.caches = this.views();
    for (const b of this.buckets) this.decodeOuts.set(b, this.outputBuffers(b, 1));
    for (const b of this.prefillBuckets) this.prefillOuts.set(b, this.outputBuffers(b, this.chunk));
  }

  /**
   * Builds the graphs once, for each pool length: decode (b x 1) for each bucket b, prefill
   * (r x chunk) for each prefill bucket r. Sequences take the lowest free slot, so the live rows are a prefix of the
   * pool and a step runs the smallest decode graph that covers them (a cache's leading rows are
   * one contiguous view); prefill rows are any slots, gathered from the pool inside the graph.
   */
  async compile(): Promise<void> {
    const missing: { into: Map<string, Executable>; key: string; program: Program }[] = [];
    // Transposed weights are made once for all the graphs (foldConstantPermutes).
    const transposed = new Map<HostValue['data'], Map<string, HostValue>>();
    // Called before every step: a graph is traced only when it is missing.
    const add = (into: Map<string, Executable>, key: string, trace: () => Program) => {
      // (Without the weights that only fed a transpose: the file holds what the graphs read.)
      if (!into.has(key)) missing.push({ into, key, program: deadCodeElimination(foldConstantPermutes(trace(), foldEvaluate, transposed)) });
    };
    for (const L of this.lengths) {
      for (const b of this.buckets) add(this.decodeExes, `${b}x${L}`, () => this.program(b, 1, false, L));
      for (const r of this.prefillBuckets) add(this.prefillExes, `${r}x${L}`, () => this.program(r, this.chunk, true, L));
    }
    if (missing.length === 0) return;
    // The graphs read the weights from one file (weights-file.ts), removed once they are built:
    // every float32 constant of a thousand entries or more, each written once.
    const tensors = new Set<Float32Array | Uint8Array>();
    for (const m of missing) for (const n of m.program.graph.nodes) if (n.op === 'const' && n.value!.dtype === 'float32' && n.value!.data.length >= 1024) tensors.add(n.value!.data as Float32Array);
    // With int8 every graph is lowered once beforehand, so that the int8 forms of the weights
    // exist (one per weight, shared by the graphs through the cache) and go into the file too;
    // the float32 weights they replace are then read by no graph and stay out of it.
    const quantization = this.opts.quantization ?? 'none';
    const int8Cache = quantization === 'int8' ? new Map<HostValue['data'], Int8Weight>() : undefined;
    if (int8Cache) {
      for (const m of missing) lowerForSession(m.program, { quantization, int8Cache });
      for (const [float, w] of int8Cache) {
        tensors.delete(float as Float32Array);
        tensors.add(w.bytes);
      }
    }
    // Where the file cannot be written (a full or read-only temporary folder), every graph
    // holds its own copy of the weights instead, packed: as before there was a file.
    let weights: WeightsFile | undefined;
    try {
      weights = new WeightsFile(tensors);
      this.weightsFileError = undefined;
    } catch (e) {
      this.weightsFileError = (e as Error).message;
    }
    const bytes = [...tensors].reduce((sum, t) => sum + t.byteLength, 0);
    const auto = this.opts.packWeights === undefined || this.opts.packWeights === 'auto';
    this.packed = !weights || (auto ? missing.length * bytes < freemem() / 2 : this.opts.packWeights === true);
    // Every graph is its own ONNX Runtime session with its own thread pool, and a step runs
    // several of them in turn; a pool left spinning after its run took the cores from the next
    // session's. On the shared 2-core bench machine, 2 threads, four graphs in turn: a 16-slot
    // decode step took a median 32 ms spinning and 3.1 ms without (1-slot: 4.8 ms and 1.8 ms).
    const exec: CompileOptions = { ...this.opts.exec, spinning: this.opts.exec?.spinning ?? false, weights, packWeights: this.packed, quantization, int8Cache };
    try {
      for (const m of missing) m.into.set(m.key, await compile(m.program, exec));
    } finally {
      weights?.remove();
    }
    // Every graph exists now and compile() will not trace again; graphs that hold their own
    // copies (no weights file) do not need the caller's buffer either.
    this.weightViews.clear();
  }

  /** Decode (`gather` false: the caches are the pool's first b rows) or prefill (`gather`: the
   * whole pool and the slot of each row), over a pool of length L. */
  private program(b: number, s: number, gather: boolean, L: number) {
    const d = this.model.dims;
    const shape = poolShape(d, gather ? this.slots : b, L);
    // Weights are constants of the graph (initializers), not an input: ONNX Runtime then
    // pre-packs them for its GEMMs once instead of slicing a flat buffer on every step. Each
    // constant is one view of the caller's parameters, the same in every graph, not a copy:
    // with copies, every one of the pool's graphs held the weights once more (24 graphs of a
    // 16-slot server; an 86M-parameter model then took 27 GB).
    return buildProgram((t) => {
      const tokens = t.input('tokens', [b, s], 'int32');
      const start = t.input('start', [b], 'int64');
      const slot = gather ? [t.input('slot', [b], 'int64')] : [];
      const pool: LayerCache[] = Array.from({ length: d.nLayer }, (_, i) => ({ k: t.input(`k${i}`, shape), v: t.input(`v${i}`, shape) }));
      const caches = gather ? pool.map((c) => ({ k: c.k.take(slot[0]!), v: c.v.take(slot[0]!) })) : pool;
      const view = (name: string) => {
        const v = this.weightViews.get(name);
        if (!v) throw new Error(`Batcher: the parameters were let go after the graphs were built; cannot trace another (${name})`);
        return v;
      };
      return withParams(this.layout.slots, (sl) => constant({ dtype: 'float32', shape: [...sl.shape], data: view(sl.name) }, t.graph), () => {
        const r = this.model.decode(tokens, start, caches);
        return { inputs: [tokens, start, ...slot, ...pool.flatMap((c) => [c.k, c.v])], outputs: [r.logits, ...r.fresh.flatMap((c) => [c.k, c.v])] };
      });
    });
  }

  private outputBuffers(b: number, s: number): HostValue[] {
    const d = this.model.dims;
    return [hostValue('float32', [b, s, d.vocabSize]), ...Array.from({ length: 2 * d.nLayer }, () => hostValue('float32', [b, d.nKvHead, s, d.headDim]))];
  }

  /**
   * Writes rows [0, n) of batch row `row` of the graph's new keys/values (S positions each)
   * into slot b's cache at positions from, from + 1, ...
   */
  private store(fresh: readonly HostValue[], row: number, b: number, from: number, n: number): void {
    const { nKvHead: h, headDim: d } = this.model.dims;
    const T = this.length;
    fresh.forEach((f, i) => {
      const S = f.shape[2]!;
      const src = f.data as Float32Array;
      const dst = this.caches[i]!.data as Float32Array;
      for (let j = 0; j < h; j++) {
        const at = ((b * h + j) * T + from) * d;
        const off = (row * h + j) * S * d;
        dst.set(src.subarray(off, off + n * d), at);
      }
    });
  }

  /** GEMMs of one decode step that run on int8 weights (0 unless quantization is 'int8'). */
  get int8Gemms(): number {
    const exe = this.decodeExes.values().next().value as Executable | undefined;
    return exe ? exe.nodes.filter((n) => n.op === 'MatMulInteger').length : 0;
  }

  get running(): number {
    return this.active.filter((a) => a !== undefined).length;
  }

  get queued(): number {
    return this.waiting.length;
  }

  /** Positions each slot's cache holds now (a bucket of T/4, T/2, T; see fit). */
  get cacheLength(): number {
    return this.length;
  }

  /** Fraction of the pool's cache positions holding a live sequence's tokens. */
  get cacheUsage(): number {
    const used = this.active.reduce((n, a) => n + (a ? a.cached : 0), 0);
    return used / (this.slots * this.model.dims.blockSize);
  }

  /** Queues a sequence; it starts at the next step that has a free slot. */
  submit(seq: Sequence): void {
    const T = this.model.dims.blockSize;
    if (seq.prompt.length === 0) throw new RangeError('the prompt must contain at least one token');
    if (seq.prompt.length + seq.maxTokens > T) throw new RangeError(`prompt (${seq.prompt.length} tokens) + max_tokens (${seq.maxTokens}) exceeds the context of ${T} tokens`);
    this.waiting.push(seq);
    void this.loop();
  }

  private async loop(): Promise<void> {
    if (this.looping) return;
    this.looping = true;
    try {
      while (this.waiting.length > 0 || this.running > 0) {
        await this.step();
        // Let the event loop take new requests and disconnects between steps.
        await new Promise((r) => setImmediate(r));
      }
    } catch (e) {
      // A failed graph run ends every sequence in flight with the error; the pool starts clean.
      const err = e as Error;
      for (let b = 0; b < this.slots; b++) this.finish(b, 'error', err);
      for (const s of this.waiting.splice(0)) s.onDone('error', err);
    } finally {
      this.looping = false;
    }
  }

  private finish(b: number, reason: FinishReason, error?: Error): void {
    const a = this.active[b];
    if (!a) return;
    this.active[b] = undefined;
    a.seq.onDone(reason, error);
  }

  /** Samples the next token from `row` for slot b; true if the sequence goes on. */
  private emit(b: number, row: Float32Array): boolean {
    const a = this.active[b]!;
    const choice = chooseToken(Float32Array.from(row), a.counts, a.seq.sampling, a.seq.rng);
    a.tokens.push(choice.id);
    a.generated++;
    this.generatedTokens++;
    a.counts.set(choice.id, (a.counts.get(choice.id) ?? 0) + 1);
    const more = a.seq.onToken(choice);
    if (!more || a.seq.cancelled) {
      this.finish(b, a.seq.cancelled ? 'cancelled' : 'stop');
      return false;
    }
    if (a.generated >= a.seq.maxTokens) {
      this.finish(b, 'length');
      return false;
    }
    return true;
  }

  private async step(): Promise<void> {
    await this.compile();
    for (let b = 0; b < this.slots; b++) if (this.active[b]?.seq.cancelled) this.finish(b, 'cancelled');
    for (let b = 0; b < this.slots && this.waiting.length > 0; b++) {
      if (this.active[b]) continue;
      const seq = this.waiting.shift()!;
      if (seq.cancelled) {
        seq.onDone('cancelled');
        b--;
        continue;
      }
      this.active[b] = { seq, tokens: [...seq.prompt], cached: 0, generated: 0, counts: new Map(), admitted: this.admissions++ };
      this.promptTokens += seq.prompt.length;
    }
    this.fit();
    await this.prefill();
    await this.decodeAll();
  }

  /**
   * Re-lays out the pool to the smallest length that holds every position this step writes:
   * the next prompt chunk (and the first generated token after it) or the next token. Positions
   * past the new length belong to no live sequence, so shrinking drops nothing.
   */
  private fit(): void {
    const { nKvHead: h, headDim: d, blockSize: T } = this.model.dims;
    let need = 1;
    for (const a of this.active) {
      if (!a) continue;
      const end = a.cached < a.seq.prompt.length ? Math.min(a.seq.prompt.length, a.cached + this.chunk) : a.cached;
      need = Math.max(need, Math.min(T, end + 1));
    }
    const L = this.lengths.find((x) => x >= need)!;
    if (L === this.length) return;
    // Moved in place, and only the live slots' rows (a new allocation and all 16 slots' rows
    // on every change cost a 16-slot pool 0.1 ms per token at one request at a time). Growing
    // moves rows outward, so the last goes first; shrinking, the first goes first: no row is
    // overwritten before it has moved. Dead slots keep stale but finite values, never read.
    const keep = Math.min(L, this.length) * d;
    const rows: number[] = [];
    this.active.forEach((a, b) => {
      if (a) for (let j = 0; j < h; j++) rows.push(b * h + j);
    });
    if (L > this.length) rows.reverse();
    for (const buf of this.backing) for (const r of rows) buf.copyWithin(r * L * d, r * this.length * d, r * this.length * d + keep);
    this.length = L;
    this.caches = this.views();
  }

  /** The pool at the current length: views of the backing buffers. */
  private views(): HostValue[] {
    const shape = poolShape(this.model.dims, this.slots, this.length);
    const n = shape.reduce((x, y) => x * y, 1);
    return this.backing.map((buf) => ({ dtype: 'float32', shape, data: buf.subarray(0, n) }));
  }

  /**
   * One chunk of the prompt of each of the (up to prefillRows) sequences admitted first. Not
   * the shortest first: new short prompts keep taking the low slots, and a sequence in a high
   * slot then waited forever (the request timed out with a 503 in the 10,000-request soak).
   */
  private async prefill(): Promise<void> {
    const V = this.model.dims.vocabSize;
    const T = this.model.dims.blockSize;
    const C = this.chunk;
    const left = (b: number) => this.active[b]!.seq.prompt.length - this.active[b]!.cached;
    const rows: number[] = [];
    for (let b = 0; b < this.slots; b++) if (this.active[b] && left(b) > 0) rows.push(b);
    if (rows.length === 0) return;
    rows.sort((x, y) => this.active[x]!.admitted - this.active[y]!.admitted);
    const maxRows = this.prefillBuckets[this.prefillBuckets.length - 1]!;
    rows.length = Math.min(rows.length, maxRows);
    const R = this.prefillBuckets.find((x) => x >= rows.length)!;
    const seqs = rows.map((b) => this.active[b]!);
    // The last chunk is padded; it is moved back so that it never reaches past the cache
    // (reading the same tokens at the same positions again is harmless). Rows past the chosen
    // sequences are padding too (slot 0, position 0) and are dropped.
    const from = seqs.map((a) => Math.min(a.cached, Math.max(0, T - C)));
    const ids = new Int32Array(R * C);
    seqs.forEach((a, r) => {
      for (let j = 0; j < C && from[r]! + j < a.seq.prompt.length; j++) ids[r * C + j] = a.seq.prompt[from[r]! + j]!;
    });
    const pad = (xs: number[]) => [...xs, ...new Array<number>(R - xs.length).fill(0)];
    const feeds = [hostValue('int32', [R, C], ids), hostValue('int64', [R], pad(from)), hostValue('int64', [R], pad(rows)), ...this.caches];
    const [logits, ...fresh] = await this.prefillExes.get(`${R}x${this.length}`)!.run(feeds, this.prefillOuts.get(R)!);
    const data = logits!.data as Float32Array;
    seqs.forEach((a, r) => {
      const b = rows[r]!;
      if (this.active[b] !== a) return;
      // Only the prompt's positions are kept; the padding's rows are never read (queries see
      // the cache before their chunk's start only).
      this.store(fresh, r, b, from[r]!, Math.min(C, a.seq.prompt.length - from[r]!));
      a.cached = Math.min(a.seq.prompt.length, from[r]! + C);
      if (a.cached === a.seq.prompt.length) {
        const last = r * C + a.cached - 1 - from[r]!;
        this.emit(b, data.subarray(last * V, (last + 1) * V));
      }
    });
  }

  /** One token for every slot whose prompt is read; other rows run on padding and are dropped. */
  private async decodeAll(): Promise<void> {
    const V = this.model.dims.vocabSize;
    const T = this.model.dims.blockSize;
    const decoding = this.active.map((a) => a !== undefined && a.cached >= a.seq.prompt.length && a.tokens.length > a.cached);
    if (!decoding.some(Boolean)) return;
    // Rows past the last live slot are idle: the smallest graph that covers the live ones runs.
    let live = 0;
    this.active.forEach((a, b) => a && (live = b + 1));
    const B = this.buckets.find((x) => x >= live)!;
    const rows = this.active.slice(0, B);
    const tokens = rows.map((a, b) => (decoding[b] ? a!.tokens[a!.tokens.length - 1]! : 0));
    const start = rows.map((a) => (a ? Math.min(a.cached, T - 1) : 0));
    const [logits, ...fresh] = await this.decodeExes.get(`${B}x${this.length}`)!.run([hostValue('int32', [B, 1], tokens), hostValue('int64', [B], start), ...this.caches.map((c) => this.rows(c, 0, B))], this.decodeOuts.get(B)!);
    // Only decoding rows keep their new key/value; an idle or prefilling row's is dropped.
    for (let b = 0; b < B; b++) if (decoding[b] && this.active[b]) this.store(fresh, b, b, this.active[b]!.cached, 1);
    const data = logits!.data as Float32Array;
    for (let b = 0; b < B; b++) {
      const a = this.active[b];
      if (!decoding[b] || !a) continue;
      a.cached++;
      this.emit(b, data.subarray(b * V, (b + 1) * V));
    }
  }

  /** Rows [from, to) of a pool-sized cache, as a value of batch to - from. */
  private rows(c: HostValue, from: number, to: number): HostValue {
    const per = c.data.length / this.slots;
    return { dtype: 'float32', shape: [to - from, ...c.shape.slice(1)], data: (c.data as Float32Array).subarray(from * per, to * per) };
  }

}

/** The shape of a cache pool of `batch` sequences and `length` positions. */
function poolShape(dims: LanguageModel['dims'], batch: number, length: number): number[] {
  return [batch, dims.nKvHead, length, dims.headDim];
}

/** 1, 2, 4, ... below n, then n. */
function powersUpTo(n: number): number[] {
  const out: number[] = [];
  for (let b = 1; b < n; b *= 2) out.push(b);
  out.push(n);
  return out;
}
