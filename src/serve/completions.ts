// One completion or chat request end to end: tokenize, check it fits the context, queue one
// sequence per choice in the batcher, and answer as one JSON body or as server-sent events in
// OpenAI's shapes. A client that goes away or a request that runs out of time cancels its
// sequences, which frees their slots before the next step.
import type { ServerResponse } from 'node:http';
import { randomBytes } from 'node:crypto';
import type { Batcher, FinishReason, Sequence } from './batcher.js';
import { ChoiceText } from './choice-text.js';
import { ApiError, badRequest } from './errors.js';
import type { ServedModel } from './load.js';
import type { ServerMetrics } from './metrics.js';
import type { GenerationRequest } from './requests.js';
import { requestRng, type TokenChoice } from './sampling.js';

export interface RunContext {
  served: ServedModel;
  batcher: Batcher;
  metrics: ServerMetrics;
  /** Most sequences allowed to wait for a slot; more are refused with 429. */
  maxQueue: number;
  requestTimeoutMs: number;
}

interface ChoiceState {
  text: ChoiceText;
  tokens: TokenChoice[];
  /** Tokens not yet reported in a stream chunk's logprobs. */
  unsentTokens: TokenChoice[];
  finish?: FinishReason;
  /** The model produced an end-of-text token. */
  ended?: boolean;
  lastAt: number;
}

