// Bad input and abuse against a real `atscale serve` process, each answered with the right
// OpenAI error and the server still serving afterwards: malformed JSON, wrong types, unknown
// model, absurd parameters, prompts over the context or the body limit, 1,000 concurrent
// connections, clients that vanish mid-stream or send and read slowly, SIGTERM while busy, and
// a loopback load whose memory does not grow.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { request, Agent } from 'node:http';
import { connect } from 'node:net';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { tinyCheckpoint } from './fixture.js';
import { metric, startServer, type RunningServer } from './spawn-server.js';

let server: RunningServer;
let dir: string;

before(async () => {
  dir = tinyCheckpoint('tiny');
  server = await startServer(['--model', dir, '--slots', '4', '--max-queue', '64', '--max-body-bytes', '4096']);
});
after(async () => {
  assert.equal(await server.stop(), 0, server.log());
});

async function post(path: string, body: string | object, headers: Record<string, string> = {}): Promise<{ status: number; json: any; headers: Headers }> {
  const r = await fetch(`${server.url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: typeof body === 'string' ? body : JSON.stringify(body) });
  const text = await r.text();
  return { status: r.status, json: text.startsWith('{') ? JSON.parse(text) : text, headers: r.headers };
}

async function stillServing(): Promise<void> {
  const r = await post('/v1/completions', { model: 'tiny', prompt: 'ok', max_tokens: 2, temperature: 0 });
  assert.equal(r.status, 200, JSON.stringify(r.json));
}

test('malformed JSON, wrong types, unknown model and routes, absurd parameters', async () => {
  const cases: [string, string | object, number, RegExp, string | null][] = [
    ['/v1/completions', '{"model": "tiny", "prompt": ', 400, /not valid JSON/, null],
    ['/v1/completions', '[1, 2]', 400, /JSON object/, null],
    ['/v1/completions', { model: 'tiny', prompt: 42 }, 400, /'prompt' must be a string/, 'prompt'],
    ['/v1/completions', { model: 7, prompt: 'x' }, 400, /'model' is required/, 'model'],
    ['/v1/completions', { model: 'llama', prompt: 'x' }, 404, /does not exist/, 'model'],
    ['/v1/chat/completions', { model: 'tiny', messages: 'hi' }, 400, /'messages' must be/, 'messages'],
    ['/v1/chat/completions', { model: 'tiny', messages: [{ role: 'wizard', content: 'x' }] }, 400, /role must be/, 'messages[0].role'],
    ['/v1/completions', { model: 'tiny', prompt: 'x', max_tokens: -5 }, 400, /'max_tokens' must be between 1/, 'max_tokens'],
    ['/v1/completions', { model: 'tiny', prompt: 'x', max_tokens: 1e12 }, 400, /'max_tokens' must be between/, 'max_tokens'],
    ['/v1/completions', { model: 'tiny', prompt: 'x', max_tokens: 1000 }, 400, /Lower max_tokens to at most 63/, 'max_tokens'],
    ['/v1/completions', { model: 'tiny', prompt: 'x', n: 1000 }, 400, /'n' must be between 1 and 4/, 'n'],
    ['/v1/completions', { model: 'tiny', prompt: 'x', temperature: 1e9 }, 400, /'temperature'/, 'temperature'],
    ['/v1/completions', { model: 'tiny', prompt: 'x', top_p: 'all' }, 400, /'top_p' must be a number/, 'top_p'],
    ['/v1/completions', { model: 'tiny', prompt: 'x', stop: [1, 2] }, 400, /'stop' must be/, 'stop'],
    ['/v1/completions', { model: 'tiny', prompt: 'x', logprobs: 1000 }, 400, /'logprobs'/, 'logprobs'],
    ['/v1/completions', { model: 'tiny', prompt: 'x', stream: 'yes' }, 400, /'stream' must be true or false/, 'stream'],
    ['/v1/completions', { model: 'tiny', prompt: 'x'.repeat(100) }, 400, /maximum context length is 64 tokens/, 'prompt'],
    ['/v1/completions', { model: 'tiny', prompt: 'x'.repeat(5000) }, 413, /over 4096 bytes/, null],
    ['/v1/embeddings', { model: 'tiny', input: 'x' }, 404, /no route/, null],
  ];
  for (const [path, body, status, msg, param] of cases) {
    const r = await post(path, body);
    assert.equal(r.status, status, `${JSON.stringify(body).slice(0, 80)} -> ${JSON.stringify(r.json)}`);
    assert.match(r.json.error.message, msg);
    assert.equal(r.json.error.param, param);
    assert.equal(typeof r.json.error.type, 'string');
  }
  const get = await fetch(`${server.url}/v1/completions`);
  assert.equal(get.status, 404);
  await stillServing();
});

test('1,000 concurrent connections: each is served or refused with 429 and retry-after', async () => {
  const agent = new Agent({ keepAlive: false, maxSockets: Infinity });
  const body = JSON.stringify({ model: 'tiny', prompt: 'Hi', max_tokens: 2, temperature: 0 });
  const one = () =>
    new Promise<{ status: number; retry?: string }>((resolve, reject) => {
      const req = request(`${server.url}/v1/completions`, { method: 'POST', agent, headers: { 'content-type': 'application/json' } }, (res) => {
        res.resume();
        res.on('end', () => resolve({ status: res.statusCode!, retry: res.headers['retry-after'] as string | undefined }));
      });
      req.on('error', reject);
      req.end(body);
    });
  const results = await Promise.all(Array.from({ length: 1000 }, one));
  const ok = results.filter((r) => r.status === 200).length;
  const limited = results.filter((r) => r.status === 429);
  assert.equal(ok + limited.length, 1000, `unexpected statuses: ${[...new Set(results.map((r) => r.status))]}`);
  assert.ok(ok >= 64, `at least the queue's worth were served, got ${ok}`);
  assert.ok(limited.every((r) => r.retry === '1'));
  agent.destroy();
  assert.equal(await metric(server.url, 'atscale_requests_running'), 0);
  await stillServing();
});

