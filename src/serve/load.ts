// What the server needs of a model folder, in one place: the model, its flat parameters, its
// tokenizer, how to render a chat and which tokens end a completion. Every directory atscale
// writes opens through the engine's openModel (checkpoints, fine-tune runs, LoRA adapters on
// their base); Hugging Face folders plug in here too.
import { basename, resolve } from 'node:path';
import type { Tokenizer } from '../data/index.js';
import { endOfTextId } from '../data/finetune-examples.js';
import type { LanguageModel } from '../models/model.js';
import { LoraModel } from '../models/lora-model.js';
import { openModel } from '../engine/model-dir.js';
import type { ChatMessage } from './requests.js';

export interface ServedModel {
  /** The id clients pass as `model` (the folder's name, or the adapter's). */
  id: string;
  model: LanguageModel;
  params: Float32Array;
  tokenizer: Tokenizer;
  /** Renders a conversation into the prompt text; the assistant's turn is left open. */
  renderChat(messages: readonly ChatMessage[]): string;
  /** Token ids that end a completion (finish_reason "stop"); not part of the text. */
  endIds: number[];
}

/**
 * Opens `dir` (and `adapter`, a LoRA adapter folder, if given). An adapter is folded into the
 * base weights once here (W + scale * B A), so serving it costs the same as serving the base.
 * Chats render with the model's chat format (an HF folder's Jinja template, or the one a
 * fine-tuned checkpoint was trained with); others get atscale's plain one.
 */
export function load(dir: string, adapter?: string): ServedModel {
  const m = openModel(dir, adapter);
  let model = m.model;
  let params = m.params;
  if (model instanceof LoraModel) {
    params = model.merge(params);
    model = model.base;
  }
  let endIds: number[] = [];
  try {
    endIds = [endOfTextId(m.tokenizer, m.chatFormat.endOfText)];
  } catch {
    // A character tokenizer has no end-of-text token: completions end at max_tokens or a stop sequence.
  }
  const format = m.chatFormat;
  return {
    id: basename(resolve(adapter ?? dir)),
    model,
    params,
    tokenizer: m.tokenizer,
    renderChat: (messages) => format.generationPrompt(messages.map((x) => ({ role: x.role === 'developer' ? 'system' : (x.role as 'system' | 'user' | 'assistant'), content: x.content }))),
    endIds,
  };
}
