// Hostile peers against real listeners, with the attacker in its own process: 20,000 idle
// connections to the rendezvous store, and clients that trickle a byte at a time. The store
// keeps serving its job, its memory and file descriptors stay bounded (measured), and its log
// names the peer and the reason in a bounded number of lines.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { StoreClient, StoreServer } from '../../src/dist/index.js';
import { Transport } from '../../src/dist/transport.js';

const ATTACKER = fileURLToPath(new URL('../../../test/dist/fixtures/attacker.mjs', import.meta.url));
const secret = randomBytes(32);
const openFds = () => readdirSync('/proc/self/fd').length;

function attack(mode: string, port: number, n: number): { result: Promise<Record<string, number>>; kill: () => void } {
  const child = spawn(process.execPath, [ATTACKER, mode, '127.0.0.1', String(port), String(n)], { stdio: ['ignore', 'pipe', 'inherit'] });
  const result = new Promise<Record<string, number>>((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes('\n')) resolve(JSON.parse(out.split('\n')[0]!) as Record<string, number>);
    });
    child.once('exit', (code) => reject(new Error(`attacker exited with ${code} before reporting`)));
  });
  return { result, kill: () => child.kill('SIGKILL') };
}

test('20,000 idle unauthenticated connections cost the store nothing: capped, counted in the log, memory bounded', async () => {
  const log: string[] = [];
  const server = await StoreServer.start({ host: '127.0.0.1', port: 0, secret, timeoutMs: 60_000, maxPending: 64, loginTimeoutMs: 2000, onRefused: (l) => log.push(l) });
  const rank = await StoreClient.connect({ host: '127.0.0.1', port: server.port, secret, identity: 'rank 0', timeoutMs: 10_000 });
  const rssBefore = process.memoryUsage().rss;
  const fdsBefore = openFds();
  const { result, kill } = attack('flood', server.port, 20_000);
  try {
    // The job keeps using its store during the flood.
    let served = 0;
    let done = false;
    const traffic = (async () => {
      while (!done) {
        await rank.set(`k${served}`, String(served));
        assert.equal((await rank.get(`k${served}`)).toString(), String(served));
        served++;
        await new Promise((r) => setTimeout(r, 20));
      }
    })();
    const r = await result;
    done = true;
    await traffic;
    assert.equal(r.opened + r.failed, 20_000);
    console.log(`# attacker: ${JSON.stringify(r)}; store: ${server.gate.refused} refused over the cap, ${server.gate.timedOut} dropped at the deadline`);
    assert.ok(server.gate.refused >= 0.9 * r.opened, `only ${server.gate.refused} of ${r.opened} connections were refused over the cap`);
    assert.ok(server.gate.pendingCount <= 64);
    assert.ok(served > 0);
    const grew = process.memoryUsage().rss - rssBefore;
    console.log(`# store under a 20,000-connection flood: rss grew ${(grew / 2 ** 20).toFixed(1)} MiB, open fds ${fdsBefore} -> ${openFds()}, ${log.length} log lines`);
    assert.ok(grew < 64 * 2 ** 20, `the store's rss grew by ${grew} bytes`);
    assert.ok(openFds() - fdsBefore <= 64 + 16, `the store holds ${openFds() - fdsBefore} more file descriptors`);
    assert.match(log.join('\n'), /rendezvous store 127\.0\.0\.1:\d+: 64 connections are already logging in; closed \d+ more without reading them \(latest from 127\.0\.0\.1:\d+; \d+ in all since start\)/);
    assert.ok(log.length < 200, `${log.length} log lines for one flood`);
    // Once the idle ones hit the login deadline, a new rank still joins.
    kill();
    const late = await StoreClient.connect({ host: '127.0.0.1', port: server.port, secret, identity: 'rank 1', timeoutMs: 10_000 });
    assert.equal((await late.get('k0')).toString(), '0');
    late.close();
  } finally {
    kill();
    rank.close();
    await server.close();
  }
  assert.match(log.at(-1)!, /refused \d+ connections over the cap of 64 logging in/);
});

test('clients that trickle a byte at a time are dropped at the login deadline, and the log names each peer', async () => {
  const log: string[] = [];
  const server = await StoreServer.start({ host: '127.0.0.1', port: 0, secret, timeoutMs: 60_000, loginTimeoutMs: 1000, onRefused: (l) => log.push(l) });
  try {
    const r = await attack('loris', server.port, 10).result;
    assert.equal(r.closedByServer, 10);
    assert.equal(r.stillOpen, 0);
    assert.equal(log.filter((l) => /127\.0\.0\.1:\d+ did not log in within 1000 ms; dropped it/.test(l)).length, 10);
  } finally {
    await server.close();
  }
});

test("a rank's peer listener caps and times out unauthenticated connections too", async () => {
  const server = await StoreServer.start({ host: '127.0.0.1', port: 0, secret, timeoutMs: 10_000 });
  const store = await StoreClient.connect({ host: '127.0.0.1', port: server.port, secret, identity: 'rank 0', timeoutMs: 2000 });
  const warnings: string[] = [];
  const onWarning = (w: Error) => warnings.push(w.message);
  process.on('warning', onWarning);
  // Rank 0 of 2 waits for rank 1 (which never comes) while the attacker floods its TCP port.
  // The login deadline (1.5 s) is well inside the init timeout (30 s), which the test does not wait for.
  const pending = Transport.connect({ rank: 0, worldSize: 2, secret, store, bindAddr: '127.0.0.1', hostId: 'h0', timeoutMs: 30_000, loginTimeoutMs: 1500, maxFrameBytes: 1 << 20, storePrefix: 'p' });
  const outcome = pending.then(() => 'connected', (e: Error) => e.message);
  try {
    const ep = JSON.parse((await store.get('p/endpoint/0')).toString()) as { tcpPort: number };
    const { result, kill } = attack('flood', ep.tcpPort, 3000);
    const r = await result;
    assert.equal(r.opened + r.failed, 3000);
    const dropped = /rank 0's peer listener: 127\.0\.0\.1:\d+ did not log in within 1500 ms; dropped it/;
    for (let i = 0; i < 300 && !warnings.some((w) => dropped.test(w)); i++) await new Promise((res) => setTimeout(res, 100));
    kill();
    assert.match(warnings.join('\n'), /rank 0's peer listener: 64 connections are already logging in; closed \d+ more without reading them/);
    assert.match(warnings.join('\n'), dropped);
  } finally {
    process.off('warning', onWarning);
    // Losing the store ends the waiting rank's init; it closes its listeners.
    store.close();
    await server.close();
    assert.doesNotMatch(await outcome, /^connected$/);
  }
});
