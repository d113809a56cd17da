// Incremental decoding with a KV cache: one compiled graph takes a token, its position and
// the per-layer caches (fixed size [1, nh, block, hs], so the graph never changes) and
// returns next-token logits and the updated caches. Past the block size the positions of every
// cached token shift (learned absolute position embeddings), so the cache cannot slide; each
// further token then costs one windowed forward over the last block_size tokens (a second
// compiled graph), linear in the window and independent of how many tokens came before.
// Sampling (temperature, top-k) is on the host.
import { hostValue, type HostValue } from '../ir/value.js';
import { compile, type Executable } from '../runtime/execute.js';
import type { ExecOptions } from '../runtime/session.js';
import { buildProgram } from '../tensor/program.js';
import { Rng } from '../tensor/rng.js';
import { FlatLayout, flatView, withParams } from '../nn/flat.js';
import { cacheShape, type LanguageModel, type LayerCache } from '../models/model.js';

export interface SampleOptions {
  maxNewTokens: number;
  temperature: number;
  topK?: number;
  seed: number;
}

export class Generator {
  private exe?: Executable;
  private windowExe?: Executable;
  private readonly layout: FlatLayout;
  private readonly cacheShape: number[];

  constructor(readonly model: LanguageModel, private readonly params: Float32Array, private readonly exec: ExecOptions = {}) {
    this.layout = new FlatLayout(model);
    if (params.length !== this.layout.size) throw new Error(`parameters have ${params.length} values, the model needs ${this.layout.size}`);
    this.cacheShape = cacheShape(model.dims, 1);
  }

  private async compiled(): Promise<Executable> {
    if (this.exe) return this.exe;
    const c = this.model.dims;
    const program = buildProgram((t) => {
      const params = t.input('params', [this.layout.size]);
      const token = t.input('token', [1, 1], 'int32');
      const pos = t.input('pos', [1], 'int64');
      const caches: LayerCache[] = Array.from({ length: c.nLayer }, (_, i) => ({ k: t.input(`k${i}`, this.cacheShape), v: t.input(`v${i}`, this.cacheShape) }));
      return withParams(this.layout.slots, (s) => flatView(params, s), () => {
        const r = this.model.decode(token, pos, caches);
        const logits = r.logits.reshape([1, c.vocabSize]);
        return { inputs: [params, token, pos, ...caches.flatMap((x) => [x.k, x.v])], outputs: [logits, ...r.caches.flatMap((x) => [x.k, x.v])] };
      });
    });
    this.exe = await compile(program, this.exec);
    return this.exe;
  }

  /** Logits of the last position of a full window [1, blockSize] (int32 ids) -> [1, V]. */
  private async windowed(): Promise<Executable> {
    if (this.windowExe) return this.windowExe;
    const c = this.model.dims;
    const program = buildProgram((t) => {
      const params = t.input('params', [this.layout.size]);
      const ids = t.input('ids', [1, c.blockSize], 'int32');
      return withParams(this.layout.slots, (s) => flatView(params, s), () => {
        let x = this.model.embed(ids); // [1, T, C]
        for (const block of this.model.blocks) x = block.forward(x);
        const last = x.slice(null, [c.blockSize - 1, c.blockSize], null); // [1, 1, C]: only the last position needs the head
        return { inputs: [params, ids], outputs: [this.model.head(last).reshape([1, c.vocabSize])] }; // [1, V]
      });
    });
    this.windowExe = await compile(program, this.exec);
    return this.windowExe;
  }

  /** Continues `prompt` (token ids: an array or a tokenizer's Uint32Array) by maxNewTokens
   * sampled tokens; returns only the new ones. */
  async generate(prompt: ArrayLike<number>, o: SampleOptions): Promise<number[]> {
    if (prompt.length === 0) throw new Error('the prompt must contain at least one token');
    if (!(o.temperature >= 0)) throw new Error(`temperature must be >= 0, got ${o.temperature}`);
    const exe = await this.compiled();
    const c = this.model.dims;
    const rng = new Rng(o.seed);
    const params = hostValue('float32', [this.layout.size], this.params);
    const nCache = 2 * c.nLayer;
    let caches: HostValue[] = Array.from({ length: nCache }, () => hostValue('float32', this.cacheShape));
    let spare: HostValue[] = Array.from({ length: nCache }, () => hostValue('float32', this.cacheShape));
    const logits = hostValue('float32', [1, c.vocabSize]);
    // The cache holds at most block_size positions; keep the most recent ones (nanoGPT crops the context the same way).
    let context = Array.from(prompt).slice(-c.blockSize);
    const out: number[] = [];
    const feed = async (tok: number, pos: number) => {
      await exe.run([params, hostValue('int32', [1, 1], [tok]), hostValue('int64', [1], [pos]), ...caches], [logits, ...spare]);
      [caches, spare] = [spare, caches];
    };
    const ids = hostValue('int32', [1, c.blockSize]);
    const slide = async () => {
      (ids.data as Int32Array).set(context);
      const win = await this.windowed();
      await win.run([params, ids], [logits]);
    };
    for (let p = 0; p < context.length; p++) await feed(context[p]!, p);
    for (let n = 0; n < o.maxNewTokens; n++) {
      const next = sampleToken(logits.data as Float32Array, o.temperature, o.topK, rng);
      out.push(next);
      if (n === o.maxNewTokens - 1) break; // the last token's logits are never used
      if (context.length === c.blockSize) {
        context = [...context.slice(1), next];
        await slide();
      } else {
        context.push(next);
        await feed(next, context.length - 1);
      }
    }
    return out;
  }
}

/** Samples from softmax(logits / T) restricted to the top k; temperature 0 is greedy. */
export function sampleToken(logits: Float32Array, temperature: number, topK: number | undefined, rng: Rng): number {
  const n = logits.length;
  let order = Array.from({ length: n }, (_, i) => i);
  if (temperature === 0) return order.reduce((best, i) => (logits[i]! > logits[best]! ? i : best), 0);
  if (topK !== undefined && topK > 0 && topK < n) order = order.sort((a, b) => logits[b]! - logits[a]!).slice(0, topK);
  let max = -Infinity;
  for (const i of order) max = Math.max(max, logits[i]!);
  const w = order.map((i) => Math.exp((logits[i]! - max) / temperature));
  const total = w.reduce((a, b) => a + b, 0);
  let u = rng.uniform() * total;
  for (let j = 0; j < order.length; j++) {
    u -= w[j]!;
    if (u <= 0) return order[j]!;
  }
  return order[order.length - 1]!;
}
