// atscale vs the PyTorch reference on the same weights and batch: loss and every parameter
// gradient. Used by the correctness test (when torch is installed) and the train benchmark.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GPT } from '../../src/models/gpt.js';
import type { GPTConfig } from '../../src/models/config.js';
import { FlatLayout } from '../../src/nn/flat.js';
import { lossAndGrad } from './atscale-grad.js';
import { Rng } from '../../src/tensor/rng.js';
import { writeSafetensorsFile, readSafetensorsFile } from '../../src/checkpoint/index.js';
import { runTorchGrads } from './torch-peer.js';

export interface Equivalence {
  loss: number;
  torchLoss: number;
  lossRelError: number;
  /** Largest over parameters of max|g - g_torch| / max|g_torch|. */
  gradRelError: number;
  worstParam: string;
}

/** `nativeBlas`: the peer runs the OpenBLAS kernels it picks for this CPU, as the speed peer
 * of the train benchmark does (torch-peer.ts, peerEnv), so that the check covers those kernels. */
export async function compareWithTorch(cfg: Partial<GPTConfig>, batch: number, seed = 7, threads = 2, nativeBlas = false): Promise<Equivalence> {
  const model = new GPT({ ...cfg, dropout: 0 });
  const c = model.config;
  const layout = new FlatLayout(model);
  const params = layout.initialise(seed);
  const rng = new Rng(seed + 1);
  const n = batch * c.blockSize;
  const idx = Int32Array.from({ length: n }, () => rng.int(c.vocabSize));
  const targets = Int32Array.from({ length: n }, () => rng.int(c.vocabSize));

  const ours = await lossAndGrad(model, layout, params, idx, targets, batch, c.blockSize, threads);

  const dir = mkdtempSync(join(tmpdir(), 'atscale-torch-'));
  try {
    const weights: Record<string, { dtype: 'F32'; shape: number[]; data: Float32Array }> = {};
    for (const [name, e] of Object.entries(layout.stateDict(params))) weights[name] = { dtype: 'F32', shape: e.shape, data: e.data };
    writeSafetensorsFile(join(dir, 'w.safetensors'), weights);
    writeSafetensorsFile(join(dir, 'b.safetensors'), { idx: { dtype: 'I32', shape: [batch, c.blockSize], data: idx }, targets: { dtype: 'I32', shape: [batch, c.blockSize], data: targets } });
    const config = { n_layer: c.nLayer, n_head: c.nHead, n_embd: c.nEmbd, block_size: c.blockSize, vocab_size: c.vocabSize, bias: c.bias, dropout: 0 };
    const r = await runTorchGrads({ weights: join(dir, 'w.safetensors'), batch: join(dir, 'b.safetensors'), out: join(dir, 'g.safetensors'), config, threads, nativeBlas });
    const theirs = readSafetensorsFile(join(dir, 'g.safetensors')).tensors;
    const { rel: gradRelError, worst: worstParam } = worstGradient(layout.slots, ours.grad, theirs);
    const ourLoss = ours.loss;
    return { loss: ourLoss, torchLoss: r.loss, lossRelError: Math.abs(ourLoss - r.loss) / Math.abs(r.loss), gradRelError, worstParam };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The largest over parameters of max|g - g_torch| / max|g_torch|, and which parameter it was. */
export function worstGradient(slots: readonly { name: string; offset: number; size: number }[], ours: Float32Array, theirs: Record<string, { data: ArrayLike<number | bigint> }>): { rel: number; worst: string } {
  let rel = 0;
  let worst = '';
  for (const s of slots) {
    const t = theirs[s.name];
    if (!t) throw new Error(`PyTorch returned no gradient for ${s.name}`);
    let err = 0;
    let mag = 0;
    for (let i = 0; i < s.size; i++) {
      err = Math.max(err, Math.abs(ours[s.offset + i]! - Number(t.data[i])));
      mag = Math.max(mag, Math.abs(Number(t.data[i])));
    }
    if (err / Math.max(mag, 1e-30) > rel) [rel, worst] = [err / Math.max(mag, 1e-30), s.name];
  }
  return { rel, worst };
}
