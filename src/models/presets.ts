// Training presets: nanoGPT's shakespeare_char configurations (model and optimisation).
import type { GPTConfig } from './config.js';

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
