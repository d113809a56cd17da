// The official `openai` client (and curl) against a real `atscale serve` process: completions,
// chat, streaming with usage, stop sequences, seeds, and errors raised as the client's classes.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import OpenAI from 'openai';
import { tinyCheckpoint } from './fixture.js';
import { startServer, type RunningServer } from './spawn-server.js';

const run = promisify(execFile);
const KEY = 'test-key-123';
let server: RunningServer;
let client: OpenAI;

before(async () => {
  server = await startServer(['--model', tinyCheckpoint('tiny'), '--slots', '4'], { ATSCALE_API_KEY: KEY });
  client = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: KEY, maxRetries: 0, timeout: 30_000 });
});
after(async () => {
  assert.equal(await server.stop(), 0, server.log());
});

test('models and completions through the openai client', async () => {
  const models = await client.models.list();
  assert.deepEqual(models.data.map((m) => m.id), ['tiny']);
  const r = await client.completions.create({ model: 'tiny', prompt: 'Hello there', max_tokens: 12, temperature: 0 });
  assert.equal(r.object, 'text_completion');
  assert.equal(r.choices.length, 1);
  assert.equal(r.choices[0]!.finish_reason, 'length');
  assert.equal(r.usage!.prompt_tokens, 11);
  assert.equal(r.usage!.completion_tokens, 12);
  assert.equal(r.choices[0]!.text.length, 12); // char tokenizer: one character per token
  const again = await client.completions.create({ model: 'tiny', prompt: 'Hello there', max_tokens: 12, temperature: 0 });
  assert.equal(again.choices[0]!.text, r.choices[0]!.text, 'greedy is deterministic');
});

test('chat completion and streaming with include_usage', async () => {
  const messages = [{ role: 'user' as const, content: 'Say hi' }];
  const r = await client.chat.completions.create({ model: 'tiny', messages, max_tokens: 8, temperature: 0 });
  assert.equal(r.choices[0]!.message.role, 'assistant');
  assert.equal(r.usage!.completion_tokens, 8);
  const stream = await client.chat.completions.create({ model: 'tiny', messages, max_tokens: 8, temperature: 0, stream: true, stream_options: { include_usage: true } });
  let text = '';
  let finish: string | null = null;
  let usage: OpenAI.CompletionUsage | undefined | null;
  let chunks = 0;
  for await (const c of stream) {
    chunks++;
    if (c.choices[0]) {
      text += c.choices[0].delta.content ?? '';
      finish = c.choices[0].finish_reason ?? finish;
    }
    if (c.usage) usage = c.usage;
  }
  assert.equal(text, r.choices[0]!.message.content, 'streamed text equals the non-streamed text');
  assert.equal(finish, 'length');
  assert.ok(chunks >= 8, `expected a chunk per token, got ${chunks}`);
  assert.deepEqual(usage, r.usage);
});

test('stop sequences end the text before the match', async () => {
  const full = (await client.completions.create({ model: 'tiny', prompt: 'Once upon a time', max_tokens: 24, temperature: 0 })).choices[0]!.text;
  const stop = full.slice(6, 8);
  const cutAt = full.indexOf(stop);
  const r = await client.completions.create({ model: 'tiny', prompt: 'Once upon a time', max_tokens: 24, temperature: 0, stop: [stop, 'never-there'] });
  assert.equal(r.choices[0]!.text, full.slice(0, cutAt));
  assert.equal(r.choices[0]!.finish_reason, 'stop');
  // Streaming never sends text that a stop sequence later takes back.
  const s = await client.completions.create({ model: 'tiny', prompt: 'Once upon a time', max_tokens: 24, temperature: 0, stop, stream: true });
  let streamed = '';
  for await (const c of s) streamed += c.choices[0]?.text ?? '';
  assert.equal(streamed, full.slice(0, cutAt));
});

test('seeds make sampling reproducible; n gives several choices; logprobs', async () => {
  // top_k is not in OpenAI's API; the client sends extra fields through as they are.
  const ask = (seed: number) => client.completions.create({ model: 'tiny', prompt: 'The ', max_tokens: 16, temperature: 1.5, top_p: 0.95, seed, n: 2, logprobs: 3, ...{ top_k: 40 } } as OpenAI.CompletionCreateParamsNonStreaming);
  const [a, b, c] = await Promise.all([ask(1), ask(1), ask(2)]);
  assert.deepEqual(a.choices.map((x) => x.text), b.choices.map((x) => x.text));
  assert.notDeepEqual(a.choices.map((x) => x.text), c.choices.map((x) => x.text));
  assert.equal(a.choices.length, 2);
  const lp = a.choices[0]!.logprobs!;
  assert.equal(lp.tokens!.length, 16);
  assert.ok(lp.token_logprobs!.every((x) => x <= 0));
  assert.ok(lp.top_logprobs!.every((t) => Object.keys(t).length === 3));
});

test('errors arrive as the client classes with the right status', async () => {
  await assert.rejects(client.completions.create({ model: 'gpt-4', prompt: 'x' }), (e: unknown) => e instanceof OpenAI.NotFoundError && /does not exist/.test(e.message));
  await assert.rejects(client.completions.create({ model: 'tiny', prompt: 'x', temperature: -1 }), (e: unknown) => e instanceof OpenAI.BadRequestError && (e as InstanceType<typeof OpenAI.BadRequestError>).param === 'temperature');
  await assert.rejects(client.completions.create({ model: 'tiny', prompt: 'x'.repeat(200) }), (e: unknown) => e instanceof OpenAI.BadRequestError && (e as InstanceType<typeof OpenAI.BadRequestError>).code === 'context_length_exceeded');
  const wrongKey = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: 'nope', maxRetries: 0 });
  await assert.rejects(wrongKey.models.list(), (e: unknown) => e instanceof OpenAI.AuthenticationError);
});

test('curl: completion, streaming, and 401 without a key', async () => {
  const body = JSON.stringify({ model: 'tiny', prompt: 'Hello there', max_tokens: 5, temperature: 0 });
  const { stdout } = await run('curl', ['-sS', '-H', `Authorization: Bearer ${KEY}`, '-H', 'Content-Type: application/json', '-d', body, `${server.url}/v1/completions`]);
  assert.equal(JSON.parse(stdout).choices[0].text.length, 5);
  const sse = (await run('curl', ['-sSN', '-H', `Authorization: Bearer ${KEY}`, '-d', JSON.stringify({ model: 'tiny', prompt: 'Hello there', max_tokens: 5, temperature: 0, stream: true }), `${server.url}/v1/completions`])).stdout;
  const events = sse.split('\n\n').filter(Boolean);
  assert.equal(events[events.length - 1], 'data: [DONE]');
  const text = events.slice(0, -1).map((e) => JSON.parse(e.slice(6)).choices[0].text).join('');
  assert.equal(text, JSON.parse(stdout).choices[0].text);
  const noKey = await run('curl', ['-s', '-o', '/dev/null', '-w', '%{http_code}', `${server.url}/v1/models`]);
  assert.equal(noKey.stdout, '401');
  const health = await run('curl', ['-s', '-w', '%{http_code}', `${server.url}/health`]);
  assert.equal(health.stdout, 'ok\n200');
});
