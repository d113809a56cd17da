// Published model sizes, so that `atscale plan --model llama3-70b` needs no numbers typed in.
// Shapes are the ones in each model's paper or released config.json; the published parameter
// count each one must reproduce (within 1%) sits next to it and is checked by a test.
import type { ModelSpec } from './specs.js';

function gpt(name: string, layers: number, hidden: number, heads: number, seqLen: number, vocab: number, globalBatch: number): ModelSpec {
  return { name, layers, hidden, heads, seqLen, vocab, ffn: 4 * hidden, globalBatch };
}

interface LlamaShape {
  layers: number; hidden: number; heads: number; kvHeads: number; ffn: number; vocab: number; seqLen: number; tied: boolean; qkvBias?: boolean; globalBatch: number;
}

/** Llama-family decoders (Llama, SmolLM, Qwen2, Mistral): RMSNorm, RoPE, SwiGLU, GQA. */
function llama(name: string, s: LlamaShape): ModelSpec {
  return {
    name, layers: s.layers, hidden: s.hidden, heads: s.heads, kvHeads: s.kvHeads, ffn: s.ffn, vocab: s.vocab, seqLen: s.seqLen, globalBatch: s.globalBatch,
    gatedMlp: true, tiedEmbeddings: s.tied, bias: s.qkvBias ? 'qkv' : 'none', norm: 'rmsnorm', positions: 'rope',
  };
}

export const MODEL_PRESETS: Record<string, ModelSpec> = {
  // GPT-2 (Radford et al. 2019): 124M, 355M, 774M, 1.5B.
  'gpt2-small': gpt('gpt2-small', 12, 768, 12, 1024, 50257, 512),
  'gpt2-medium': gpt('gpt2-medium', 24, 1024, 16, 1024, 50257, 512),
  'gpt2-large': gpt('gpt2-large', 36, 1280, 20, 1024, 50257, 512),
  'gpt2-xl': gpt('gpt2-xl', 48, 1600, 25, 1024, 50257, 512),
  // Turing-NLG (Microsoft, 2020): 78 layers, hidden 4256, 28 heads, GPT-2 vocabulary.
  'turing-nlg-17b': gpt('turing-nlg-17b', 78, 4256, 28, 1024, 50257, 512),
  // GPT-3 (Brown et al. 2020): batch 3.2M tokens = 1536 sequences of 2048.
  'gpt3-175b': gpt('gpt3-175b', 96, 12288, 96, 2048, 50257, 1536),
  // Megatron-Turing NLG (Smith et al. 2022): final batch 1920 sequences.
  'mt-nlg-530b': gpt('mt-nlg-530b', 105, 20480, 128, 2048, 50257, 1920),
  // Narayanan et al. 2021, Table 1, last row.
  'megatron-1t': gpt('megatron-1t', 128, 25600, 160, 2048, 51200, 3072),
  // Llama 3.2 1B / 3B (tied heads), Llama 3 8B / 70B and Llama 3.1 405B (Dubey et al. 2024,
  // Table 3; config.json of the released checkpoints). Batch: Llama 3's 16M tokens of 8192.
  'llama3.2-1b': llama('llama3.2-1b', { layers: 16, hidden: 2048, heads: 32, kvHeads: 8, ffn: 8192, vocab: 128256, seqLen: 8192, tied: true, globalBatch: 512 }),
  'llama3.2-3b': llama('llama3.2-3b', { layers: 28, hidden: 3072, heads: 24, kvHeads: 8, ffn: 8192, vocab: 128256, seqLen: 8192, tied: true, globalBatch: 512 }),
  'llama3-8b': llama('llama3-8b', { layers: 32, hidden: 4096, heads: 32, kvHeads: 8, ffn: 14336, vocab: 128256, seqLen: 8192, tied: false, globalBatch: 512 }),
  'llama3-70b': llama('llama3-70b', { layers: 80, hidden: 8192, heads: 64, kvHeads: 8, ffn: 28672, vocab: 128256, seqLen: 8192, tied: false, globalBatch: 2048 }),
  'llama3-405b': llama('llama3-405b', { layers: 126, hidden: 16384, heads: 128, kvHeads: 8, ffn: 53248, vocab: 128256, seqLen: 8192, tied: false, globalBatch: 2048 }),
  // SmolLM2 (Hugging Face, 2024) 135M and 360M, tied, 2048 context.
  'smollm2-135m': llama('smollm2-135m', { layers: 30, hidden: 576, heads: 9, kvHeads: 3, ffn: 1536, vocab: 49152, seqLen: 2048, tied: true, globalBatch: 512 }),
  'smollm2-360m': llama('smollm2-360m', { layers: 32, hidden: 960, heads: 15, kvHeads: 5, ffn: 2560, vocab: 49152, seqLen: 2048, tied: true, globalBatch: 512 }),
  // Qwen2.5 0.5B (tied) and 7B (untied): biases on q, k and v only.
  'qwen2.5-0.5b': llama('qwen2.5-0.5b', { layers: 24, hidden: 896, heads: 14, kvHeads: 2, ffn: 4864, vocab: 151936, seqLen: 32768, tied: true, qkvBias: true, globalBatch: 512 }),
  'qwen2.5-7b': llama('qwen2.5-7b', { layers: 28, hidden: 3584, heads: 28, kvHeads: 4, ffn: 18944, vocab: 152064, seqLen: 32768, tied: false, qkvBias: true, globalBatch: 512 }),
  // Mixtral 8x7B (Jiang et al. 2024): 8 experts, top-2, 46.7B parameters, 12.9B active.
  'mixtral-8x7b': { ...llama('mixtral-8x7b', { layers: 32, hidden: 4096, heads: 32, kvHeads: 8, ffn: 14336, vocab: 32000, seqLen: 4096, tied: false, globalBatch: 1024 }), moe: { experts: 8, topK: 2, capacityFactor: 1 } },
  // nanoGPT's CPU shakespeare config and its default shakespeare_char config.
  'cpu-small': gpt('cpu-small', 4, 128, 4, 64, 65, 12),
  'shakespeare-char': gpt('shakespeare-char', 6, 384, 6, 256, 65, 64),
};

/** The parameter counts published for the presets (model cards, papers), for the 1% check. */
export const PUBLISHED_PARAMS: Record<string, number> = {
  'gpt2-small': 124_439_808, // HF gpt2: 124,439,808
  'gpt2-medium': 354_823_168,
  'gpt2-large': 774_030_080,
  'gpt2-xl': 1_557_611_200,
  'llama3.2-1b': 1_235_814_400, // HF model card: 1.24B
  'llama3.2-3b': 3_212_749_824, // 3.21B
  'llama3-8b': 8_030_261_248, // 8.03B
  'llama3-70b': 70_553_706_496, // 70.6B
  'llama3-405b': 405_853_388_800, // 405B
  'smollm2-135m': 134_515_008,
  'smollm2-360m': 361_821_120,
  'qwen2.5-0.5b': 494_032_768, // 0.49B
  'qwen2.5-7b': 7_615_616_512, // 7.61B
  'mixtral-8x7b': 46_702_792_704, // 46.7B
};
