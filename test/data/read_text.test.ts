import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { createReadStream, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import { readText } from '../../src/data/read_text.js';

const TEXT = 'First Citizen:\nBefore we proceed any further, hear me speak. 😀\n'.repeat(200);

async function withServer(dir: string, fn: (base: string) => Promise<void>): Promise<void> {
  const server: Server = createServer((req, res) => {
    const url = req.url ?? '/';
    if (url === '/corpus.txt') {
      res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8' });
      createReadStream(join(dir, 'corpus.txt')).pipe(res);
    } else if (url.startsWith('/hop/')) {
      const n = Number(url.slice(5));
      res.writeHead(302, { location: n > 0 ? `/hop/${n - 1}` : '/corpus.txt' });
      res.end();
    } else if (url === '/loop') {
      res.writeHead(301, { location: '/loop' });
      res.end();
    } else if (url === '/empty') {
      res.writeHead(200, { 'content-length': '0' });
      res.end();
    } else if (url === '/stall') {
      res.writeHead(200);
      res.write('partial'); // never ends
    } else {
      res.writeHead(404);
      res.end('nope');
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  try {
    await fn(`http://127.0.0.1:${port}`);
  } finally {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  }
}

test('readText: file path and http URL give the same text; redirects are followed', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'atscale-read-'));
  try {
    writeFileSync(join(dir, 'corpus.txt'), TEXT);
    assert.equal(await readText(join(dir, 'corpus.txt')), TEXT);
    await withServer(dir, async (base) => {
      assert.equal(await readText(`${base}/corpus.txt`), TEXT);
      assert.equal(await readText(`${base}/hop/3`), TEXT);
      await assert.rejects(readText(`${base}/hop/3`, { maxRedirects: 2 }), /too many redirects \(more than 2\)/);
      await assert.rejects(readText(`${base}/loop`), /too many redirects/);
      await assert.rejects(readText(`${base}/missing.txt`), /data URL http:\/\/127\.0\.0\.1:\d+\/missing\.txt answered HTTP 404 Not Found/);
      await assert.rejects(readText(`${base}/empty`), /is empty/);
      await assert.rejects(readText(`${base}/corpus.txt`, { maxBytes: 1000 }), /over the limit of 1000|more than the limit of 1000/);
      const t0 = Date.now();
      await assert.rejects(readText(`${base}/stall`, { timeoutMs: 300 }), /timed out after 300 ms waiting for 127\.0\.0\.1:\d+/);
      assert.ok(Date.now() - t0 < 3000);
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('readText: missing file, empty file, non-UTF-8 and refused connection are clear errors', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'atscale-read-'));
  try {
    await assert.rejects(readText(join(dir, 'nope.txt')), {
      message: `data file ${join(dir, 'nope.txt')} not found; pass --data PATH or a URL`,
    });
    writeFileSync(join(dir, 'empty.txt'), '');
    await assert.rejects(readText(join(dir, 'empty.txt')), /empty\.txt is empty; a corpus needs at least some text/);
    writeFileSync(join(dir, 'latin1.txt'), Buffer.from([0x63, 0x61, 0x66, 0xe9]));
    await assert.rejects(readText(join(dir, 'latin1.txt')), /is not valid UTF-8 text/);
    await assert.rejects(readText(dir), /is not a file/);
    // A port nobody listens on: grab a free one, then close it.
    const probe = createServer();
    await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
    const { port } = probe.address() as AddressInfo;
    await new Promise((resolve) => probe.close(resolve));
    await assert.rejects(readText(`http://127.0.0.1:${port}/x`, { timeoutMs: 2000 }), /ECONNREFUSED/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
