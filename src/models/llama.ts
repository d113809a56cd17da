// Llama: the decoder shared by Llama 2/3, SmolLM, Qwen2 and Mistral: RMSNorm before each
// sub-layer, rotary position embeddings, grouped-query attention, a SwiGLU MLP, and a tied or
// untied LM head. Parameter names and layouts are Hugging Face's (model.layers.N.self_attn.
// q_proj.weight stored [out, in]), so a HF checkpoint loads and saves without renaming.
import type { Tensor } from '../tensor/tensor.js';
import { causalBias, concat, crossEntropy, softmax, split } from '../tensor/functional.js';
import { constant } from '../tensor/tensor.js';
import { hostValue } from '../ir/value.js';
import { Module } from '../nn/module.js';
import { Embedding, Linear, RMSNorm } from '../nn/layers.js';
import { ColumnParallelLinear, RowParallelLinear, VocabParallelEmbedding, enterParallel, paddedVocab, shardSize, vocabLogits, vocabParallelCrossEntropy, type TensorParallelism } from '../nn/tensor-parallel.js';
import { type LlamaConfig, llamaConfig, llamaFlopsPerToken, llamaParamCount, ropeInverseFrequencies } from './llama-config.js';
import type { DecodeResult, LanguageModel, LayerCache, ModelDims, ModelUnits, TpSplit } from './model.js';
import { cachedAttention, chunkPositions, writeCache, type BlockDecode } from './kv-cache.js';

/** cos and sin tables [blockSize, headDim] (each frequency twice: HF's half-split rotation). */
function ropeTables(c: LlamaConfig): { cos: Float32Array; sin: Float32Array } {
  const inv = ropeInverseFrequencies(c.headDim, c.ropeTheta, c.ropeScaling);
  const half = c.headDim / 2;
  const cos = new Float32Array(c.blockSize * c.headDim);
  const sin = new Float32Array(c.blockSize * c.headDim);
  for (let p = 0; p < c.blockSize; p++) {
    for (let i = 0; i < c.headDim; i++) {
      const angle = p * inv[i % half]!;
      cos[p * c.headDim + i] = Math.cos(angle);
      sin[p * c.headDim + i] = Math.sin(angle);
    }
  }
  return { cos, sin };
}

/** The rotary tables of the graph being traced. */
type Rope = (graph: Tensor['graph']) => { cos: Tensor; sin: Tensor };

/** x [B, h, T, hd] rotated by angles whose cos/sin are [.., T, hd]: x cos + rotate_half(x) sin. */
function applyRope(x: Tensor, cos: Tensor, sin: Tensor): Tensor {
  const [x1, x2] = split(x, 2, -1); // (B, h, T, hd/2) each
  return x.mul(cos).add(concat([x2!.neg(), x1!], -1).mul(sin));
}

/** A [out, in] linear layer: plain, or (under tensor parallelism) column- or row-parallel. */
function linear(tp: TensorParallelism | undefined, split: 'column' | 'row', inF: number, outF: number, opts: { bias: boolean; std?: number }): Linear {
  const o = { ...opts, outIn: true };
  if (!tp) return new Linear(inF, outF, o);
  return split === 'column' ? new ColumnParallelLinear(inF, outF, tp, o) : new RowParallelLinear(inF, outF, tp, o);
}

/** Column-parallel projections share one entering collective; plain ones just run. */
const project = (l: Linear, x: Tensor) => (l instanceof ColumnParallelLinear ? l.forwardEntered(x) : l.forward(x));

export class LlamaAttention extends Module {
  readonly qProj: Linear;
  readonly kProj: Linear;
  readonly vProj: Linear;
  readonly oProj: Linear;
  /** Query and key/value heads on this rank (all of them without tensor parallelism). */
  readonly nHead: number;
  readonly nKvHead: number;

  constructor(readonly c: LlamaConfig, readonly tp?: TensorParallelism) {
    super();
    // Whole kv heads per rank: rank r's query heads read exactly its kv heads.
    this.nKvHead = tp ? shardSize(c.nKvHead, tp, `key/value heads (num_key_value_heads; every rank needs whole kv heads)`) : c.nKvHead;
    this.nHead = tp ? shardSize(c.nHead, tp, 'attention heads') : c.nHead;
    const q = c.nHead * c.headDim;
    const kv = c.nKvHead * c.headDim;
    this.qProj = this.child('q_proj', linear(tp, 'column', c.nEmbd, q, { bias: c.qkvBias }));
    this.kProj = this.child('k_proj', linear(tp, 'column', c.nEmbd, kv, { bias: c.qkvBias }));
    this.vProj = this.child('v_proj', linear(tp, 'column', c.nEmbd, kv, { bias: c.qkvBias }));
    this.oProj = this.child('o_proj', linear(tp, 'row', q, c.nEmbd, { bias: c.oBias, std: 0.02 / Math.sqrt(2 * c.nLayer) }));
  }

