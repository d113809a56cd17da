// A small random-weight checkpoint (char tokenizer) written the way atscale train writes one,
// for the serving and export tests: real files, real loader, no training time.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { saveCheckpoint } from '../../src/checkpoint/index.js';
import { CharTokenizer } from '../../src/data/char_tokenizer.js';
import { GPT } from '../../src/models/gpt.js';
import type { GPTConfig } from '../../src/models/config.js';
import { Llama } from '../../src/models/llama.js';
import type { LlamaConfig } from '../../src/models/llama-config.js';
import type { LanguageModel } from '../../src/models/model.js';
import { FlatLayout } from '../../src/nn/flat.js';

export const ALPHABET = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ .,:;!?\'\n-';

/** Writes a checkpoint folder named `name` and returns its path. */
export function tinyCheckpoint(name = 'tiny', config: Partial<GPTConfig> = {}, seed = 7): string {
  const tokenizer = new CharTokenizer([...new Set(ALPHABET)].sort());
  const cfg = { nLayer: 2, nHead: 2, nEmbd: 32, blockSize: 64, vocabSize: tokenizer.vocabSize, bias: true, dropout: 0, ...config };
  return write(name, new GPT(cfg), { config: cfg }, tokenizer, seed);
}

/** A Llama-family checkpoint: grouped-query attention (4 query heads on 2 kv heads), Llama 3
 * rope scaling, an untied head. */
export function tinyLlamaCheckpoint(name = 'tiny-llama', config: Partial<LlamaConfig> = {}, seed = 7): string {
  const tokenizer = new CharTokenizer([...new Set(ALPHABET)].sort());
  const model = new Llama({ nLayer: 2, nHead: 4, nKvHead: 2, nEmbd: 32, intermediateSize: 48, blockSize: 64, vocabSize: tokenizer.vocabSize, ropeTheta: 10000, ropeScaling: { factor: 8, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositionEmbeddings: 16 }, ...config });
  return write(name, model, { architecture: model.architecture() }, tokenizer, seed);
}

function write(name: string, model: LanguageModel, meta: Record<string, unknown>, tokenizer: CharTokenizer, seed: number): string {
  const layout = new FlatLayout(model);
  // A larger init than training's makes the random model's logits peaked, so greedy text varies.
  const params = layout.initialise(seed).map((x) => x * 8);
  const tensors: Record<string, { dtype: 'F32'; shape: number[]; data: Float32Array }> = {};
  for (const [k, e] of Object.entries(layout.stateDict(params))) tensors[k] = { dtype: 'F32', shape: e.shape, data: e.data };
  const dir = join(mkdtempSync(join(tmpdir(), 'atscale-serve-')), name);
  saveCheckpoint(dir, { tensors, meta, files: { 'tokenizer.json': JSON.stringify(tokenizer.toJSON()) } });
  return dir;
}
