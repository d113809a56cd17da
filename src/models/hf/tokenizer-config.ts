// tokenizer_config.json: the special tokens (bos/eos/pad/unk, as strings or AddedToken
// objects), whether encoding adds BOS, and the chat template (a Jinja string, or a list of
// named templates of which "default" is used). The template is stored as given; rendering it
// is chat-template.ts's job.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

export interface TokenizerConfig {
  bosToken?: string;
  eosToken?: string;
  padToken?: string;
  unkToken?: string;
  /** tokenizer_config.json's add_bos_token (Llama 2 tokenizers); undefined when not said. */
  addBosToken?: boolean;
  chatTemplate?: string;
  /** The file as read, to be written back unchanged by a save. */
  raw?: Record<string, unknown>;
}

export function readTokenizerConfig(dir: string): TokenizerConfig {
  const path = join(dir, 'tokenizer_config.json');
  if (!existsSync(path)) return {};
  let raw: Record<string, unknown>;
  try {
    raw = JSON.parse(readFileSync(path, 'utf8')) as Record<string, unknown>;
  } catch (e) {
    throw new Error(`${path}: not valid JSON (${(e as Error).message})`);
  }
  const token = (key: string): string | undefined => {
    const v = raw[key];
    if (v === undefined || v === null) return undefined;
    if (typeof v === 'string') return v;
    if (typeof v === 'object' && typeof (v as { content?: unknown }).content === 'string') return (v as { content: string }).content;
    throw new Error(`${path}: key "${key}" must be a string or an object with "content", got ${JSON.stringify(v)}`);
  };
  let chatTemplate: string | undefined;
  const t = raw['chat_template'];
  if (typeof t === 'string') chatTemplate = t;
  else if (Array.isArray(t)) {
    const named = t.find((x: { name?: unknown }) => x?.name === 'default') ?? t[0];
    if (typeof named?.template !== 'string') throw new Error(`${path}: key "chat_template" is a list whose entries need "name" and "template" strings`);
    chatTemplate = named.template as string;
  } else if (t !== undefined && t !== null) throw new Error(`${path}: key "chat_template" must be a string or a list of {name, template}`);
  const add = raw['add_bos_token'];
  return { bosToken: token('bos_token'), eosToken: token('eos_token'), padToken: token('pad_token'), unkToken: token('unk_token'), addBosToken: typeof add === 'boolean' ? add : undefined, chatTemplate, raw };
}
