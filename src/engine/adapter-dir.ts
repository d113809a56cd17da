// A LoRA adapter directory as Hugging Face PEFT writes one, so PEFT users can read it:
//   adapter_model.safetensors  base_model.model.<layer>.lora_A.weight [r, in], .lora_B.weight [out, r]
//   adapter_config.json        peft_type LORA, r, lora_alpha, lora_dropout, target_modules, ...
// plus atscale's own checks: the base model's directory and the fingerprints of its weights and
// tokenizer (an adapter on the wrong base is refused), and a manifest with checksums, written
// last and atomically like every checkpoint (temporary directory, fsync, rename).
import { mkdirSync, rmSync } from 'node:fs';
import { createHash, randomBytes } from 'node:crypto';
import { dirname, join, resolve } from 'node:path';
import { commitDirectory, committedDir, readVerified, writeFileSynced, type FileDigest } from '../checkpoint/atomic_dir.js';
import { parseSafetensors, writeSafetensorsFile, type TensorEntry } from '../checkpoint/safetensors.js';
import { FlatLayout } from '../nn/flat.js';
import type { LoraConfig } from '../nn/lora.js';
import type { LoraModel } from '../models/lora-model.js';

export const ADAPTER_FORMAT = 'atscale-lora-adapter';
const PEFT_PREFIX = 'base_model.model.';

export interface AdapterConfig {
  peft_type: 'LORA';
  task_type: 'CAUSAL_LM';
  r: number;
  lora_alpha: number;
  lora_dropout: number;
  target_modules: string[];
  use_rslora: boolean;
  bias: 'none';
  /** GPT-2 stores Linear weights [in, out] (Conv1D), which PEFT calls fan_in_fan_out. */
  fan_in_fan_out: boolean;
  init_lora_weights: 'gaussian';
  base_model_name_or_path: string;
  atscale: { base_fingerprint: string; tokenizer_fingerprint: string };
}

/** sha256 of the base weights' bytes: the identity an adapter is bound to. */
export function weightsFingerprint(params: Float32Array): string {
  return createHash('sha256').update(new Uint8Array(params.buffer, params.byteOffset, params.byteLength)).digest('hex');
}

export function loraFromAdapterConfig(c: AdapterConfig): LoraConfig {
  return { r: c.r, alpha: c.lora_alpha, dropout: c.lora_dropout, targetModules: c.target_modules, useRslora: c.use_rslora };
}

export function saveAdapter(dir: string, model: LoraModel, adapter: Float32Array, baseDir: string, tokenizerFingerprint: string): void {
  dir = resolve(dir);
  const layout = new FlatLayout(model);
  const tensors: Record<string, TensorEntry> = {};
  for (const s of layout.slots) tensors[PEFT_PREFIX + s.name] = { dtype: 'F32', shape: [...s.shape], data: layout.view(adapter, s.name) };
  const fanInFanOut = model.targets.some(([, l]) => l.weightLayout === 'in,out');
  const config: AdapterConfig = {
    peft_type: 'LORA',
    task_type: 'CAUSAL_LM',
    r: model.lora.r,
    lora_alpha: model.lora.alpha,
    lora_dropout: model.lora.dropout,
    target_modules: model.lora.targetModules,
    use_rslora: model.lora.useRslora,
    bias: 'none',
    fan_in_fan_out: fanInFanOut,
    init_lora_weights: 'gaussian',
    base_model_name_or_path: resolve(baseDir),
    atscale: { base_fingerprint: weightsFingerprint(model.baseParams), tokenizer_fingerprint: tokenizerFingerprint },
  };
  mkdirSync(dirname(dir), { recursive: true });
  const staging = `${dir}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
  mkdirSync(staging);
  try {
    const files: Record<string, FileDigest> = {};
    files['adapter_model.safetensors'] = writeSafetensorsFile(join(staging, 'adapter_model.safetensors'), tensors, { format: 'pt' });
    files['adapter_config.json'] = writeFileSynced(join(staging, 'adapter_config.json'), JSON.stringify(config, null, 2) + '\n');
    commitDirectory(staging, dir, { format: ADAPTER_FORMAT, version: 1, files });
  } catch (e) {
    rmSync(staging, { recursive: true, force: true });
    throw e;
  }
}

export interface LoadedAdapter {
  config: AdapterConfig;
  /** Tensors by atscale name (without PEFT's base_model.model. prefix). */
  tensors: Record<string, TensorEntry>;
  dir: string;
}

/** Reads and verifies an adapter directory (checksums first, then the config's keys). */
export function readAdapter(dir: string): LoadedAdapter {
  dir = committedDir(resolve(dir));
  const { contents } = readVerified(dir, 'adapter', ADAPTER_FORMAT);
  const cfgBytes = contents.get('adapter_config.json');
  const tBytes = contents.get('adapter_model.safetensors');
  if (!cfgBytes || !tBytes) throw new Error(`adapter ${dir}: adapter_config.json and adapter_model.safetensors are both required`);
  const config = JSON.parse(cfgBytes.toString('utf8')) as AdapterConfig;
  if (config.peft_type !== 'LORA') throw new Error(`adapter ${dir}/adapter_config.json: peft_type ${JSON.stringify(config.peft_type)} is not supported (only LORA)`);
  for (const k of ['r', 'lora_alpha', 'lora_dropout'] as const) {
    if (typeof config[k] !== 'number' || !Number.isFinite(config[k])) throw new Error(`adapter ${dir}/adapter_config.json: ${k} must be a number`);
  }
  if (!Array.isArray(config.target_modules) || typeof config.base_model_name_or_path !== 'string') {
    throw new Error(`adapter ${dir}/adapter_config.json: target_modules (a list) and base_model_name_or_path are required`);
  }
  const parsed = parseSafetensors(tBytes, join(dir, 'adapter_model.safetensors')).tensors;
  const tensors: Record<string, TensorEntry> = {};
  for (const [name, t] of Object.entries(parsed)) {
    if (!name.startsWith(PEFT_PREFIX)) throw new Error(`adapter ${dir}/adapter_model.safetensors: tensor ${name} does not start with ${PEFT_PREFIX}`);
    if (t.dtype !== 'F32') throw new Error(`adapter ${dir}/adapter_model.safetensors: tensor ${name} is ${t.dtype}; atscale adapters are F32`);
    tensors[name.slice(PEFT_PREFIX.length)] = t;
  }
  return { config, tensors, dir };
}

/** The adapter's flat parameters for `model`, after checking it belongs to this base and tokenizer. */
export function adapterParams(a: LoadedAdapter, model: LoraModel, tokenizerFingerprint: string): Float32Array {
  const want = a.config.atscale;
  if (want && want.base_fingerprint !== weightsFingerprint(model.baseParams)) {
    throw new Error(`adapter ${a.dir} was trained on other base weights than ${a.config.base_model_name_or_path} holds now (fingerprint ${want.base_fingerprint.slice(0, 12)}...); use the base it was trained on`);
  }
  if (want && want.tokenizer_fingerprint !== tokenizerFingerprint) {
    throw new Error(`adapter ${a.dir} was trained with another tokenizer (fingerprint ${want.tokenizer_fingerprint.slice(0, 12)}...) than the base model's; use the base it was trained on`);
  }
  const layout = new FlatLayout(model);
  const buf = new Float32Array(layout.size);
  layout.loadStateDict(buf, Object.fromEntries(Object.entries(a.tensors).map(([k, t]) => [k, { shape: t.shape, data: t.data as Float32Array }])));
  return buf;
}