  private heads(x: Tensor, n: number): Tensor {
    const [b, t] = x.shape as [number, number, number];
    return x.reshape([b, t, n, this.c.headDim]).permute([0, 2, 1, 3]); // (B, n, T, hd)
  }

  /** q, k, v for x [B, T, C] with rotary angles applied; k and v keep only the kv heads. */
  private qkv(x: Tensor, cos: Tensor, sin: Tensor): [Tensor, Tensor, Tensor] {
    const e = this.tp ? enterParallel(x, this.tp) : x;
    const q = applyRope(this.heads(project(this.qProj, e), this.nHead), cos, sin); // (B, nh, T, hd)
    const k = applyRope(this.heads(project(this.kProj, e), this.nKvHead), cos, sin); // (B, nkv, T, hd)
    return [q, k, this.heads(project(this.vProj, e), this.nKvHead)];
  }

  /** [B, nkv, T, hd] -> [B, nh, T, hd]: query head h reads kv head floor(h / (nh / nkv)). */
  private repeatKv(x: Tensor): Tensor {
    const rep = this.nHead / this.nKvHead;
    if (rep === 1) return x;
    const [b, n, t, d] = x.shape as [number, number, number, number];
    return x.reshape([b, n, 1, t, d]).expand([b, n, rep, t, d]).reshape([b, n * rep, t, d]);
  }

  /** softmax(q k^T / sqrt(hd) + bias) v, heads merged back: [B, S, nh hd] -> o_proj. */
  private attend(q: Tensor, k: Tensor, v: Tensor, mask: (att: Tensor) => Tensor): Tensor {
    const [b, , s, d] = q.shape as [number, number, number, number];
    const att = softmax(mask(q.mul(1 / Math.sqrt(d)).matmul(this.repeatKv(k).transpose(-2, -1))), -1); // (B, nh, S, Tk)
    const y = att.matmul(this.repeatKv(v)).permute([0, 2, 1, 3]).reshape([b, s, this.nHead * d]);
    return this.oProj.forward(y);
  }

  forward(x: Tensor, cos: Tensor, sin: Tensor): Tensor {
    const [q, k, v] = this.qkv(x, cos, sin);
    // With sequence parallelism x holds part of the sequence; q holds all of it.
    const t = q.shape[2]!;
    return this.attend(q, k, v, (att) => att.add(causalBias(t, t, x.graph)));
  }

  /** New tokens x [B, S, C] at positions pos [B, S] against caches [B, nkv, blockSize, hd]. */
  decode(x: Tensor, cache: LayerCache, pos: Tensor, cos: Tensor, sin: Tensor): BlockDecode {
    const [b, s] = pos.shape as [number, number];
    const [q, k, v] = this.qkv(x, cos, sin);
    const y = cachedAttention(q, cache, { k, v }, pos, (kv) => this.repeatKv(kv)).permute([0, 2, 1, 3]).reshape([b, s, this.c.nHead * q.shape[3]!]);
    return { y: this.oProj.forward(y), cache: { k: writeCache(cache.k, k, pos), v: writeCache(cache.v, v, pos) }, fresh: { k, v } };
  }
}

export class LlamaMLP extends Module {
  readonly gateProj: Linear;
  readonly upProj: Linear;
  readonly downProj: Linear;

  constructor(c: LlamaConfig, readonly tp?: TensorParallelism) {
    super();
    this.gateProj = this.child('gate_proj', linear(tp, 'column', c.nEmbd, c.intermediateSize, { bias: c.mlpBias }));
    this.upProj = this.child('up_proj', linear(tp, 'column', c.nEmbd, c.intermediateSize, { bias: c.mlpBias }));
    this.downProj = this.child('down_proj', linear(tp, 'row', c.intermediateSize, c.nEmbd, { bias: c.mlpBias, std: 0.02 / Math.sqrt(2 * c.nLayer) }));
  }

  /** SwiGLU (Shazeer 2020): down(silu(gate x) * up x). */
  forward(x: Tensor): Tensor {
    const e = this.tp ? enterParallel(x, this.tp) : x;
    const g = project(this.gateProj, e); // (B, T, I)
    return this.downProj.forward(g.mul(g.sigmoid()).mul(project(this.upProj, e)));
  }
}

