// Fine-tuning records in OpenAI's two JSONL formats, read strictly: every problem names its
// line, and nothing is dropped without being counted and reported.
//   {"prompt": "...", "completion": "..."}                      (legacy completions)
//   {"messages": [{"role": "system"|"user"|"assistant", "content": "...", "weight": 0|1}, ...]}
import { readFileSync } from 'node:fs';

export type Role = 'system' | 'user' | 'assistant';
export const ROLES: readonly Role[] = ['system', 'user', 'assistant'];

export interface ChatMessage {
  role: Role;
  content: string;
  /** OpenAI's per-message weight: 0 excludes an assistant message from the loss. */
  weight?: 0 | 1;
}

export type FinetuneRecord = { kind: 'completion'; line: number; prompt: string; completion: string } | { kind: 'chat'; line: number; messages: ChatMessage[] };

export class DataLineError extends Error {
  override name = 'DataLineError';
}

function fail(file: string, line: number, what: string): never {
  throw new DataLineError(`${file}:${line}: ${what}`);
}

function parseMessage(file: string, line: number, m: unknown, i: number): ChatMessage {
  if (m === null || typeof m !== 'object' || Array.isArray(m)) fail(file, line, `messages[${i}] must be an object with role and content`);
  const { role, content, weight, ...extra } = m as Record<string, unknown>;
  if (typeof role !== 'string' || !ROLES.includes(role as Role)) fail(file, line, `messages[${i}].role must be one of ${ROLES.join(', ')}, got ${JSON.stringify(role)}`);
  if (typeof content !== 'string') fail(file, line, `messages[${i}].content must be a string, got ${JSON.stringify(content)}`);
  if (weight !== undefined && weight !== 0 && weight !== 1) fail(file, line, `messages[${i}].weight must be 0 or 1, got ${JSON.stringify(weight)}`);
  if (weight !== undefined && role !== 'assistant') fail(file, line, `messages[${i}].weight is only allowed on assistant messages (role is ${role})`);
  const unknown = Object.keys(extra).filter((k) => k !== 'name');
  if (unknown.length > 0) fail(file, line, `messages[${i}] has unknown field(s) ${unknown.join(', ')}; allowed: role, content, weight, name`);
  return { role: role as Role, content, ...(weight !== undefined ? { weight: weight as 0 | 1 } : {}) };
}

/** Parses one JSONL line (1-based `line`) into a record; throws DataLineError naming the line. */
export function parseRecord(file: string, line: number, text: string): FinetuneRecord {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    fail(file, line, `not valid JSON (${(e as Error).message})`);
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) fail(file, line, 'each line must be a JSON object');
  const o = value as Record<string, unknown>;
  if ('messages' in o) {
    if (!Array.isArray(o.messages) || o.messages.length === 0) fail(file, line, 'messages must be a non-empty array');
    const messages = o.messages.map((m, i) => parseMessage(file, line, m, i));
    if (!messages.some((m) => m.role === 'assistant')) fail(file, line, 'messages has no assistant message to learn from');
    if (messages.some((m) => m.role === 'assistant' && m.content.length === 0)) fail(file, line, 'an assistant message is empty');
    return { kind: 'chat', line, messages };
  }
  if (!('prompt' in o) || !('completion' in o)) {
    fail(file, line, `missing field(s): expected "prompt" and "completion", or "messages"; got ${Object.keys(o).join(', ') || 'an empty object'}`);
  }
  if (typeof o.prompt !== 'string') fail(file, line, `prompt must be a string, got ${JSON.stringify(o.prompt)}`);
  if (typeof o.completion !== 'string') fail(file, line, `completion must be a string, got ${JSON.stringify(o.completion)}`);
  if (o.completion.trim().length === 0) fail(file, line, 'completion is empty; there is nothing to learn from this line');
  return { kind: 'completion', line, prompt: o.prompt, completion: o.completion };
}

/** All records of a JSONL file; blank lines are allowed and skipped (and counted as such). */
export function readRecords(file: string, text = readFileSync(file, 'utf8')): FinetuneRecord[] {
  const out: FinetuneRecord[] = [];
  text.split('\n').forEach((raw, i) => {
    if (raw.trim().length > 0) out.push(parseRecord(file, i + 1, raw));
  });
  if (out.length === 0) throw new DataLineError(`${file}: no records (the file is empty)`);
  return out;
}
