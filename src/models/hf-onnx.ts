// The Hugging Face-style KV-cache decoder graph of any model family atscale has (see
// gpt-hf-onnx.ts for the contract). Only models/ branches on the family.
import type { OnnxGraph } from '../runtime/onnx/model.js';
import type { LanguageModel } from './model.js';
import { GPT } from './gpt.js';
import { gptHfGraph } from './gpt-hf-onnx.js';
import { Llama } from './llama.js';
import { llamaHfGraph } from './llama-hf-onnx.js';
import { hfConfigFromArchitecture } from './hf/hf-config.js';

export function hfDecoderGraph(model: LanguageModel, weight: (name: string) => Float32Array): OnnxGraph<number | string> {
  if (model instanceof GPT) return gptHfGraph(model, weight);
  if (model instanceof Llama) return llamaHfGraph(model, weight);
  throw new Error(`export --format hf: no Hugging Face graph for model family '${model.family}' yet`);
}

/** config.json fields for the family (model_type and the sizes transformers.js reads). */
export function hfConfig(model: LanguageModel): Record<string, unknown> {
  const d = model.dims;
  if (model instanceof GPT) {
    return { model_type: 'gpt2', architectures: ['GPT2LMHeadModel'], vocab_size: d.vocabSize, n_positions: d.blockSize, n_ctx: d.blockSize, n_embd: d.nEmbd, n_layer: d.nLayer, n_head: d.nHead, layer_norm_epsilon: 1e-5, activation_function: 'gelu_new', tie_word_embeddings: true, use_cache: true };
  }
  // The same config.json `atscale save` writes; max_position_embeddings is the graph's rope
  // table length (positions past it are clamped), and the cache is used.
  if (model instanceof Llama) return { ...hfConfigFromArchitecture(model.architecture(), {}), max_position_embeddings: d.blockSize, use_cache: true };
  throw new Error(`export --format hf: no config.json mapping for model family '${model.family}' yet`);
}
