// The job secret and the frame bound, against real sockets: wrong-secret and unknown peers are
// refused by the store and by a rank's peer listener, and absurd frame lengths are refused by
// their header, before any payload memory is allocated.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { randomBytes } from 'node:crypto';
import { StoreClient, StoreServer, encodeHeader, FrameReader, FrameType, HEADER_BYTES, STORE_MAX_PAYLOAD } from '../../src/dist/index.js';
import { authenticateAsClient } from '../../src/dist/auth.js';
import { FramedSocket } from '../../src/dist/framed-socket.js';
import { DataReceiver } from '../../src/dist/receiver.js';
import { Transport } from '../../src/dist/transport.js';

const secret = randomBytes(32);
const wrong = randomBytes(32);

async function startStore(refusals: string[]): Promise<StoreServer> {
  return StoreServer.start({ host: '127.0.0.1', port: 0, secret, timeoutMs: 2000, onRefused: (r) => refusals.push(r) });
}

function rawConnect(port: number, path?: string): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = path ? net.connect({ path }) : net.connect({ host: '127.0.0.1', port });
    s.once('connect', () => resolve(s));
    s.once('error', reject);
  });
}

const closed = (s: net.Socket) => new Promise<void>((resolve) => (s.destroyed ? resolve() : s.once('close', () => resolve())));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

test('the store refuses a client with the wrong secret, and serves one with the right secret', async () => {
  const refusals: string[] = [];
  const server = await startStore(refusals);
  try {
    await assert.rejects(StoreClient.connect({ host: '127.0.0.1', port: server.port, secret: wrong, identity: 'rank 1', timeoutMs: 2000 }), /does not know this job's secret/);
    await sleep(50);
    assert.equal(refusals.length, 1, 'the server noticed the refused client');
    const ok = await StoreClient.connect({ host: '127.0.0.1', port: server.port, secret, identity: 'rank 0', timeoutMs: 2000 });
    await ok.set('k', 'v');
    assert.equal((await ok.get('k')).toString(), 'v');
    assert.equal(await ok.add('n', 5), 5);
    assert.equal(await ok.add('n', -2), 3);
    await assert.rejects(ok.get('never-set', 200), /did not complete within 200 ms \(waiting for another rank to set it\)/);
    ok.close();
  } finally {
    await server.close();
  }
});

test('a peer that skips the handshake gets no store service', async () => {
  const refusals: string[] = [];
  const server = await startStore(refusals);
  try {
    const s = await rawConnect(server.port);
    let answered = false;
    s.on('data', () => (answered = true));
    s.write(Buffer.concat([encodeHeader({ type: FrameType.storeRequest, length: 8, channel: 0, seq: 0, part: 0 }), Buffer.alloc(8)]));
    await closed(s);
    assert.equal(answered, false, 'no response to an unauthenticated request');
    assert.match(refusals.join('\n'), /expected 1/);
  } finally {
    await server.close();
  }
});

test('a client refuses a server that does not know the secret (no impersonating the store)', async () => {
  const refusals: string[] = [];
  const impostor = await StoreServer.start({ host: '127.0.0.1', port: 0, secret: wrong, timeoutMs: 2000, onRefused: (r) => refusals.push(r) });
  try {
    await assert.rejects(StoreClient.connect({ host: '127.0.0.1', port: impostor.port, secret, identity: 'rank 1', timeoutMs: 2000 }), /does not know this job's secret/);
  } finally {
    await impostor.close();
  }
});

test("a rank's peer listener refuses a wrong secret and an unknown rank", async () => {
  const server = await startStore([]);
  const store = await StoreClient.connect({ host: '127.0.0.1', port: server.port, secret, identity: 'rank 0', timeoutMs: 2000 });
  // World of 3 with only rank 0 present: its listeners stay open while it waits for the others.
  const pending = Transport.connect({ rank: 0, worldSize: 3, secret, store, bindAddr: '127.0.0.1', hostId: 'h0', timeoutMs: 1500, maxFrameBytes: 1 << 20, storePrefix: 'p' });
  try {
    const ep = JSON.parse((await store.get('p/endpoint/0')).toString()) as { tcpPort: number; unixPath: string };
    const attempt = async (key: Buffer, identity: string, path?: string) => {
      const link = new FramedSocket(await rawConnect(ep.tcpPort, path), 'rank 0');
      try {
        await authenticateAsClient(link, key, identity, 'rank 0', 1000);
      } finally {
        link.socket.destroy();
      }
    };
    await assert.rejects(attempt(wrong, 'rank 1'), /does not know this job's secret/);
    await assert.rejects(attempt(wrong, 'rank 1', ep.unixPath), /does not know this job's secret/);
    await assert.rejects(attempt(secret, 'rank 7'), /refused this worker: unknown peer "rank 7"/);
    await assert.rejects(pending, /ranks 1, 2 did not connect within 1500 ms during init/);
  } finally {
    await pending.catch(() => undefined);
    store.close();
    await server.close();
  }
});

test('FrameReader refuses an absurd length from the header, without allocating it', () => {
  const reader = new FrameReader(1024);
  const before = process.memoryUsage().arrayBuffers;
  const h = encodeHeader({ type: FrameType.storeRequest, length: 0xfffffff0, channel: 0, seq: 0, part: 0 });
  assert.throws(() => reader.push(h), /frame of 4294967280 bytes exceeds the bound of 1024 bytes/);
  assert.ok(process.memoryUsage().arrayBuffers - before < 1 << 20);
});

test('the store drops a connection announcing an absurd frame, before and after authentication', async () => {
  const refusals: string[] = [];
  const server = await startStore(refusals);
  try {
    const huge = (type: number) => encodeHeader({ type, length: 0xffffffff, channel: 0, seq: 0, part: 0 });
    const before = process.memoryUsage();
    const s1 = await rawConnect(server.port);
    s1.write(huge(FrameType.hello));
    await closed(s1);
    assert.match(refusals.join('\n'), /frame of 4294967295 bytes exceeds the bound of 1024 bytes/);

    const link = new FramedSocket(await rawConnect(server.port), 'store');
    await authenticateAsClient(link, secret, 'rank 0', 'store', 1000);
    link.socket.write(encodeHeader({ type: FrameType.storeRequest, length: STORE_MAX_PAYLOAD + 1, channel: 0, seq: 0, part: 0 }));
    link.socket.write(huge(FrameType.storeRequest));
    await closed(link.socket);
    const after = process.memoryUsage();
    assert.ok(after.arrayBuffers - before.arrayBuffers < 16 << 20, `arrayBuffers grew by ${after.arrayBuffers - before.arrayBuffers}`);
    assert.ok(after.rss - before.rss < 64 << 20, `rss grew by ${after.rss - before.rss}`);
  } finally {
    await server.close();
  }
});

test('the data receiver refuses a data frame over its bound by the header alone', () => {
  const errors: string[] = [];
  const r = new DataReceiver(64 << 20, 1024, () => undefined, (e) => errors.push(e.message));
  const before = process.memoryUsage().arrayBuffers;
  const into = r.nextBuffer();
  assert.ok(into.length >= HEADER_BYTES);
  into.set(encodeHeader({ type: FrameType.collective, length: 0xffffff00, channel: 0, seq: 1, part: 0 }));
  r.onRead(HEADER_BYTES);
  assert.deepEqual(errors, ['frame of 4294967040 bytes exceeds the bound of 67108864 bytes: refused before reading it']);
  assert.ok(process.memoryUsage().arrayBuffers - before < 1 << 20);
});