async function untilMetric(name: string, want: number): Promise<void> {
  for (let i = 0; i < 200; i++) {
    if ((await metric(server.url, name)) === want) return;
    await new Promise((r) => setTimeout(r, 25));
  }
  assert.equal(await metric(server.url, name), want, `${name} never reached ${want}`);
}

test('a client that disconnects mid-stream gives its slot back', async () => {
  const ctrl = new AbortController();
  const r = await fetch(`${server.url}/v1/completions`, { method: 'POST', signal: ctrl.signal, body: JSON.stringify({ model: 'tiny', prompt: 'Hi', max_tokens: 60, stream: true }) });
  const reader = r.body!.getReader();
  await reader.read(); // the first event arrived: the sequence holds a slot
  assert.equal(await metric(server.url, 'atscale_requests_running'), 1);
  ctrl.abort();
  await untilMetric('atscale_requests_running', 0);
  await stillServing();
});

test('slow clients: a trickled body times out with 408; a reader that pauses does not block others', async () => {
  const strict = await startServer(['--model', dir, '--receive-timeout', '1']);
  const status = await new Promise<string>((resolve) => {
    const sock = connect(Number(new URL(strict.url).port), '127.0.0.1', () => {
      sock.write('POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"mod');
    });
    let got = '';
    sock.on('data', (d) => (got += d.toString()));
    sock.on('close', () => resolve(got.split('\r\n')[0]!));
  });
  assert.match(status, /^HTTP\/1.1 408/);
  assert.equal(await strict.stop(), 0, strict.log());
  // A streaming client that stops reading: the server buffers its few events and moves on.
  const paused = await fetch(`${server.url}/v1/completions`, { method: 'POST', body: JSON.stringify({ model: 'tiny', prompt: 'Hi', max_tokens: 40, stream: true }) });
  await stillServing();
  await untilMetric('atscale_requests_running', 0);
  await paused.body!.cancel();
});

test('loopback load: 1,000 requests and the resident memory does not keep growing', async () => {
  const burst = async (count: number) => {
    let next = 0;
    await Promise.all(Array.from({ length: 16 }, async () => {
      while (next++ < count) {
        const r = await post('/v1/completions', { model: 'tiny', prompt: 'Hello', max_tokens: 2, temperature: 0.5, seed: next });
        assert.equal(r.status, 200);
      }
    }));
  };
  await burst(300); // warm-up: sessions, pools and arenas reach their steady size
  const before = await metric(server.url, 'process_resident_memory_bytes');
  await burst(700);
  const afterRss = await metric(server.url, 'process_resident_memory_bytes');
  assert.ok(afterRss - before < 32 * 2 ** 20, `RSS grew by ${((afterRss - before) / 2 ** 20).toFixed(1)} MiB over 700 requests`);
});

test('SIGTERM: requests in flight finish, then the process exits 0', async () => {
  // (With one shared copy of the weights, which the startup line says.)
  const s = await startServer(['--model', dir, '--slots', '2', '--pack-weights', 'no']);
  assert.match(s.log(), /one shared copy of the weights/);
  const r = fetch(`${s.url}/v1/completions`, { method: 'POST', body: JSON.stringify({ model: 'tiny', prompt: 'Hi', max_tokens: 40, temperature: 0 }) });
  await new Promise((res) => setTimeout(res, 100));
  s.proc.kill('SIGTERM');
  const done = await r;
  assert.equal(done.status, 200);
  assert.equal((await done.json()).usage.completion_tokens, 40);
  // The one SIGTERM drains and exits. A second (stop()) could land while the process was
  // already tearing down, past Node's signal handling, and kill it: exit code null, 1 run in 5.
  const code = await Promise.race([s.exited, new Promise<string>((res) => setTimeout(() => res('atscale serve did not exit within 60 s of SIGTERM'), 60_000).unref())]);
  assert.equal(code, 0, s.log());
  assert.match(s.log(), /drained; exiting/);
});

test('a bad --pack-weights is refused, naming the flag and its choices', () => {
  const r = spawnSync(process.execPath, [fileURLToPath(new URL('../../src/cli/main.js', import.meta.url)), 'serve', '--model', dir, '--pack-weights', 'maybe'], { encoding: 'utf8', timeout: 60_000 });
  assert.notEqual(r.status, 0);
  assert.match(r.stderr, /--pack-weights/);
  assert.match(r.stderr, /auto/);
});
