// GPT: a decoder-only transformer language model (GPT-2 layout and parameter names, tied
// input/output embeddings), written top to bottom in the order data flows.
import type { Tensor } from '../tensor/tensor.js';
import { causalBias, crossEntropy, gelu, softmax, split } from '../tensor/functional.js';
import { constant } from '../tensor/tensor.js';
import { hostValue } from '../ir/value.js';
import { Module } from '../nn/module.js';
import { Dropout, Embedding, LayerNorm, Linear } from '../nn/layers.js';
import { ColumnParallelLinear, RowParallelLinear, VocabParallelEmbedding, enterParallel, sequenceBlock, shardSize, vocabParallelCrossEntropy, type TensorParallelism } from '../nn/tensor-parallel.js';
import { type GPTConfig, gptConfig, gptFlopsPerToken, gptParamCount } from './config.js';
import type { DecodeResult, LanguageModel, LayerCache, ModelDims, ModelUnits, TpSplit } from './model.js';
import { cachedAttention, chunkPositions, writeCache, type BlockDecode } from './kv-cache.js';

export type { LayerCache };

/** A linear layer: plain, or (under tensor parallelism) column- or row-parallel. */
function linear(tp: TensorParallelism | undefined, split: 'column' | 'row', inF: number, outF: number, opts: { bias: boolean; std?: number }): Linear {
  if (!tp) return new Linear(inF, outF, opts);
  return split === 'column' ? new ColumnParallelLinear(inF, outF, tp, opts) : new RowParallelLinear(inF, outF, tp, opts);
}

export class CausalSelfAttention extends Module {
  readonly cAttn: Linear;
  readonly cProj: Linear;
  readonly attnDrop: Dropout;
  readonly residDrop: Dropout;
  /** Heads on this rank (all of them without tensor parallelism). */
  readonly nHead: number;

  constructor(readonly c: GPTConfig, layer: number, readonly tp?: TensorParallelism) {
    super();
    this.nHead = tp ? shardSize(c.nHead, tp, 'attention heads') : c.nHead;
    // Column-parallel c_attn: each rank's output is [q | k | v] of its own heads.
    this.cAttn = this.child('c_attn', linear(tp, 'column', c.nEmbd, 3 * c.nEmbd, { bias: c.bias }));
    // GPT-2 scales residual projections by 1/sqrt(2 n_layer) at init.
    this.cProj = this.child('c_proj', linear(tp, 'row', c.nEmbd, c.nEmbd, { bias: c.bias, std: 0.02 / Math.sqrt(2 * c.nLayer) }));
    this.attnDrop = new Dropout(c.dropout, layer * 8 + 1);
    this.residDrop = new Dropout(c.dropout, layer * 8 + 2);
  }

  private heads(x: Tensor): Tensor {
    const [b, t] = x.shape as [number, number, number];
    return x.reshape([b, t, this.nHead, this.c.nEmbd / this.c.nHead]).permute([0, 2, 1, 3]);
  }

  forward(x: Tensor, key?: Tensor): Tensor {
    const qkv = this.cAttn.forward(x, key);
    // With sequence parallelism x holds part of the sequence; c_attn gathered all of it.
    const [b, t] = qkv.shape as [number, number, number];
    const hs = this.c.nEmbd / this.c.nHead;
    const [q, k, v] = split(qkv, 3, -1).map((z) => this.heads(z));
    // Scaling q (T x hs) instead of the scores (T x T) is the same maths on a smaller tensor.
    const scale = 1 / Math.sqrt(hs);
    let att = q!.mul(scale).matmul(k!.transpose(-2, -1));
    att = softmax(att.add(causalBias(t, t, x.graph, att.dtype === 'float64' ? 'float64' : 'float32')), -1);
    // Local heads draw the global heads' mask elements, as one process would.
    const heads = this.tp ? { global: [b, this.c.nHead, t, t], offset: [0, this.tp.axis.rank * this.nHead, 0, 0] } : undefined;
    // Dropout's 1/(1-p) goes on att @ v (T x hs) rather than on att (T x T): same result.
    const dropped = this.attnDrop.forwardUnscaled(att, key, heads);
    let y = dropped.y.matmul(v!);
    if (dropped.scale !== 1) y = y.mul(dropped.scale);
    y = y.permute([0, 2, 1, 3]).reshape([b, t, this.nHead * hs]);
    const out = this.cProj.forward(y, key);
    return this.residDrop.forward(out, key, sequenceBlock(out, this.tp));
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

  constructor(c: GPTConfig, layer: number, readonly tp?: TensorParallelism) {
    super();
    this.cFc = this.child('c_fc', linear(tp, 'column', c.nEmbd, 4 * c.nEmbd, { bias: c.bias }));
    this.cProj = this.child('c_proj', linear(tp, 'row', 4 * c.nEmbd, c.nEmbd, { bias: c.bias, std: 0.02 / Math.sqrt(2 * c.nLayer) }));
    this.drop = new Dropout(c.dropout, layer * 8 + 3);
  }

  forward(x: Tensor, key?: Tensor): Tensor {
    const y = this.cProj.forward(gelu(this.cFc.forward(x, key), 'tanh'), key);
    return this.drop.forward(y, key, sequenceBlock(y, this.tp));
  }
}

export class Block extends Module {
  readonly ln1: LayerNorm;
  readonly attn: CausalSelfAttention;
  readonly ln2: LayerNorm;
  readonly mlp: MLP;