export async function runGeneration(ctx: RunContext, req: GenerationRequest, kind: 'completion' | 'chat', res: ServerResponse): Promise<void> {
  const { served, batcher, metrics } = ctx;
  const T = served.model.dims.blockSize;
  const promptText = kind === 'chat' ? served.renderChat(req.messages!) : req.prompt!;
  const prompt = Array.from(served.tokenizer.encode(promptText));
  if (prompt.length === 0) throw badRequest(`the prompt is empty after tokenization; send at least one character`, kind === 'chat' ? 'messages' : 'prompt');
  if (prompt.length >= T) throw badRequest(`this model's maximum context length is ${T} tokens; the prompt has ${prompt.length} tokens, which leaves no room to generate. Shorten the prompt.`, kind === 'chat' ? 'messages' : 'prompt', 'context_length_exceeded');
  const room = T - prompt.length;
  const maxTokens = req.maxTokens ?? (kind === 'chat' ? room : Math.min(16, room));
  if (maxTokens > room) throw badRequest(`this model's maximum context length is ${T} tokens; the prompt has ${prompt.length} and max_tokens asks for ${maxTokens}. Lower max_tokens to at most ${room}.`, 'max_tokens', 'context_length_exceeded');
  if (batcher.queued + req.n > ctx.maxQueue) throw new ApiError(429, `the server is at capacity (${batcher.running} running, ${batcher.queued} waiting); retry shortly`, 'rate_limit_error', null, 'rate_limit_exceeded', 1);

  const arrived = performance.now();
  const id = `${kind === 'chat' ? 'chatcmpl' : 'cmpl'}-${randomBytes(12).toString('hex')}`;
  const created = Math.floor(Date.now() / 1000);
  const object = kind === 'chat' ? (req.stream ? 'chat.completion.chunk' : 'chat.completion') : 'text_completion';
  const wantLogprobs = req.sampling.topLogprobs >= 0;
  const tokenText = (t: number) => served.tokenizer.decode([t]);
  const choices: ChoiceState[] = Array.from({ length: req.n }, () => ({ text: new ChoiceText(served.tokenizer, req.stop), tokens: [], unsentTokens: [], lastAt: arrived }));
  let firstToken = true;
  let ended = false;

  const logprobsOf = (toks: TokenChoice[], offset0: number) => {
    if (!wantLogprobs) return null;
    if (kind === 'chat') {
      const entry = (tid: number, lp: number) => ({ token: tokenText(tid), logprob: lp, bytes: [...Buffer.from(tokenText(tid))] });
      return { content: toks.map((t) => ({ ...entry(t.id, t.logprob!), top_logprobs: (t.top ?? []).map((x) => entry(x.id, x.logprob)) })) };
    }
    let off = offset0;
    const offsets = toks.map((t) => {
      const o = off;
      off += tokenText(t.id).length;
      return o;
    });
    return { tokens: toks.map((t) => tokenText(t.id)), token_logprobs: toks.map((t) => t.logprob!), top_logprobs: toks.map((t) => Object.fromEntries((t.top ?? []).map((x) => [tokenText(x.id), x.logprob]))), text_offset: offsets };
  };
  const usage = () => {
    const completion = choices.reduce((n, c) => n + c.tokens.length, 0);
    return { prompt_tokens: prompt.length, completion_tokens: completion, total_tokens: prompt.length + completion };
  };
  const sse = (obj: object) => {
    if (!res.writableEnded && !res.destroyed) res.write(`data: ${JSON.stringify(obj)}\n\n`);
  };
  const streamChunk = (index: number, text: string, finish: FinishReason | null, logprobs: object | null) => {
    const choice = kind === 'chat' ? { index, delta: finish && !text ? {} : { content: text }, logprobs, finish_reason: finish } : { index, text, logprobs, finish_reason: finish };
    sse({ id, object, created, model: served.id, choices: [choice], ...(req.includeUsage ? { usage: null } : {}) });
  };

  if (req.stream) {
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', connection: 'keep-alive' });
    if (kind === 'chat') for (let i = 0; i < req.n; i++) sse({ id, object, created, model: served.id, choices: [{ index: i, delta: { role: 'assistant', content: '' }, logprobs: null, finish_reason: null }], ...(req.includeUsage ? { usage: null } : {}) });
  }

  const echoText = req.echo ? promptText : '';
  if (req.stream && echoText && kind === 'completion') for (let i = 0; i < req.n; i++) streamChunk(i, echoText, null, null);
  let failure: Error | undefined;
  let timedOut = false;
  const seqs: Sequence[] = [];
  const cancelAll = () => seqs.forEach((s) => (s.cancelled = true));
  // The response closing before we end it means the client went away.
  res.on('close', () => {
    if (!ended) cancelAll();
  });

  // Answers once every choice has ended.
  const respond = () => {
    ended = true;
    metrics.e2e.observe((performance.now() - arrived) / 1000);
    if (res.destroyed || res.writableEnded) return;
    if (failure) {
      const e = failure instanceof ApiError ? failure : new ApiError(500, `generation failed: ${failure.message}`, 'server_error');
      metrics.countRequest(e.status);
      if (req.stream) {
        sse(e.body());
        res.end('data: [DONE]\n\n');
      } else {
        res.writeHead(e.status, { 'content-type': 'application/json', ...(e.retryAfter ? { 'retry-after': String(e.retryAfter) } : {}) });
        res.end(JSON.stringify(e.body()));
      }
      return;
    }
    metrics.countRequest(200);
    if (req.stream) {
      if (req.includeUsage) sse({ id, object, created, model: served.id, choices: [], usage: usage() });
      res.end('data: [DONE]\n\n');
      return;
    }
    const out = choices.map((c, index) => {
      const finishReason = c.finish === 'stop' ? 'stop' : 'length';
      if (kind === 'chat') return { index, message: { role: 'assistant', content: c.text.value }, logprobs: logprobsOf(c.tokens, 0), finish_reason: finishReason };
      return { index, text: echoText + c.text.value, logprobs: logprobsOf(c.tokens, echoText.length), finish_reason: finishReason };
    });
    const body = JSON.stringify({ id, object, created, model: served.id, choices: out, usage: usage(), system_fingerprint: null });
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
    res.end(body);
  };

  await new Promise<void>((resolveAll) => {
    let open = req.n;
    const timer = setTimeout(() => {
      timedOut = true;
      cancelAll();
    }, ctx.requestTimeoutMs);
    choices.forEach((c, index) =>
      seqs.push({
        prompt,
        maxTokens,
        sampling: req.sampling,
        rng: requestRng(req.seed === undefined ? undefined : req.seed + index),
        onToken: (t: TokenChoice) => {
          const now = performance.now();
          if (firstToken) metrics.ttft.observe((now - arrived) / 1000);
          else if (c.tokens.length > 0) metrics.itl.observe((now - c.lastAt) / 1000);
          firstToken = false;
          c.lastAt = now;
          c.tokens.push(t);
          if (served.endIds.includes(t.id)) {
            c.ended = true;
            return false;
          }
          c.unsentTokens.push(t);
          const delta = c.text.push(t.id);
          if (req.stream && (delta || c.text.stopped)) {
            streamChunk(index, delta, null, logprobsOf(c.unsentTokens, c.text.value.length - delta.length));
            c.unsentTokens = [];
          }
          return !c.text.stopped;
        },
        onDone: (reason: FinishReason, error?: Error) => {
          c.finish = c.text.stopped || c.ended ? 'stop' : reason;
          if (error) failure = error;
          if (req.stream && reason !== 'cancelled' && !error) {
            const rest = c.text.flush();
            streamChunk(index, rest, c.finish, rest || c.unsentTokens.length ? logprobsOf(c.unsentTokens, c.text.value.length - rest.length) : null);
          }
          if (--open > 0) return;
          clearTimeout(timer);
          if (timedOut) failure = new ApiError(503, `the request ran out of time after ${ctx.requestTimeoutMs} ms (waiting for a KV-cache slot or generating); retry, or ask for fewer tokens`, 'service_unavailable', null, 'timeout', 1);
          respond();
          resolveAll();
        },
      }),
    );
    for (const s of seqs) batcher.submit(s);
  });
}
