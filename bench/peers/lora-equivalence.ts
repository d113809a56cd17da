// atscale's LoRA step vs the PyTorch LoRA peer (lora_torch.py) on the same base weights,
// adapter and batch: the loss and the gradient of every A and B.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { existsSync } from 'node:fs';
import { GPT } from '../../src/models/gpt.js';
import type { GPTConfig } from '../../src/models/config.js';
import { LoraModel } from '../../src/models/lora-model.js';
import { FlatLayout } from '../../src/nn/flat.js';
import type { LoraConfig } from '../../src/nn/lora.js';
import { lossAndGrad } from './atscale-grad.js';
import { saveAdapter } from '../../src/engine/adapter-dir.js';
import { Rng } from '../../src/tensor/rng.js';
import { writeSafetensorsFile, readSafetensorsFile } from '../../src/checkpoint/index.js';
import { PYTHON, peerEnv } from './torch-peer.js';
import { worstGradient } from './torch-equivalence.js';

export interface LoraEquivalence {
  loss: number;
  torchLoss: number;
  lossRelError: number;
  gradRelError: number;
  worst: string;
  torchVersion: string;
  /** The kernel set the peer's OpenBLAS ran (openblas_get_corename). */
  blasCore: string;
}

function script(): string {
  for (const c of [new URL('./lora_torch.py', import.meta.url), new URL('../../../bench/peers/lora_torch.py', import.meta.url)]) {
    const p = fileURLToPath(c);
    if (existsSync(p)) return p;
  }
  throw new Error('lora_torch.py not found next to bench/peers');
}

/** `nativeBlas`: the peer runs the OpenBLAS kernels it picks for this CPU, as the speed peer
 * torchLoraStepMs does, so a benchmark checks the kernels it times (torch-peer.ts, peerEnv). */
export async function compareLoraWithTorch(cfg: Partial<GPTConfig>, lora: LoraConfig, batch: number, seed = 11, nativeBlas = false): Promise<LoraEquivalence> {
  const base = new GPT({ ...cfg, dropout: 0 });
  const c = base.config;
  const baseParams = new FlatLayout(base).initialise(seed);
  const model = new LoraModel(base, baseParams, { ...lora, dropout: 0 });
  const layout = new FlatLayout(model);
  const adapter = layout.initialise(seed + 1);
  const rng = new Rng(seed + 2);
  // A nonzero B, so that the gradient of A is not trivially zero.
  for (const s of layout.slots) if (s.name.endsWith('lora_B.weight')) for (let i = 0; i < s.size; i++) adapter[s.offset + i] = 0.02 * rng.normal();
  const n = batch * c.blockSize;
  const idx = Int32Array.from({ length: n }, () => rng.int(c.vocabSize));
  // A third of the targets are masked (-1), as prompt tokens are in fine-tuning.
  const targets = Int32Array.from({ length: n }, (_, i) => (i % 3 === 0 ? -1 : rng.int(c.vocabSize)));
  const ours = await lossAndGrad(model, layout, adapter, idx, targets, batch, c.blockSize);
  const dir = mkdtempSync(join(tmpdir(), 'atscale-lora-torch-'));
  try {
    const weights: Record<string, { dtype: 'F32'; shape: number[]; data: Float32Array }> = {};
    for (const [name, e] of Object.entries(new FlatLayout(base).stateDict(baseParams))) weights[name] = { dtype: 'F32', shape: e.shape, data: e.data };
    const config = { n_layer: c.nLayer, n_head: c.nHead, n_embd: c.nEmbd, block_size: c.blockSize, vocab_size: c.vocabSize, bias: c.bias, dropout: 0 };
    writeSafetensorsFile(join(dir, 'w.safetensors'), weights, { config: JSON.stringify(config) });
    writeSafetensorsFile(join(dir, 'b.safetensors'), { idx: { dtype: 'I32', shape: [batch, c.blockSize], data: idx }, targets: { dtype: 'I32', shape: [batch, c.blockSize], data: targets } });
    saveAdapter(join(dir, 'adapter'), model, adapter, dir, 'none');
    const r = spawnSync(PYTHON, [script(), 'grads', '--weights', join(dir, 'w.safetensors'), '--adapter', join(dir, 'adapter', 'adapter_model.safetensors'), '--adapter-config', join(dir, 'adapter', 'adapter_config.json'), '--batch', join(dir, 'b.safetensors'), '--out', join(dir, 'g.safetensors'), '--threads', '2'], { encoding: 'utf8', timeout: 120_000, env: peerEnv(nativeBlas) });
    if (r.status !== 0) throw new Error(`lora_torch.py failed (${r.status}): ${r.stderr}`);
    const line = JSON.parse(r.stdout.trim().split('\n').at(-1)!) as { loss: number; torch_version: string; blas_core: string };
    const theirs = readSafetensorsFile(join(dir, 'g.safetensors')).tensors;
    const { rel: gradRelError, worst } = worstGradient(layout.slots, ours.grad, theirs);
    const ourLoss = ours.loss;
    return { loss: ourLoss, torchLoss: line.loss, lossRelError: Math.abs(ourLoss - line.loss) / Math.abs(line.loss), gradRelError, worst, torchVersion: line.torch_version, blasCore: line.blas_core };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Median ms of a PyTorch LoRA training step (AdamW over the adapter) on `base` with the adapter in `adapterDir`,
 * with the OpenBLAS kernels OpenBLAS picks for this CPU (a speed peer: torch-peer.ts, peerEnv). */
export function torchLoraStepMs(arch: Record<string, unknown>, baseParams: Float32Array, baseLayout: FlatLayout, adapterDir: string, batchSize: number, iters = 5, threads = 2): { ms: number; torchVersion: string; blasCore: string } {
  const dir = mkdtempSync(join(tmpdir(), 'atscale-lora-bench-'));
  try {
    const weights: Record<string, { dtype: 'F32'; shape: number[]; data: Float32Array }> = {};
    for (const [name, e] of Object.entries(baseLayout.stateDict(baseParams))) weights[name] = { dtype: 'F32', shape: e.shape, data: e.data };
    const a = arch as { nLayer: number; nHead: number; nEmbd: number; blockSize: number; vocabSize: number; bias: boolean };
    const config = { n_layer: a.nLayer, n_head: a.nHead, n_embd: a.nEmbd, block_size: a.blockSize, vocab_size: a.vocabSize, bias: a.bias, dropout: 0 };
    writeSafetensorsFile(join(dir, 'w.safetensors'), weights, { config: JSON.stringify(config) });
    const r = spawnSync(PYTHON, [script(), 'bench', '--weights', join(dir, 'w.safetensors'), '--adapter', join(adapterDir, 'adapter_model.safetensors'), '--adapter-config', join(adapterDir, 'adapter_config.json'), '--batch-size', String(batchSize), '--iters', String(iters), '--threads', String(threads)], { encoding: 'utf8', timeout: 1_800_000, env: peerEnv(true) });
    if (r.status !== 0) throw new Error(`lora_torch.py bench failed (${r.status}): ${r.stderr.slice(-1000)}`);
    const line = JSON.parse(r.stdout.trim().split('\n').at(-1)!) as { ms_per_iter: number; torch_version: string; blas_core: string };
    return { ms: line.ms_per_iter, torchVersion: line.torch_version, blasCore: line.blas_core };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
