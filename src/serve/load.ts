// What the server needs of a model folder, in one place: the model, its flat parameters, its
// tokenizer and how to render a chat. Hugging Face folders plug in here (models/ loads them);
// an atscale checkpoint is read by the engine's loader.
import { basename, resolve } from 'node:path';
import type { Tokenizer } from '../data/index.js';
import type { LanguageModel } from '../models/model.js';
import { loadTrainedModel } from '../engine/load-trained.js';
import type { ChatMessage } from './requests.js';

export interface ServedModel {
  /** The id clients pass as `model` (the folder's name). */
  id: string;
  model: LanguageModel;
  params: Float32Array;
  tokenizer: Tokenizer;
  /** Renders a conversation into the prompt text; the assistant's turn is left open. */
  renderChat(messages: readonly ChatMessage[]): string;
}

/**
 * The default chat format, for models without a chat template (atscale checkpoints): one line
 * per message, `role: content`, then `assistant:` for the model to continue. A model trained on
 * plain text continues it sensibly, and the stop sequence "\nuser:" ends its turn.
 */
export function defaultChat(messages: readonly ChatMessage[]): string {
  return messages.map((m) => `${m.role}: ${m.content}\n`).join('') + 'assistant:';
}

export function load(dir: string): ServedModel {
  const { model, params, tokenizer } = loadTrainedModel(dir);
  return { id: basename(resolve(dir)), model, params, tokenizer, renderChat: defaultChat };
}