export class LlamaBlock extends Module {
  readonly inputLayernorm: RMSNorm;
  readonly selfAttn: LlamaAttention;
  readonly postAttentionLayernorm: RMSNorm;
  readonly mlp: LlamaMLP;

  constructor(c: LlamaConfig, private readonly rope: Rope, tp?: TensorParallelism) {
    super();
    this.selfAttn = this.child('self_attn', new LlamaAttention(c, tp));
    this.mlp = this.child('mlp', new LlamaMLP(c, tp));
    this.inputLayernorm = this.child('input_layernorm', new RMSNorm(c.nEmbd, c.rmsNormEps));
    this.postAttentionLayernorm = this.child('post_attention_layernorm', new RMSNorm(c.nEmbd, c.rmsNormEps));
  }

  forward(x: Tensor): Tensor {
    // Attention sees the whole sequence (gathered under sequence parallelism).
    const t = x.shape[1]! * (this.selfAttn.tp?.sequence ? this.selfAttn.tp.axis.size : 1);
    const { cos, sin } = this.rope(x.graph);
    const at = (table: Tensor) => table.slice([0, t]).reshape([1, 1, t, table.shape[1]!]); // (1, 1, T, hd)
    const h = x.add(this.selfAttn.forward(this.inputLayernorm.forward(x), at(cos), at(sin)));
    return h.add(this.mlp.forward(this.postAttentionLayernorm.forward(h)));
  }

  decode(x: Tensor, cache: LayerCache, pos: Tensor): BlockDecode {
    const [b, s] = pos.shape as [number, number];
    const { cos, sin } = this.rope(x.graph);
    const at = (table: Tensor) => table.take(pos).reshape([b, 1, s, table.shape[1]!]); // (B, 1, S, hd)
    const a = this.selfAttn.decode(this.inputLayernorm.forward(x), cache, pos, at(cos), at(sin));
    const h = x.add(a.y);
    return { y: h.add(this.mlp.forward(this.postAttentionLayernorm.forward(h))), cache: a.cache, fresh: a.fresh };
  }
}

class LayerList extends Module {
  readonly layers: LlamaBlock[];
  constructor(c: LlamaConfig, rope: Rope, tp?: TensorParallelism) {
    super();
    this.layers = Array.from({ length: c.nLayer }, (_, i) => this.child(String(i), new LlamaBlock(c, rope, tp)));
  }
}

class LlamaModel extends Module {
  readonly embedTokens: Embedding;
  readonly layers: LlamaBlock[];
  readonly norm: RMSNorm;

  constructor(c: LlamaConfig, rope: Rope, tp?: TensorParallelism) {
    super();
    this.embedTokens = this.child('embed_tokens', tp ? new VocabParallelEmbedding(c.vocabSize, c.nEmbd, tp) : new Embedding(c.vocabSize, c.nEmbd));
    this.layers = this.child('layers', new LayerList(c, rope, tp)).layers;
    this.norm = this.child('norm', new RMSNorm(c.nEmbd, c.rmsNormEps));
  }
}

export class Llama extends Module implements LanguageModel {
  readonly config: LlamaConfig;
  readonly dims: ModelDims;
  readonly model: LlamaModel;
  readonly lmHead: Linear | undefined;
  /** Built on first use: a model is also built just to check a checkpoint's shapes. */
  private tables: { cos: Float32Array; sin: Float32Array } | undefined;
  /** Rope constants per graph being traced (ZeRO-3 traces each block into its own graph). */
  private readonly ropeByGraph = new WeakMap<object, { cos: Tensor; sin: Tensor }>();

  /**
   * `tp`: build this tensor-parallel rank's shard (query and kv heads, MLP features and
   * vocabulary rows of its range; parameter names as in the full model, shapes local).
   */
  constructor(config: Partial<LlamaConfig>, readonly tp?: TensorParallelism) {
    super();
    this.config = llamaConfig(config);
    const c = this.config;
    this.dims = { nLayer: c.nLayer, nEmbd: c.nEmbd, nHead: c.nHead, nKvHead: c.nKvHead, headDim: c.headDim, blockSize: c.blockSize, vocabSize: c.vocabSize, dropout: 0 };
    if (tp) shardSize(c.intermediateSize, tp, 'MLP features (intermediate_size)');
    this.model = this.child('model', new LlamaModel(c, (g) => this.rope(g), tp));
    // An untied head is split by vocabulary rows like the embedding (padded the same way).
    const headRows = tp ? paddedVocab(c.vocabSize, tp.axis.size) / tp.axis.size : c.vocabSize;
    this.lmHead = c.tieWordEmbeddings ? undefined : this.child('lm_head', new Linear(c.nEmbd, headRows, { bias: false, outIn: true }));
  }

