// GPT: a decoder-only transformer language model (GPT-2 layout and parameter names, tied
// input/output embeddings), written top to bottom in the order data flows.
import type { Tensor } from '../tensor/tensor.js';
import { causalBias, crossEntropy, gelu, softmax, split } from '../tensor/functional.js';
import { constant } from '../tensor/tensor.js';
import { hostValue } from '../ir/value.js';
import { Module } from '../nn/module.js';
import { Dropout, Embedding, LayerNorm, Linear } from '../nn/layers.js';
import { type GPTConfig, gptConfig, gptFlopsPerToken, gptParamCount } from './config.js';
import type { DecodeResult, LanguageModel, LayerCache, ModelDims, ModelUnits, TensorParallelSplit } from './model.js';
import { cachedAttention, chunkPositions, writeCache, type BlockDecode } from './kv-cache.js';

export type { LayerCache };

export class CausalSelfAttention extends Module {
  readonly cAttn: Linear;
  readonly cProj: Linear;
  readonly attnDrop: Dropout;
  readonly residDrop: Dropout;

  constructor(readonly c: GPTConfig, layer: number) {
    super();
    this.cAttn = this.child('c_attn', new Linear(c.nEmbd, 3 * c.nEmbd, { bias: c.bias }));
    // GPT-2 scales residual projections by 1/sqrt(2 n_layer) at init.
    this.cProj = this.child('c_proj', new Linear(c.nEmbd, c.nEmbd, { bias: c.bias, std: 0.02 / Math.sqrt(2 * c.nLayer) }));
    this.attnDrop = new Dropout(c.dropout, layer * 8 + 1);
    this.residDrop = new Dropout(c.dropout, layer * 8 + 2);
  }

  private heads(x: Tensor): Tensor {
    const [b, t] = x.shape as [number, number, number];
    return x.reshape([b, t, this.c.nHead, this.c.nEmbd / this.c.nHead]).permute([0, 2, 1, 3]);
  }

  forward(x: Tensor, key?: Tensor): Tensor {
    const [b, t, C] = x.shape as [number, number, number];
    const [q, k, v] = split(this.cAttn.forward(x, key), 3, -1).map((z) => this.heads(z));
    // Scaling q (T x hs) instead of the scores (T x T) is the same maths on a smaller tensor.
    const scale = 1 / Math.sqrt(C / this.c.nHead);
    let att = q!.mul(scale).matmul(k!.transpose(-2, -1));
    att = softmax(att.add(causalBias(t, t, x.graph)), -1);
    // Dropout's 1/(1-p) goes on att @ v (T x hs) rather than on att (T x T): same result.
    const dropped = this.attnDrop.forwardUnscaled(att, key);
    let y = dropped.y.matmul(v!);
    if (dropped.scale !== 1) y = y.mul(dropped.scale);
    y = y.permute([0, 2, 1, 3]).reshape([b, t, C]);
    return this.residDrop.forward(this.cProj.forward(y, key), key);
  }

  /** New tokens x [B, S, C] at positions pos [B, S] against fixed-size caches [B, nh, blockSize, hs]. */
  decode(x: Tensor, cache: LayerCache, pos: Tensor): BlockDecode {
    const [b, s, C] = x.shape as [number, number, number];
    const [q, k, v] = split(this.cAttn.forward(x), 3, -1).map((z) => this.heads(z)); // (B, nh, S, hs)
    const fresh = { k: k!, v: v! };
    const y = cachedAttention(q!, cache, fresh, pos).permute([0, 2, 1, 3]).reshape([b, s, C]);
    return { y: this.cProj.forward(y), cache: { k: writeCache(cache.k, k!, pos), v: writeCache(cache.v, v!, pos) }, fresh };
  }
}

export class MLP extends Module {
  readonly cFc: Linear;
  readonly cProj: Linear;
  readonly drop: Dropout;

  constructor(c: GPTConfig, layer: number) {
    super();
    this.cFc = this.child('c_fc', new Linear(c.nEmbd, 4 * c.nEmbd, { bias: c.bias }));
    this.cProj = this.child('c_proj', new Linear(4 * c.nEmbd, c.nEmbd, { bias: c.bias, std: 0.02 / Math.sqrt(2 * c.nLayer) }));
    this.drop = new Dropout(c.dropout, layer * 8 + 3);
  }

  forward(x: Tensor, key?: Tensor): Tensor {
    return this.drop.forward(this.cProj.forward(gelu(this.cFc.forward(x, key), 'tanh'), key), key);
  }
}

export class Block extends Module {
  readonly ln1: LayerNorm;
  readonly attn: CausalSelfAttention;
  readonly ln2: LayerNorm;
  readonly mlp: MLP;

  constructor(c: GPTConfig, layer: number) {
    super();
    this.ln1 = this.child('ln_1', new LayerNorm(c.nEmbd, { bias: c.bias }));
    this.attn = this.child('attn', new CausalSelfAttention(c, layer));
    this.ln2 = this.child('ln_2', new LayerNorm(c.nEmbd, { bias: c.bias }));
    this.mlp = this.child('mlp', new MLP(c, layer));
  }

  forward(x: Tensor, key?: Tensor): Tensor {
    const h = x.add(this.attn.forward(this.ln1.forward(x), key));
    return h.add(this.mlp.forward(this.ln2.forward(h), key));
  }

