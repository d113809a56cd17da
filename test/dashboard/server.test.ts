// The dashboard server over real sockets: it binds loopback by default, serves only its page,
// uPlot and JSON built from the given runs (traversal attempts are 404), bounds requests,
// reports corrupt metrics lines by line number while rendering the rest, and pushes rows
// appended to metrics.jsonl to an open event stream (a half-written line waits for its end).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { appendFileSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { get } from 'node:http';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startDashboard, type Dashboard } from '../../src/dashboard/index.js';

const work = mkdtempSync(join(tmpdir(), 'atscale-dash-'));
const runA = join(work, 'runA');
const runB = join(work, 'runB');
mkdirSync(runA);
mkdirSync(join(runB, 'ranks'), { recursive: true });
const row = (iter: number, loss: number) => JSON.stringify({ iter, loss, lr: 0.001, tokens_per_s: 1000, mfu: null, grad_norm: 1, rss_mb: 100 }) + '\n';
writeFileSync(join(runA, 'metrics.jsonl'), row(0, 4) + row(1, 3.9));
writeFileSync(join(runA, 'secret.txt'), 'not for the web\n');
writeFileSync(join(runB, 'metrics.jsonl'), row(0, 4.1) + '{"iter": 1, "loss": 3.\n' + '[1,2]\n' + row(2, 3.7));
writeFileSync(join(runB, 'run.json'), JSON.stringify({ config: { nLayer: 2 }, hyper: { lr: 0.001 }, seed: 1, world: 2 }));
writeFileSync(join(runB, 'ranks', 'rank-0.jsonl'), JSON.stringify({ iter: 0, step_ms: 10, compute_ms: 8 }) + '\n');
writeFileSync(join(runB, 'ranks', 'rank-1.jsonl'), JSON.stringify({ iter: 0, step_ms: 10, compute_ms: 9.5 }) + '\n');

let d: Dashboard;
test.before(async () => {
  d = await startDashboard({ runs: [runA, runB], port: 0, pollMs: 50 });
});
test.after(() => d.close());

const host = () => new URL(d.url).host;

/** Sends `request` byte for byte (no client-side URL normalisation) and returns the status. */
function raw(request: string): Promise<{ status: number; text: string }> {
  const { port } = new URL(d.url);
  return new Promise((resolve, reject) => {
    const s = connect(Number(port), '127.0.0.1', () => s.end(request));
    let text = '';
    s.setEncoding('latin1');
    s.on('data', (c: string) => (text += c));
    s.on('end', () => resolve({ status: Number(/^HTTP\/1\.1 (\d+)/.exec(text)?.[1]), text }));
    s.on('error', reject);
    s.setTimeout(5000, () => reject(new Error(`the dashboard at ${d.url} did not answer ${JSON.stringify(request.split('\r\n')[0])} within 5 s`)));
  });
}

test('binds 127.0.0.1 by default and serves the page and uPlot from node_modules', async () => {
  assert.match(d.url, /^http:\/\/127\.0\.0\.1:\d+$/);
  const page = await fetch(d.url);
  assert.equal(page.status, 200);
  assert.match(await page.text(), /<script src="\/assets\/uplot\.js">/);
  const js = await fetch(`${d.url}/assets/uplot.js`);
  assert.equal(js.status, 200);
  assert.match(await js.text(), /uPlot/);
});

test('path traversal and any path outside the routes get 404; nothing of the run dirs is served raw', async () => {
  const paths = ['/../../etc/passwd', '/assets/../../../etc/passwd', '/%2e%2e/%2e%2e/etc/passwd', '/assets/%2e%2e%2fpackage.json', '/runA/secret.txt', '/runs/0/secret.txt', '/api/runs/../../secret.txt', '//etc/passwd', '/assets/uplot.js/..%2f..%2fsecret.txt', '/metrics.jsonl'];
  for (const p of paths) {
    const r = await raw(`GET ${p} HTTP/1.1\r\nHost: ${host()}\r\nConnection: close\r\n\r\n`);
    assert.equal(r.status, 404, `${p} answered ${r.status}`);
    assert.doesNotMatch(r.text, /not for the web|root:/);
  }
});

test('requests are bounded: GET only, no bodies, short URLs, small headers', async () => {
  assert.equal((await raw(`POST / HTTP/1.1\r\nHost: ${host()}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n`)).status, 405);
  assert.equal((await raw(`GET / HTTP/1.1\r\nHost: ${host()}\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello`)).status, 413);
  assert.equal((await raw(`GET /${'a'.repeat(5000)} HTTP/1.1\r\nHost: ${host()}\r\nConnection: close\r\n\r\n`)).status, 414);
  assert.equal((await raw(`GET / HTTP/1.1\r\nHost: ${host()}\r\nX-Big: ${'b'.repeat(20_000)}\r\nConnection: close\r\n\r\n`)).status, 431);
});

