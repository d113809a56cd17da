// Presets: nanoGPT's shakespeare_char training configurations (model and optimisation), and the
// architectures of published models (GPT-2, Llama 3, SmolLM2, Qwen2.5) at their released sizes.
import type { GPTConfig } from './config.js';
import type { Architecture } from './registry.js';

export interface TrainHyper {
  batchSize: number;
  gradAccum: number;
  maxIters: number;
  lr: number;
  minLr: number;
  warmupIters: number;
  decayIters: number;
  beta1: number;
  beta2: number;
  weightDecay: number;
  gradClip: number;
  evalInterval: number;
  evalIters: number;
  logInterval: number;
}

export interface Preset {
  model: Partial<GPTConfig>;
  train: TrainHyper;
}

export const PRESETS: Record<string, Preset> = {
  // nanoGPT README's CPU run: 4 layers, 4 heads, 128 wide, context 64, batch 12, 2000 iters, no dropout.
  'cpu-small': {
    model: { nLayer: 4, nHead: 4, nEmbd: 128, blockSize: 64, dropout: 0, bias: false },
    train: { batchSize: 12, gradAccum: 1, maxIters: 2000, lr: 1e-3, minLr: 1e-4, warmupIters: 100, decayIters: 2000, beta1: 0.9, beta2: 0.99, weightDecay: 0.1, gradClip: 1, evalInterval: 250, evalIters: 20, logInterval: 10 },
  },
  // config/train_shakespeare_char.py: 6 layers, 6 heads, 384 wide, context 256, batch 64, dropout 0.2.
  'shakespeare-char': {
    model: { nLayer: 6, nHead: 6, nEmbd: 384, blockSize: 256, dropout: 0.2, bias: false },
    train: { batchSize: 64, gradAccum: 1, maxIters: 5000, lr: 1e-3, minLr: 1e-4, warmupIters: 100, decayIters: 5000, beta1: 0.9, beta2: 0.99, weightDecay: 0.1, gradClip: 1, evalInterval: 250, evalIters: 200, logInterval: 10 },
  },
};

export function preset(name: string): Preset {
  const p = PRESETS[name];
  if (!p) throw new Error(`unknown preset '${name}'; presets are ${Object.keys(PRESETS).join(', ')}`);
  return p;
}

/** A published model's architecture, with the parameter count its authors state. */
export interface ModelPreset {
  architecture: Architecture;
  /** Parameters as published (model card or release), for checking our count. */
  publishedParams: number;
  /** Where the configuration and the count come from. */
  source: string;
}

const gpt2 = (nLayer: number, nEmbd: number, nHead: number, publishedParams: number, source: string): ModelPreset => ({
  architecture: { family: 'gpt2', nLayer, nHead, nEmbd, blockSize: 1024, vocabSize: 50257, bias: true, dropout: 0 },
  publishedParams,
  source,
});

/** Llama-3 rope scaling as the 3.1/3.2 configs give it. */
const llama3Scaling = (factor: number) => ({ factor, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositionEmbeddings: 8192 });

type LlamaShape = { nLayer: number; nEmbd: number; nHead: number; nKvHead: number; intermediateSize: number; vocabSize: number; blockSize: number; tieWordEmbeddings: boolean };
const llama = (modelType: string, s: LlamaShape, extra: Record<string, unknown>, publishedParams: number, source: string): ModelPreset => ({
  architecture: { family: modelType, ...s, maxPositionEmbeddings: s.blockSize, ...extra },
  publishedParams,
  source,
});

/**
 * Published sizes, from each model's config.json on its release. Llama 3's 405B exists only
 * as Llama 3.1 (config with rope scaling factor 8); the 8B and 70B are the original Llama 3.
 */
