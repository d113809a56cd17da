// The one place that maps an architecture record to a model class. Everything above models/
// builds models through createModel, so a checkpoint, a preset or a Hugging Face folder names
// its family as data and no engine or CLI code names GPT or Llama.
import type { LanguageModel } from './model.js';
import { GPT } from './gpt.js';
import { Llama } from './llama.js';
import type { GPTConfig } from './config.js';
import type { LlamaConfig } from './llama-config.js';

/**
 * A model as data: `family` (a Hugging Face model_type: gpt2, llama, qwen2, mistral) and the
 * family's config fields (camelCase, as its architecture() writes them). A record without a
 * family is a GPT-2 (checkpoints written before families existed).
 */
export type Architecture = { family?: string } & Record<string, unknown>;

export const FAMILIES = ['gpt2', 'llama', 'qwen2', 'mistral'] as const;
export type Family = (typeof FAMILIES)[number];

/** The family of an architecture record; unknown names are refused with the known ones listed. */
export function familyOf(arch: Architecture): Family {
  const f = arch.family ?? 'gpt2';
  if (!(FAMILIES as readonly string[]).includes(String(f))) throw new Error(`unknown model family '${String(f)}'; known families are ${FAMILIES.join(', ')}`);
  return f as Family;
}

export function createModel(arch: Architecture): LanguageModel {
  const family = familyOf(arch);
  const { family: _, ...fields } = arch;
  if (family === 'gpt2') return new GPT(fields as Partial<GPTConfig>);
  return new Llama({ ...(fields as Partial<LlamaConfig>), modelType: family });
}

/** The same architecture with other sizes (e.g. the vocabulary of the tokenizer in use). */
export function withFields(arch: Architecture, fields: Record<string, unknown>): Architecture {
  return { ...arch, ...fields };
}