  constructor(c: GPTConfig, layer: number, tp?: TensorParallelism) {
    super();
    this.ln1 = this.child('ln_1', new LayerNorm(c.nEmbd, { bias: c.bias }));
    this.attn = this.child('attn', new CausalSelfAttention(c, layer, tp));
    this.ln2 = this.child('ln_2', new LayerNorm(c.nEmbd, { bias: c.bias }));
    this.mlp = this.child('mlp', new MLP(c, layer, tp));
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

  constructor(c: GPTConfig, tp?: TensorParallelism) {
    super();
    this.wte = this.child('wte', tp ? new VocabParallelEmbedding(c.vocabSize, c.nEmbd, tp) : new Embedding(c.vocabSize, c.nEmbd));
    this.wpe = this.child('wpe', new Embedding(c.blockSize, c.nEmbd));
    const blocks = new BlockList(c, tp);
    this.child('h', blocks);
    this.h = blocks.blocks;
    this.lnF = this.child('ln_f', new LayerNorm(c.nEmbd, { bias: c.bias }));
    this.drop = new Dropout(c.dropout, 0);
  }
}

class BlockList extends Module {
  readonly blocks: Block[];
  constructor(c: GPTConfig, tp?: TensorParallelism) {
    super();
    this.blocks = Array.from({ length: c.nLayer }, (_, i) => this.child(String(i), new Block(c, i + 1, tp)));
  }
}

export class GPT extends Module implements LanguageModel {
  readonly family = 'gpt2';
  readonly config: GPTConfig;
  readonly dims: ModelDims;
  readonly transformer: Transformer;

  /**
   * `tp`: build this tensor-parallel rank's shard (heads, MLP features and vocabulary rows of
   * its range; parameter names as in the full model, shapes local).
   */
  constructor(config: Partial<GPTConfig>, readonly tp?: TensorParallelism) {
    super();
    this.config = gptConfig(config);
    const c = this.config;
    this.dims = { nLayer: c.nLayer, nEmbd: c.nEmbd, nHead: c.nHead, nKvHead: c.nHead, headDim: c.nEmbd / c.nHead, blockSize: c.blockSize, vocabSize: c.vocabSize, dropout: c.dropout };
    this.transformer = this.child('transformer', new Transformer(this.config, tp));
  }

  tensorParallelShard(tp: TensorParallelism): GPT {
    return new GPT(this.config, tp);
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

  tensorParallelSplit(name: string): TpSplit {
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
    const tok = this.transformer.wte.forward(idx);
    // With sequence parallelism this rank holds positions [rank T/tp, (rank + 1) T/tp).
    const part = tok.shape[1]!;
    const first = part === t ? 0 : this.tp!.axis.rank * part;
    const pos = constant(hostValue('int32', [part], Array.from({ length: part }, (_, i) => first + i)), idx.graph);
    const x = tok.add(this.transformer.wpe.forward(pos));
    return this.transformer.drop.forward(x, key, sequenceBlock(x, this.tp));
  }

  /** Final norm and the tied LM head (this rank's vocabulary range under tensor parallelism). */
  head(x: Tensor): Tensor {
    const h = this.transformer.lnF.forward(x);
    const wte = this.transformer.wte;
    if (wte instanceof VocabParallelEmbedding) return wte.logits(enterParallel(h, wte.tp));
    return h.matmul(wte.weight.value.transpose(0, 1));
  }

  /** Mean cross-entropy of the head's logits; vocabulary-parallel under tensor parallelism. */
  headLoss(x: Tensor, targets: Tensor): Tensor {
    const wte = this.transformer.wte;
    if (wte instanceof VocabParallelEmbedding) return vocabParallelCrossEntropy(this.head(x), targets, wte.start, wte.tp.axis);
    return crossEntropy(this.head(x), targets, -1);
  }

  /** Logits [B, T, V] for idx [B, T]; key enables dropout. */
  forward(idx: Tensor, key?: Tensor): Tensor {
    let x = this.embed(idx, key);
    for (const block of this.transformer.h) x = block.forward(x, key);
    return this.head(x);
  }

  loss(idx: Tensor, targets: Tensor, key?: Tensor): Tensor {
    let x = this.embed(idx, key);
    for (const block of this.transformer.h) x = block.forward(x, key);
    return this.headLoss(x, targets);
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