export const MODEL_PRESETS: Record<string, ModelPreset> = {
  'gpt2-124m': gpt2(12, 768, 12, 124e6, 'OpenAI gpt-2 release: 124M (renamed from 117M)'),
  'gpt2-355m': gpt2(24, 1024, 16, 355e6, 'OpenAI gpt-2 release: 355M (gpt2-medium)'),
  'gpt2-774m': gpt2(36, 1280, 20, 774e6, 'OpenAI gpt-2 release: 774M (gpt2-large)'),
  'gpt2-1.5b': gpt2(48, 1600, 25, 1558e6, 'OpenAI gpt-2 release: 1558M (gpt2-xl)'),
  'llama-3.2-1b': llama('llama', { nLayer: 16, nEmbd: 2048, nHead: 32, nKvHead: 8, intermediateSize: 8192, vocabSize: 128256, blockSize: 131072, tieWordEmbeddings: true },
    { ropeTheta: 500000, ropeScaling: llama3Scaling(32), rmsNormEps: 1e-5, headDim: 64 }, 1.23e9, 'Llama 3.2 model card: 1.23B'),
  'llama-3.2-3b': llama('llama', { nLayer: 28, nEmbd: 3072, nHead: 24, nKvHead: 8, intermediateSize: 8192, vocabSize: 128256, blockSize: 131072, tieWordEmbeddings: true },
    { ropeTheta: 500000, ropeScaling: llama3Scaling(32), rmsNormEps: 1e-5, headDim: 128 }, 3.21e9, 'Llama 3.2 model card: 3.21B'),
  'llama-3-8b': llama('llama', { nLayer: 32, nEmbd: 4096, nHead: 32, nKvHead: 8, intermediateSize: 14336, vocabSize: 128256, blockSize: 8192, tieWordEmbeddings: false },
    { ropeTheta: 500000, rmsNormEps: 1e-5 }, 8.03e9, 'Meta-Llama-3-8B: 8.03B'),
  'llama-3-70b': llama('llama', { nLayer: 80, nEmbd: 8192, nHead: 64, nKvHead: 8, intermediateSize: 28672, vocabSize: 128256, blockSize: 8192, tieWordEmbeddings: false },
    { ropeTheta: 500000, rmsNormEps: 1e-5 }, 70.6e9, 'Meta-Llama-3-70B: 70.6B'),
  'llama-3-405b': llama('llama', { nLayer: 126, nEmbd: 16384, nHead: 128, nKvHead: 8, intermediateSize: 53248, vocabSize: 128256, blockSize: 131072, tieWordEmbeddings: false },
    { ropeTheta: 500000, ropeScaling: llama3Scaling(8), rmsNormEps: 1e-5 }, 405e9, 'Llama 3.1 405B model card: 405B'),
  'smollm2-135m': llama('llama', { nLayer: 30, nEmbd: 576, nHead: 9, nKvHead: 3, intermediateSize: 1536, vocabSize: 49152, blockSize: 8192, tieWordEmbeddings: true },
    { ropeTheta: 100000, rmsNormEps: 1e-5 }, 135e6, 'SmolLM2 model card: 135M'),
  'smollm2-360m': llama('llama', { nLayer: 32, nEmbd: 960, nHead: 15, nKvHead: 5, intermediateSize: 2560, vocabSize: 49152, blockSize: 8192, tieWordEmbeddings: true },
    { ropeTheta: 100000, rmsNormEps: 1e-5 }, 360e6, 'SmolLM2 model card: 360M'),
  'qwen2.5-0.5b': llama('qwen2', { nLayer: 24, nEmbd: 896, nHead: 14, nKvHead: 2, intermediateSize: 4864, vocabSize: 151936, blockSize: 32768, tieWordEmbeddings: true },
    { ropeTheta: 1e6, rmsNormEps: 1e-6, qkvBias: true }, 0.49e9, 'Qwen2.5 model card: 0.49B'),
  'qwen2.5-7b': llama('qwen2', { nLayer: 28, nEmbd: 3584, nHead: 28, nKvHead: 4, intermediateSize: 18944, vocabSize: 152064, blockSize: 131072, tieWordEmbeddings: false },
    { ropeTheta: 1e6, rmsNormEps: 1e-6, qkvBias: true }, 7.61e9, 'Qwen2.5 model card: 7.61B'),
};

export function modelPreset(name: string): ModelPreset {
  const p = MODEL_PRESETS[name];
  if (!p) throw new Error(`unknown model preset '${name}'; presets are ${Object.keys(MODEL_PRESETS).join(', ')}`);
  return p;
}
