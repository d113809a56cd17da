// The Llama family (Llama 2/3, SmolLM, Qwen2, Mistral) as Hugging Face's exported decoders look
// (the contract is in gpt-hf-onnx.ts). Differences from GPT: positions enter as rotary angles
// looked up from position_ids (tables baked in, Llama 3 rescaling included), the caches hold
// only the num_key_value_heads kv heads (grouped-query attention repeats them inside the
// graph), RMSNorm, a SwiGLU MLP, and an untied head unless tie_word_embeddings.
import { hostValue } from '../ir/value.js';
import { GraphBuilder } from '../runtime/onnx/graph-builder.js';
import type { OnnxGraph } from '../runtime/onnx/model.js';
import { attentionBias, decoderInputs } from './gpt-hf-onnx.js';
import type { Llama } from './llama.js';
import { ropeInverseFrequencies } from './llama-config.js';

/** `weight(name)` returns a parameter's values by its dotted name (as in the checkpoint). */
export function llamaHfGraph(model: Llama, weight: (name: string) => Float32Array): OnnxGraph<number | string> {
  const c = model.config;
  const hd = c.headDim;
  const g = new GraphBuilder();
  const vec = (name: string, n: number) => g.weight(name, hostValue('float32', [n], weight(name)));
  /** HF stores Linear weights [out, in]; the graph keeps them [in, out] so MatMul needs no Transpose. */
  const linear = (x: string, prefix: string, inF: number, outF: number, bias: boolean) => {
    const w = weight(`${prefix}.weight`);
    const t = new Float32Array(inF * outF);
    for (let o = 0; o < outF; o++) for (let i = 0; i < inF; i++) t[i * outF + o] = w[o * inF + i]!;
    const y = g.op('MatMul', [x, g.weight(`${prefix}.weight`, hostValue('float32', [inF, outF], t))]);
    return bias ? g.op('Add', [y, vec(`${prefix}.bias`, outF)]) : y;
  };
  // x / sqrt(mean(x^2) + eps) * w, in the order atscale's RMSNorm computes it.
  const eps = g.scalar(c.rmsNormEps);
  const lastAxis = g.ints([-1]);
  const norm = (x: string, name: string) => {
    const ms = g.op('ReduceMean', [g.op('Mul', [x, x]), lastAxis], { keepdims: 1 });
    return g.op('Mul', [g.op('Mul', [x, g.op('Reciprocal', [g.op('Sqrt', [g.op('Add', [ms, eps])])])]), vec(`${name}.weight`, c.nEmbd)]);
  };

  const { ids, mask, positions, past } = decoderInputs(g, c.nLayer, c.nKvHead, hd);
  const bias = attentionBias(g, ids, mask); // (batch, 1, seq, total)

  // Rotary tables [blockSize, hd] (each frequency twice: HF's half-split rotation), looked up
  // by position (clamped: positions past the table belong to padding rows only).
  const inv = ropeInverseFrequencies(hd, c.ropeTheta, c.ropeScaling);
  const cosT = new Float32Array(c.blockSize * hd);
  const sinT = new Float32Array(c.blockSize * hd);
  for (let p = 0; p < c.blockSize; p++) {
    for (let i = 0; i < hd; i++) {
      cosT[p * hd + i] = Math.cos(p * inv[i % (hd / 2)]!);
      sinT[p * hd + i] = Math.sin(p * inv[i % (hd / 2)]!);
    }
  }
  const pos = g.op('Clip', [positions, g.scalar(0, 'int64'), g.scalar(c.blockSize - 1, 'int64')]);
  const one = g.ints([1]);
  const cos = g.op('Unsqueeze', [g.op('Gather', [g.weight('rope.cos', hostValue('float32', [c.blockSize, hd], cosT)), pos], { axis: 0 }), one]); // (B, 1, S, hd)
  const sin = g.op('Unsqueeze', [g.op('Gather', [g.weight('rope.sin', hostValue('float32', [c.blockSize, hd], sinT)), pos], { axis: 0 }), one]);
  const halves = g.ints([hd / 2, hd / 2]);
  const rope = (x: string) => {
    const [x1, x2] = g.multi('Split', [x, halves], 2, { axis: -1 });
    return g.op('Add', [g.op('Mul', [x, cos]), g.op('Mul', [g.op('Concat', [g.op('Neg', [x2!]), x1!], { axis: -1 }), sin])]);
  };

  const heads = (x: string, n: number) => g.op('Transpose', [g.op('Reshape', [x, g.ints([0, 0, n, hd])])], { perm: [0, 2, 1, 3] }); // (B, n, S, hd)
  const rep = c.nHead / c.nKvHead;
  const two = g.ints([2]);
  /** [B, nkv, L, hd] -> [B, nh, L, hd]: query head h reads kv head floor(h / rep). */
  const repeatKv = (x: string) => {
    if (rep === 1) return x;
    const shape = g.op('Concat', [g.dim(x, 0), g.ints([c.nKvHead, rep]), g.op('Shape', [x], { start: 2 })], { axis: 0 });
    return g.op('Reshape', [g.op('Expand', [g.op('Unsqueeze', [x, two]), shape]), g.ints([0, c.nHead, -1, hd])]);
  };
  const merge = g.ints([0, 0, c.nHead * hd]);
  const scale = g.scalar(1 / Math.sqrt(hd));
  let x = g.op('Gather', [g.weight('model.embed_tokens.weight', hostValue('float32', [c.vocabSize, c.nEmbd], weight('model.embed_tokens.weight'))), ids], { axis: 0 }); // (B, S, C)
  for (let i = 0; i < c.nLayer; i++) {
    const p = `model.layers.${i}`;
    const h = norm(x, `${p}.input_layernorm`);
    const q = rope(heads(linear(h, `${p}.self_attn.q_proj`, c.nEmbd, c.nHead * hd, c.qkvBias), c.nHead));
    const k = rope(heads(linear(h, `${p}.self_attn.k_proj`, c.nEmbd, c.nKvHead * hd, c.qkvBias), c.nKvHead));
    const v = heads(linear(h, `${p}.self_attn.v_proj`, c.nEmbd, c.nKvHead * hd, c.qkvBias), c.nKvHead);
    const kAll = g.op('Concat', [past[i]!.k, k], { axis: 2 }, `present.${i}.key_`); // (B, nkv, P+S, hd)
    const vAll = g.op('Concat', [past[i]!.v, v], { axis: 2 }, `present.${i}.value_`);
    g.output(`present.${i}.key`, kAll, 'float32', ['batch_size', c.nKvHead, 'total_sequence_length', hd]);
    g.output(`present.${i}.value`, vAll, 'float32', ['batch_size', c.nKvHead, 'total_sequence_length', hd]);
    const att = g.op('Softmax', [g.op('Add', [g.op('MatMul', [g.op('Mul', [q, scale]), g.op('Transpose', [repeatKv(kAll)], { perm: [0, 1, 3, 2] })]), bias])], { axis: -1 }); // (B, nh, S, P+S)
    const y = g.op('Reshape', [g.op('Transpose', [g.op('MatMul', [att, repeatKv(vAll)])], { perm: [0, 2, 1, 3] }), merge]); // (B, S, nh hd)
    x = g.op('Add', [x, linear(y, `${p}.self_attn.o_proj`, c.nHead * hd, c.nEmbd, c.oBias)]);
    const m = norm(x, `${p}.post_attention_layernorm`);
    const gate = linear(m, `${p}.mlp.gate_proj`, c.nEmbd, c.intermediateSize, c.mlpBias);
    const up = linear(m, `${p}.mlp.up_proj`, c.nEmbd, c.intermediateSize, c.mlpBias);
    x = g.op('Add', [x, linear(g.op('Mul', [g.op('Mul', [gate, g.op('Sigmoid', [gate])]), up]), `${p}.mlp.down_proj`, c.intermediateSize, c.nEmbd, c.mlpBias)]);
  }
  const hN = norm(x, 'model.norm');
  const logits = c.tieWordEmbeddings
    ? g.op('MatMul', [hN, g.op('Transpose', ['model.embed_tokens.weight'], { perm: [1, 0] })])
    : linear(hN, 'lm_head', c.nEmbd, c.vocabSize, false);
  g.output('logits', logits, 'float32', ['batch_size', 'sequence_length', c.vocabSize]);
  return g.graph(`atscale-${c.modelType}`);
}

