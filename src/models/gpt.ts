// GPT: a decoder-only transformer language model (GPT-2 layout and parameter names, tied
// input/output embeddings), written top to bottom in the order data flows.
import type { Tensor } from '../tensor/tensor.js';
import { causalBias, crossEntropy, gelu, softmax, split, where } from '../tensor/functional.js';
import { constant } from '../tensor/tensor.js';
import { hostValue } from '../ir/value.js';
import { Module } from '../nn/module.js';
import { Dropout, Embedding, LayerNorm, Linear } from '../nn/layers.js';
import { type GPTConfig, gptConfig } from './config.js';

/** Past keys and values of one layer during incremental decoding: [B, nh, blockSize, hs]. */
export interface LayerCache {
  k: Tensor;
  v: Tensor;
}

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
    const [q, k, v] = split(this.cAttn.forward(x), 3, -1).map((z) => this.heads(z));
    // Scaling q (T x hs) instead of the scores (T x T) is the same maths on a smaller tensor.
    const scale = 1 / Math.sqrt(C / this.c.nHead);
    let att = q!.mul(scale).matmul(k!.transpose(-2, -1));
    att = softmax(att.add(causalBias(t, t, x.graph)), -1);
    // Dropout's 1/(1-p) goes on att @ v (T x hs) rather than on att (T x T): same result.
    const dropped = this.attnDrop.forwardUnscaled(att, key);
    let y = dropped.y.matmul(v!);
    if (dropped.scale !== 1) y = y.mul(dropped.scale);
    y = y.permute([0, 2, 1, 3]).reshape([b, t, C]);
    return this.residDrop.forward(this.cProj.forward(y), key);
  }

  /** One new token at position `pos` against a fixed-size cache (shapes never change, so one compiled graph serves every position). */
  decode(x: Tensor, cache: LayerCache, pos: Tensor, slot: Tensor): { y: Tensor; cache: LayerCache } {
    const [b, , C] = x.shape as [number, number, number];
    const [q, k, v] = split(this.cAttn.forward(x), 3, -1).map((z) => this.heads(z));
    // Write the new key/value into slot `pos` of the cache (slot: bool [T, 1], true at pos).
    const kc = where(slot, k!.expand(cache.k.shape), cache.k);
    const vc = where(slot, v!.expand(cache.v.shape), cache.v);
    const scale = 1 / Math.sqrt(C / this.c.nHead);
    const visible = validPositions(pos, this.c.blockSize);
    let att = q!.matmul(kc.transpose(-2, -1)).mul(scale);
    att = softmax(where(visible, att, -1e9), -1);
    const y = att.matmul(vc).permute([0, 2, 1, 3]).reshape([b, 1, C]);
    return { y: this.cProj.forward(y), cache: { k: kc, v: vc } };
  }
}

/** bool [1, T]: positions 0..pos are visible. */
function validPositions(pos: Tensor, blockSize: number): Tensor {
  const iota = constant(hostValue('int64', [1, blockSize], [...Array(blockSize).keys()]), pos.graph);
  return iota.le(pos);
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
    return this.drop.forward(this.cProj.forward(gelu(this.cFc.forward(x), 'tanh')), key);
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

  decode(x: Tensor, cache: LayerCache, pos: Tensor, slot: Tensor): { y: Tensor; cache: LayerCache } {
    const a = this.attn.decode(this.ln1.forward(x), cache, pos, slot);
    const h = x.add(a.y);
    return { y: h.add(this.mlp.forward(this.ln2.forward(h))), cache: a.cache };
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

export class GPT extends Module {
  readonly config: GPTConfig;
  readonly transformer: Transformer;

  constructor(config: Partial<GPTConfig>) {
    super();
    this.config = gptConfig(config);
    this.transformer = this.child('transformer', new Transformer(this.config));
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

  /**
   * One decoding step: token [B, 1] at position pos (int64 scalar) with per-layer caches of
   * shape [B, nh, blockSize, hs]; returns logits [B, V] and the updated caches.
   */
  decode(token: Tensor, pos: Tensor, caches: LayerCache[]): { logits: Tensor; caches: LayerCache[] } {
    const iota = constant(hostValue('int64', [this.config.blockSize, 1], [...Array(this.config.blockSize).keys()]), token.graph);
    const slot = iota.eq(pos);
    let x = this.transformer.wte.forward(token).add(this.transformer.wpe.weight.value.take(pos.reshape([1])));
    const out: LayerCache[] = [];
    this.transformer.h.forEach((block, i) => {
      const r = block.decode(x, caches[i]!, pos, slot);
      x = r.y;
      out.push(r.cache);
    });
    const logits = this.head(x);
    return { logits: logits.reshape([logits.shape[0]!, logits.shape[2]!]), caches: out };
  }
}