  tensorParallelShard(tp: TensorParallelism): Llama {
    return new Llama(this.config, tp);
  }

  get family(): string {
    return this.config.modelType;
  }

  get blocks(): readonly LlamaBlock[] {
    return this.model.layers;
  }

  /** The cos/sin tables [blockSize, hd] as constants of graph g, made once per graph. */
  private rope(g: Tensor['graph']): { cos: Tensor; sin: Tensor } {
    let r = this.ropeByGraph.get(g);
    if (!r) {
      this.tables ??= ropeTables(this.config);
      const shape = [this.config.blockSize, this.config.headDim];
      r = { cos: constant(hostValue('float32', shape, this.tables.cos), g), sin: constant(hostValue('float32', shape, this.tables.sin), g) };
      this.ropeByGraph.set(g, r);
    }
    return r;
  }

  architecture(): Record<string, unknown> {
    return { family: this.config.modelType, ...this.config };
  }

  units(): ModelUnits {
    const blocks = this.model.layers.map((_, i) => `model.layers.${i}`);
    return { embed: ['model.embed_tokens'], blocks, head: this.lmHead ? ['model.norm', 'lm_head'] : ['model.embed_tokens', 'model.norm'] };
  }

  tensorParallelSplit(name: string): TpSplit {
    // Weights are [out, in]: column-parallel splits axis 0 (whole heads for q/k/v), row-parallel axis 1.
    if (name === 'model.embed_tokens.weight' || name === 'lm_head.weight') return { kind: 'vocab', axis: 0 };
    if (/\.(self_attn\.[qkv]_proj|mlp\.(gate|up)_proj)\.(weight|bias)$/.test(name)) return { kind: 'column', axis: 0 };
    if (/\.(self_attn\.o_proj|mlp\.down_proj)\.weight$/.test(name)) return { kind: 'row', axis: 1 };
    return { kind: 'replicated' };
  }

  paramCount(): number {
    return llamaParamCount(this.config);
  }

  flopsPerToken(seq?: number): number {
    return llamaFlopsPerToken(this.config, seq);
  }

  /** Token embeddings for idx [B, T] (positions enter through the rotary angles, not here). */
  embed(idx: Tensor): Tensor {
    const t = idx.shape[1]!;
    if (t > this.config.blockSize) throw new RangeError(`sequence length ${t} exceeds block_size ${this.config.blockSize}`);
    return this.model.embedTokens.forward(idx); // (B, T, C)
  }

  /** Final RMSNorm and the LM head (the embedding matrix when tied); under tensor
   * parallelism the logits of this rank's vocabulary range. */
  head(x: Tensor): Tensor {
    const h = this.model.norm.forward(x);
    if (this.tp) {
      const rows = paddedVocab(this.config.vocabSize, this.tp.axis.size) / this.tp.axis.size;
      const w = this.lmHead ? this.lmHead.weight.value : this.model.embedTokens.weight.value;
      return vocabLogits(enterParallel(h, this.tp), w, this.tp.axis.rank * rows, this.config.vocabSize);
    }
    return this.lmHead ? this.lmHead.forward(h) : h.matmul(this.model.embedTokens.weight.value.transpose(0, 1)); // (B, T, V)
  }

  /** Mean cross-entropy of the head's logits; vocabulary-parallel under tensor parallelism. */
  headLoss(x: Tensor, targets: Tensor): Tensor {
    const logits = this.head(x);
    if (!this.tp) return crossEntropy(logits, targets, -1);
    return vocabParallelCrossEntropy(logits, targets, this.tp.axis.rank * logits.shape[logits.rank - 1]!, this.tp.axis);
  }

  forward(idx: Tensor): Tensor {
    let x = this.embed(idx);
    for (const block of this.model.layers) x = block.forward(x);
    return this.head(x);
  }

  loss(idx: Tensor, targets: Tensor): Tensor {
    let x = this.embed(idx);
    for (const block of this.model.layers) x = block.forward(x);
    return this.headLoss(x, targets);
  }

  decode(tokens: Tensor, start: Tensor, caches: readonly LayerCache[]): DecodeResult {
    const pos = chunkPositions(start, tokens.shape[1]!); // (B, S)
    let x = this.model.embedTokens.forward(tokens); // (B, S, C)
    const out: LayerCache[] = [];
    const fresh: LayerCache[] = [];
    this.model.layers.forEach((block, i) => {
      const r = block.decode(x, caches[i]!, pos);
      x = r.y;
      out.push(r.cache);
      fresh.push(r.fresh);
    });
    return { logits: this.head(x), caches: out, fresh };
  }
}
