// Folding an adapter into its base: the merged checkpoint has the base's architecture,
// tokenizer and chat template, and weights W + scale * B A.
import { resolve } from 'node:path';
import { saveCheckpoint, type TensorEntry } from '../checkpoint/index.js';
import { FlatLayout } from '../nn/flat.js';
import { LoraModel } from '../models/lora-model.js';
import { openModel, resolveModelDir } from './model-dir.js';
import { readAdapter } from './adapter-dir.js';

export function mergeAdapter(base: string | undefined, adapter: string, out: string): string {
  const baseDir = base ?? readAdapter(resolveModelDir(adapter)).config.base_model_name_or_path;
  const m = openModel(baseDir, adapter);
  if (!(m.model instanceof LoraModel)) throw new Error(`${adapter} did not open as a LoRA adapter`);
  const merged = m.model.merge(m.params);
  const layout = new FlatLayout(m.model.base);
  const tensors: Record<string, TensorEntry> = {};
  for (const s of layout.slots) tensors[s.name] = { dtype: 'F32', shape: [...s.shape], data: layout.view(merged, s.name) };
  const meta = { iter: 0, config: m.model.base.architecture(), tokenizer: m.tokenizer.fingerprint(), chatTemplate: m.chatTemplate, merged: { base: m.dir, adapter: m.adapterDir } };
  saveCheckpoint(out, { tensors, meta, files: { 'tokenizer.json': JSON.stringify(m.tokenizer.toJSON()) } });
  return resolve(out);
}
