// Batched generation for evaluation: B sequences advance together, one token per sequence per
// step, through one compiled decode graph (tokens [B, 1] at per-row positions). A row reads its
// prompt first and then its own samples, so prompts of different lengths share every step, and
// a finished row idles (rewriting its last slot, which no live row reads) until the batch ends.
import { hostValue, type HostValue } from '../../ir/value.js';
import { compile, type Executable } from '../../runtime/execute.js';
import type { ExecOptions } from '../../runtime/session.js';
import { buildProgram } from '../../tensor/program.js';
import { Rng } from '../../tensor/rng.js';
import { FlatLayout, flatView, withParams } from '../../nn/flat.js';
import { cacheShape, type LanguageModel, type LayerCache } from '../../models/model.js';
import { sampleToken } from '../generate.js';

export interface BatchGenerateOptions {
  maxNewTokens: number;
  temperature: number;
  topK?: number;
  seed: number;
  /** Generation of a row ends after this token (it is not returned). */
  stopToken?: number;
}

export class BatchGenerator {
  private exe?: Executable;
  private readonly layout: FlatLayout;

  constructor(readonly model: LanguageModel, private readonly params: Float32Array, readonly rows: number, private readonly exec: ExecOptions = {}) {
    this.layout = new FlatLayout(model);
    if (params.length !== this.layout.size) throw new Error(`parameters have ${params.length} values, the model needs ${this.layout.size}`);
  }

  private async compiled(): Promise<Executable> {
    if (this.exe) return this.exe;
    const B = this.rows;
    const shape = cacheShape(this.model.dims, B);
    const program = buildProgram((t) => {
      const params = t.input('params', [this.layout.size]);
      const tokens = t.input('tokens', [B, 1], 'int32');
      const start = t.input('start', [B], 'int64');
      const caches: LayerCache[] = Array.from({ length: this.model.dims.nLayer }, (_, i) => ({ k: t.input(`k${i}`, shape), v: t.input(`v${i}`, shape) }));
      return withParams(this.layout.slots, (s) => flatView(params, s), () => {
        const r = this.model.decode(tokens, start, caches);
        const logits = r.logits.reshape([B, this.model.dims.vocabSize]);
        return { inputs: [params, tokens, start, ...caches.flatMap((c) => [c.k, c.v])], outputs: [logits, ...r.caches.flatMap((c) => [c.k, c.v])] };
      });
    });
    this.exe = await compile(program, this.exec);
    return this.exe;
  }

  /** Continues up to `rows` prompts; each prompt is cut from the left to leave room for maxNewTokens. */
  async generate(prompts: readonly (readonly number[])[], o: BatchGenerateOptions): Promise<number[][]> {
    const B = this.rows;
    if (prompts.length === 0 || prompts.length > B) throw new Error(`give 1..${B} prompts, got ${prompts.length}`);
    if (prompts.some((p) => p.length === 0)) throw new Error('every prompt must contain at least one token');
    const d = this.model.dims;
    const room = d.blockSize - o.maxNewTokens;
    if (room < 1) throw new Error(`max new tokens ${o.maxNewTokens} leaves no room for a prompt in the block size ${d.blockSize}`);
    const exe = await this.compiled();
    const rng = new Rng(o.seed);
    const shape = cacheShape(d, B);
    const params = hostValue('float32', [this.layout.size], this.params);
    let caches: HostValue[] = Array.from({ length: 2 * d.nLayer }, () => hostValue('float32', shape));
    let spare: HostValue[] = Array.from({ length: 2 * d.nLayer }, () => hostValue('float32', shape));
    const logits = hostValue('float32', [B, d.vocabSize]);
    const ctx = Array.from({ length: B }, (_, b) => [...(prompts[b] ?? prompts[0]!).slice(-room)]);
    const out: number[][] = ctx.map(() => []);
    const done = ctx.map((_, b) => b >= prompts.length);
    const pos = ctx.map(() => 0);
    const tokens = hostValue('int32', [B, 1]);
    const start = hostValue('int64', [B]);
    while (!done.every(Boolean)) {
      for (let b = 0; b < B; b++) {
        (tokens.data as Int32Array)[b] = ctx[b]![Math.min(pos[b]!, ctx[b]!.length - 1)]!;
        (start.data as BigInt64Array)[b] = BigInt(Math.min(pos[b]!, ctx[b]!.length - 1));
      }
      await exe.run([params, tokens, start, ...caches], [logits, ...spare]);
      [caches, spare] = [spare, caches];
      for (let b = 0; b < B; b++) {
        if (done[b]) continue;
        pos[b]!++;
        if (pos[b]! < ctx[b]!.length) continue; // still reading the prompt
        const row = (logits.data as Float32Array).subarray(b * d.vocabSize, (b + 1) * d.vocabSize);
        const next = sampleToken(row, o.temperature, o.topK, rng);
        if (next === o.stopToken) {
          done[b] = true;
          continue;
        }
        out[b]!.push(next);
        ctx[b]!.push(next);
        if (out[b]!.length >= o.maxNewTokens) done[b] = true;
      }
    }
    return out.slice(0, prompts.length);
  }
}