  decode(x: Tensor, cache: LayerCache, pos: Tensor): BlockDecode {
    const a = this.attn.decode(this.ln1.forward(x), cache, pos);
    const h = x.add(a.y);
    return { y: h.add(this.mlp.forward(this.ln2.forward(h))), cache: a.cache, fresh: a.fresh };
  }
}

class Transformer extends Module {
  readonly wte: Embedding;
  readonly wpe: Embedding;
  readonly h: Block[];
  readonly lnF: LayerNorm;
  readonly drop: Dropout;

  constructor(c: GPTConfig) {
    super();
    this.wte = this.child('wte', new Embedding(c.vocabSize, c.nEmbd));
    this.wpe = this.child('wpe', new Embedding(c.blockSize, c.nEmbd));
    const blocks = new BlockList(c);
    this.child('h', blocks);
    this.h = blocks.blocks;
    this.lnF = this.child('ln_f', new LayerNorm(c.nEmbd, { bias: c.bias }));
    this.drop = new Dropout(c.dropout, 0);
  }
}

class BlockList extends Module {
  readonly blocks: Block[];
  constructor(c: GPTConfig) {
    super();
    this.blocks = Array.from({ length: c.nLayer }, (_, i) => this.child(String(i), new Block(c, i + 1)));
  }
}

export class GPT extends Module implements LanguageModel {
  readonly family = 'gpt2';
  readonly config: GPTConfig;
  readonly dims: ModelDims;
  readonly transformer: Transformer;

  constructor(config: Partial<GPTConfig>) {
    super();
    this.config = gptConfig(config);
    const c = this.config;
    this.dims = { nLayer: c.nLayer, nEmbd: c.nEmbd, nHead: c.nHead, nKvHead: c.nHead, headDim: c.nEmbd / c.nHead, blockSize: c.blockSize, vocabSize: c.vocabSize, dropout: c.dropout };
    this.transformer = this.child('transformer', new Transformer(this.config));
  }

  get blocks(): readonly Block[] {
    return this.transformer.h;
  }

  architecture(): Record<string, unknown> {
    return { family: this.family, ...this.config };
  }

  units(): ModelUnits {
    return {
      embed: ['transformer.wte', 'transformer.wpe'],
      blocks: this.transformer.h.map((_, i) => `transformer.h.${i}`),
      // The head reads the tied token embedding and the final norm.
      head: ['transformer.wte', 'transformer.ln_f'],
    };
  }

  tensorParallelSplit(name: string): TensorParallelSplit {
    // Parameters are stored [in, out] (GPT-2's Conv1D layout): column-parallel splits axis 1.
    // c_attn's output is [q | k | v]: a column split takes the same head range from each third.
    if (name === 'transformer.wte.weight') return { kind: 'vocab', axis: 0 };
    if (/\.attn\.c_attn\.weight$/.test(name)) return { kind: 'column', axis: 1, parts: 3 };
    if (/\.attn\.c_attn\.bias$/.test(name)) return { kind: 'column', axis: 0, parts: 3 };
    if (/\.mlp\.c_fc\.weight$/.test(name)) return { kind: 'column', axis: 1 };
    if (/\.mlp\.c_fc\.bias$/.test(name)) return { kind: 'column', axis: 0 };
    if (/\.(attn|mlp)\.c_proj\.weight$/.test(name)) return { kind: 'row', axis: 0 };
    return { kind: 'replicated' };
  }

  paramCount(): number {
    return gptParamCount(this.config);
  }

  flopsPerToken(): number {
    return gptFlopsPerToken(this.config);
  }

  /** Token + position embeddings for idx [B, T]. */
  embed(idx: Tensor, key?: Tensor): Tensor {
    const t = idx.shape[1]!;
    if (t > this.config.blockSize) throw new RangeError(`sequence length ${t} exceeds block_size ${this.config.blockSize}`);
    const pos = constant(hostValue('int32', [t], [...Array(t).keys()]), idx.graph);
    return this.transformer.drop.forward(this.transformer.wte.forward(idx).add(this.transformer.wpe.forward(pos)), key);
  }

  /** Final norm and the tied LM head. */
  head(x: Tensor): Tensor {
    return this.transformer.lnF.forward(x).matmul(this.transformer.wte.weight.value.transpose(0, 1));
  }

  /** Logits [B, T, V] for idx [B, T]; key enables dropout. */
  forward(idx: Tensor, key?: Tensor): Tensor {
    let x = this.embed(idx, key);
    for (const block of this.transformer.h) x = block.forward(x, key);
    return this.head(x);
  }

  loss(idx: Tensor, targets: Tensor, key?: Tensor): Tensor {
    return crossEntropy(this.forward(idx, key), targets, -1);
  }

  decode(tokens: Tensor, start: Tensor, caches: readonly LayerCache[]): DecodeResult {
    const pos = chunkPositions(start, tokens.shape[1]!); // (B, S)
    let x = this.transformer.wte.forward(tokens).add(this.transformer.wpe.weight.value.take(pos)); // (B, S, C)
    const out: LayerCache[] = [];
    const fresh: LayerCache[] = [];
    this.transformer.h.forEach((block, i) => {
      const r = block.decode(x, caches[i]!, pos);
      x = r.y;
      out.push(r.cache);
      fresh.push(r.fresh);
    });
    return { logits: this.head(x), caches: out, fresh };
  }
}