test('a Host header naming another site is refused (DNS rebinding); with a token, requests need it', async () => {
  const r = await raw('GET /api/runs HTTP/1.1\r\nHost: evil.example:80\r\nConnection: close\r\n\r\n');
  assert.equal(r.status, 421);
  assert.doesNotMatch(r.text, /runA/);
  const t = await startDashboard({ runs: [runA], port: 0, requireToken: true });
  try {
    const url = new URL(t.url);
    const token = url.searchParams.get('token')!;
    assert.match(token, /^[0-9a-f]{48}$/);
    assert.equal((await fetch(`${url.origin}/api/runs`)).status, 401);
    assert.equal((await fetch(`${url.origin}/api/runs?token=${'0'.repeat(48)}`)).status, 401);
    const page = await fetch(t.url);
    assert.equal(page.status, 200);
    const cookie = page.headers.get('set-cookie')!.split(';')[0]!;
    assert.equal(cookie, `atscale_token=${token}`);
    const api = await fetch(`${url.origin}/api/runs`, { headers: { cookie } });
    assert.equal(api.status, 200);
    assert.equal(((await api.json()) as unknown[]).length, 1);
  } finally {
    await t.close();
  }
});

test('a corrupt metrics line is reported with its line number; the other rows and the run settings are served', async () => {
  const runs = (await (await fetch(`${d.url}/api/runs`)).json()) as { info: { name: string; settings: { world: number } | null }; rows: { iter: number }[]; ranks: Record<string, unknown[]>; bad: { file: string; line: number; error: string }[] }[];
  assert.deepEqual(runs.map((r) => r.info.name), ['runA', 'runB']);
  assert.deepEqual(runs[1]!.rows.map((r) => r.iter), [0, 2]);
  assert.deepEqual(runs[1]!.bad.map((b) => [b.file, b.line]), [['metrics.jsonl', 2], ['metrics.jsonl', 3]]);
  assert.match(runs[1]!.bad[0]!.error, /not JSON/);
  assert.match(runs[1]!.bad[1]!.error, /not a metrics record/);
  assert.equal(runs[1]!.info.settings!.world, 2);
  assert.deepEqual(Object.keys(runs[1]!.ranks).sort(), ['0', '1']);
  assert.equal(runs[0]!.bad.length, 0);
});

test('rows appended to metrics.jsonl reach an open event stream; a half-written line waits for its newline', async () => {
  const events: { event: string; data: { run: number; rows: { iter: number }[] } }[] = [];
  const req = get(`${d.url}/events`);
  const res = await new Promise<import('node:http').IncomingMessage>((r) => req.on('response', r));
  assert.equal(res.headers['content-type'], 'text/event-stream');
  let buf = '';
  const waiters: (() => void)[] = [];
  res.setEncoding('utf8');
  res.on('data', (c: string) => {
    buf += c;
    let i: number;
    while ((i = buf.indexOf('\n\n')) >= 0) {
      const block = buf.slice(0, i);
      buf = buf.slice(i + 2);
      const ev = /^event: (\w+)$/m.exec(block)?.[1];
      const data = /^data: (.*)$/m.exec(block)?.[1];
      if (ev && data) events.push({ event: ev, data: JSON.parse(data) });
      waiters.splice(0).forEach((w) => w());
    }
  });
  const until = async (what: string, ok: () => boolean) => {
    const deadline = Date.now() + 10_000;
    while (!ok()) {
      assert.ok(Date.now() < deadline, `no ${what} from the dashboard's event stream within 10 s`);
      await new Promise<void>((r) => {
        waiters.push(r);
        setTimeout(r, 200);
      });
    }
  };
  await until('snapshots', () => events.filter((e) => e.event === 'snapshot').length === 2);
  const line = row(2, 3.8);
  appendFileSync(join(runA, 'metrics.jsonl'), line.slice(0, 10));
  // Each poll reads runA before runB, so once runB's new row has arrived, runA's half line
  // has been read at least once.
  appendFileSync(join(runB, 'metrics.jsonl'), row(3, 3.6));
  await until('update for runB', () => events.some((e) => e.event === 'update' && e.data.run === 1));
  const updatesOf = (run: number) => events.filter((e) => e.event === 'update' && e.data.run === run).flatMap((e) => e.data.rows.map((r) => r.iter));
  assert.deepEqual(updatesOf(0), [], 'a half-written line is not a row yet');
  appendFileSync(join(runA, 'metrics.jsonl'), line.slice(10) + row(3, 3.7));
  await until('update for runA', () => updatesOf(0).length === 2);
  assert.deepEqual(updatesOf(0), [2, 3]);
  assert.deepEqual(updatesOf(1), [3]);
  req.destroy();
});

test('atscale dashboard refuses a missing run directory or a bad port, naming it', () => {
  const cli = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));
  const missing = spawnSync(process.execPath, [cli, 'dashboard', join(work, 'nope')], { encoding: 'utf8', timeout: 30_000 });
  assert.equal(missing.status, 2);
  assert.match(missing.stderr, /run directory .*nope does not exist; pass the --out folder of atscale train/);
  const port = spawnSync(process.execPath, [cli, 'dashboard', runA, '--port', '70000'], { encoding: 'utf8', timeout: 30_000 });
  assert.equal(port.status, 2);
  assert.match(port.stderr, /--port must be an integer in 0\.\.65535, got 70000/);
});
