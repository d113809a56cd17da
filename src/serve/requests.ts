// Validation of OpenAI completion and chat request bodies into one typed record. Every field is
// checked for type and range, and a bad one is named in the error (param), as OpenAI does.
import { badRequest, ApiError } from './errors.js';
import type { SamplingParams } from './sampling.js';

export interface ChatMessage {
  role: string;
  content: string;
}

export interface GenerationRequest {
  model: string;
  /** Completions: the prompt text; chat: the messages. */
  prompt?: string;
  messages?: ChatMessage[];
  /** undefined: as many as the context leaves (chat) or 16 (completions, OpenAI's default). */
  maxTokens?: number;
  sampling: SamplingParams;
  stop: string[];
  seed?: number;
  n: number;
  stream: boolean;
  includeUsage: boolean;
  echo: boolean;
  user?: string;
}

export interface Limits {
  /** Most choices per request. */
  maxN: number;
}

type Body = Record<string, unknown>;

function num(b: Body, key: string, lo: number, hi: number, def: number, integer = false): number {
  const v = b[key];
  if (v === undefined || v === null) return def;
  if (typeof v !== 'number' || !Number.isFinite(v)) throw badRequest(`'${key}' must be a number, got ${JSON.stringify(v)}`, key);
  if (integer && !Number.isInteger(v)) throw badRequest(`'${key}' must be an integer, got ${v}`, key);
  if (v < lo || v > hi) throw badRequest(`'${key}' must be between ${lo} and ${hi}, got ${v}`, key);
  return v;
}

function bool(b: Body, key: string): boolean {
  const v = b[key];
  if (v === undefined || v === null) return false;
  if (typeof v !== 'boolean') throw badRequest(`'${key}' must be true or false, got ${JSON.stringify(v)}`, key);
  return v;
}

function stopList(v: unknown): string[] {
  if (v === undefined || v === null) return [];
  const list = typeof v === 'string' ? [v] : v;
  if (!Array.isArray(list) || !list.every((s) => typeof s === 'string')) throw badRequest(`'stop' must be a string or a list of strings, got ${JSON.stringify(v)}`, 'stop');
  if (list.length > 4) throw badRequest(`'stop' takes at most 4 sequences, got ${list.length}`, 'stop');
  if (list.some((s) => s.length === 0)) throw badRequest(`'stop' sequences must not be empty`, 'stop');
  return list as string[];
}

function messagesOf(v: unknown): ChatMessage[] {
  if (!Array.isArray(v) || v.length === 0) throw badRequest(`'messages' must be a non-empty list of {role, content}`, 'messages');
  return v.map((m, i) => {
    const r = m as Body;
    if (typeof m !== 'object' || m === null || typeof r.role !== 'string') throw badRequest(`messages[${i}] must be an object with a string 'role'`, `messages[${i}]`);
    let content = r.content;
    // The content-part form: [{type: "text", text}, ...].
    if (Array.isArray(content)) content = content.map((p) => (typeof p === 'object' && p !== null && (p as Body).type === 'text' && typeof (p as Body).text === 'string' ? (p as Body).text : '')).join('');
    if (typeof content !== 'string') throw badRequest(`messages[${i}].content must be a string`, `messages[${i}].content`);
    if (!['system', 'developer', 'user', 'assistant'].includes(r.role)) throw badRequest(`messages[${i}].role must be system, developer, user or assistant, got '${r.role}'`, `messages[${i}].role`);
    return { role: r.role, content };
  });
}

export function parseRequest(raw: unknown, kind: 'completion' | 'chat', limits: Limits): GenerationRequest {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw badRequest('the request body must be a JSON object');
  const b = raw as Body;
  if (typeof b.model !== 'string') throw badRequest(`'model' is required and must be a string`, 'model');
  let prompt: string | undefined;
  let messages: ChatMessage[] | undefined;
  if (kind === 'completion') {
    let p = b.prompt;
    if (Array.isArray(p) && p.length === 1 && typeof p[0] === 'string') p = p[0];
    if (typeof p !== 'string') throw badRequest(`'prompt' must be a string (token-id and multi-prompt forms are not supported)`, 'prompt');
    prompt = p;
  } else {
    messages = messagesOf(b.messages);
  }
  const maxKey = kind === 'chat' && b.max_completion_tokens !== undefined ? 'max_completion_tokens' : 'max_tokens';
  const maxTokens = b[maxKey] === undefined || b[maxKey] === null ? undefined : num(b, maxKey, 1, 1e9, 16, true);
  let topLogprobs = -1;
  if (kind === 'completion' && b.logprobs !== undefined && b.logprobs !== null) topLogprobs = num(b, 'logprobs', 0, 20, 0, true);
  if (kind === 'chat' && bool(b, 'logprobs')) topLogprobs = num(b, 'top_logprobs', 0, 20, 0, true);
  if (kind === 'chat' && b.top_logprobs !== undefined && b.top_logprobs !== null && topLogprobs < 0) throw badRequest(`'top_logprobs' needs 'logprobs': true`, 'top_logprobs');
  const sampling: SamplingParams = {
    temperature: num(b, 'temperature', 0, 2, 1),
    topP: num(b, 'top_p', 0, 1, 1),
    topK: num(b, 'top_k', -1, 1e6, 0, true),
    presencePenalty: num(b, 'presence_penalty', -2, 2, 0),
    frequencyPenalty: num(b, 'frequency_penalty', -2, 2, 0),
    topLogprobs,
  };
  if (sampling.topK < 0) sampling.topK = 0;
  if (sampling.topP === 0) sampling.temperature = 0;
  const n = num(b, 'n', 1, limits.maxN, 1, true);
  const seed = b.seed === undefined || b.seed === null ? undefined : num(b, 'seed', -(2 ** 63), 2 ** 64, 0, true);
  const streamOptions = b.stream_options;
  if (streamOptions !== undefined && streamOptions !== null && (typeof streamOptions !== 'object' || Array.isArray(streamOptions))) throw badRequest(`'stream_options' must be an object`, 'stream_options');
  const stream = bool(b, 'stream');
  const includeUsage = streamOptions ? bool(streamOptions as Body, 'include_usage') : false;
  if (streamOptions && !stream) throw badRequest(`'stream_options' is only allowed with 'stream': true`, 'stream_options');
  if (b.best_of !== undefined && b.best_of !== null && b.best_of !== n) throw new ApiError(400, `'best_of' is not supported`, 'invalid_request_error', 'best_of');
  return {
    model: b.model,
    prompt,
    messages,
    maxTokens,
    sampling,
    stop: stopList(b.stop),
    seed: seed === undefined ? undefined : Number(BigInt.asUintN(32, BigInt(seed))),
    n,
    stream,
    includeUsage,
    echo: kind === 'completion' && bool(b, 'echo'),
    user: typeof b.user === 'string' ? b.user : undefined,
  };
}
