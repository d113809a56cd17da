// GPT as Hugging Face's exported decoders look (what transformers.js and Optimum expect):
// input_ids, attention_mask, position_ids [batch, seq] int64 and past_key_values.{i}.key|value
// [batch, heads, past, head_dim] in; logits and present.{i}.key|value [batch, heads, past+seq,
// head_dim] out. Unlike the fixed-size decode cache, the past grows by concatenation and every
// dimension but heads and sizes is dynamic, so one file serves prefill and every decode step.
import { hostValue } from '../ir/value.js';
import { GraphBuilder } from '../runtime/onnx/graph-builder.js';
import type { OnnxGraph } from '../runtime/onnx/model.js';
import type { GPT } from './gpt.js';

/** `weight(name)` returns a parameter's values by its dotted name (as in the checkpoint). */
export function gptHfGraph(model: GPT, weight: (name: string) => Float32Array): OnnxGraph<number | string> {
  const c = model.config;
  const hd = c.nEmbd / c.nHead;
  const g = new GraphBuilder();
  const w = (name: string, shape: number[]) => g.weight(name, hostValue('float32', shape, weight(name)));
  const linear = (x: string, prefix: string, inF: number, outF: number) => {
    const y = g.op('MatMul', [x, w(`${prefix}.weight`, [inF, outF])]);
    return c.bias ? g.op('Add', [y, w(`${prefix}.bias`, [outF])]) : y;
  };
  const norm = (x: string, prefix: string) => {
    const scale = w(`${prefix}.weight`, [c.nEmbd]);
    const bias = c.bias ? w(`${prefix}.bias`, [c.nEmbd]) : g.weight(`${prefix}.zero_bias`, hostValue('float32', [c.nEmbd]));
    return g.op('LayerNormalization', [x, scale, bias], { axis: -1 }, undefined, { epsilon: 1e-5 });
  };

  const { ids, mask, positions, past } = decoderInputs(g, c.nLayer, c.nHead, hd);

  const bias = attentionBias(g, ids, mask); // (batch, 1, seq, total)

  // Token + position embeddings. Positions past the table are clamped (padding rows only).
  const wte = w('transformer.wte.weight', [c.vocabSize, c.nEmbd]);
  const pos = g.op('Clip', [positions, g.scalar(0, 'int64'), g.scalar(c.blockSize - 1, 'int64')]);
  let x = g.op('Add', [g.op('Gather', [wte, ids], { axis: 0 }), g.op('Gather', [w('transformer.wpe.weight', [c.blockSize, c.nEmbd]), pos], { axis: 0 })]); // (B, S, C)

  const toHeads = g.ints([0, 0, c.nHead, hd]);
  const merge = g.ints([0, 0, c.nEmbd]);
  const scale = g.scalar(1 / Math.sqrt(hd));
  for (let i = 0; i < c.nLayer; i++) {
    const p = `transformer.h.${i}`;
    const qkv = linear(norm(x, `${p}.ln_1`), `${p}.attn.c_attn`, c.nEmbd, 3 * c.nEmbd);
    const [q, k, v] = g.multi('Split', [qkv, g.ints([c.nEmbd, c.nEmbd, c.nEmbd])], 3, { axis: -1 }).map((t) => g.op('Transpose', [g.op('Reshape', [t, toHeads])], { perm: [0, 2, 1, 3] })); // (B, nh, S, hs)
    const kAll = g.op('Concat', [past[i]!.k, k!], { axis: 2 }, `present.${i}.key_`); // (B, nh, P+S, hs)
    const vAll = g.op('Concat', [past[i]!.v, v!], { axis: 2 }, `present.${i}.value_`);
    g.output(`present.${i}.key`, kAll, 'float32', ['batch_size', c.nHead, 'total_sequence_length', hd]);
    g.output(`present.${i}.value`, vAll, 'float32', ['batch_size', c.nHead, 'total_sequence_length', hd]);
    const att = g.op('Softmax', [g.op('Add', [g.op('MatMul', [g.op('Mul', [q!, scale]), g.op('Transpose', [kAll], { perm: [0, 1, 3, 2] })]), bias])], { axis: -1 }); // (B, nh, S, P+S)
    const y = g.op('Reshape', [g.op('Transpose', [g.op('MatMul', [att, vAll])], { perm: [0, 2, 1, 3] }), merge]); // (B, S, C)
    x = g.op('Add', [x, linear(y, `${p}.attn.c_proj`, c.nEmbd, c.nEmbd)]);
    const h = g.op('Gelu', [linear(norm(x, `${p}.ln_2`), `${p}.mlp.c_fc`, c.nEmbd, 4 * c.nEmbd)], { approximate: 'tanh' });
    x = g.op('Add', [x, linear(h, `${p}.mlp.c_proj`, 4 * c.nEmbd, c.nEmbd)]);
  }
  const logits = g.op('MatMul', [norm(x, 'transformer.ln_f'), g.op('Transpose', [wte], { perm: [1, 0] })]); // tied head
  g.output('logits', logits, 'float32', ['batch_size', 'sequence_length', c.vocabSize]);
  return g.graph('atscale-gpt2');
}

/**
 * The inputs transformers.js feeds a decoder with a KV cache: input_ids, attention_mask and
 * position_ids (int64, dynamic batch and sequence) and past_key_values.{i}.key|value with a
 * fixed head count and head size (dynamic batch and past length).
 */
export function decoderInputs(g: GraphBuilder, layers: number, kvHeads: number, headDim: number) {
  const ids = g.input('input_ids', 'int64', ['batch_size', 'sequence_length']);
  const mask = g.input('attention_mask', 'int64', ['batch_size', 'total_sequence_length']);
  const positions = g.input('position_ids', 'int64', ['batch_size', 'sequence_length']);
  const past = Array.from({ length: layers }, (_, i) => ({
    k: g.input(`past_key_values.${i}.key`, 'float32', ['batch_size', kvHeads, 'past_sequence_length', headDim]),
    v: g.input(`past_key_values.${i}.value`, 'float32', ['batch_size', kvHeads, 'past_sequence_length', headDim]),
  }));
  return { ids, mask, positions, past };
}

/**
 * Additive attention bias [batch, 1, seq, total] for ids [batch, seq] and attention_mask
 * [batch, total]: query i (absolute position total - seq + i) sees key j when j <= that
 * position and attention_mask[b, j] is 1 (padding is masked).
 */
export function attentionBias(g: GraphBuilder, ids: string, mask: string): string {
  const seq = g.dim(ids, 1);
  const total = g.dim(mask, 1);
  const zero = g.ints([0]);
  const one = g.ints([1]);
  const keyPos = g.op('Range', [g.op('Squeeze', [zero]), g.op('Squeeze', [total]), g.op('Squeeze', [one])]); // (total)
  const offset = g.op('Sub', [total, seq]);
  const queryPos = g.op('Unsqueeze', [g.op('Add', [g.op('Range', [g.op('Squeeze', [zero]), g.op('Squeeze', [seq]), g.op('Squeeze', [one])]), offset]), one]); // (seq, 1)
  const causal = g.op('LessOrEqual', [keyPos, queryPos]); // (seq, total)
  const padOk = g.op('Unsqueeze', [g.op('Equal', [mask, g.scalar(1, 'int64')]), g.ints([1, 2])]); // (batch, 1, 1, total)
  return g.op('Where', [g.op('And', [causal, padOk]), g.scalar(0), g.scalar(-1e9)]);
}
