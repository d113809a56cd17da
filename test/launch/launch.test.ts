// `atscale launch` with real worker processes: the environment each rank gets, and what
// happens when a rank fails or the launcher is told to stop.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { rootCauseFirst } from '../../src/launch/supervisor.js';
import { FIXTURES, collect, envLines, isAlive, launch, startLauncher, waitFor } from './helpers.js';

const ENV_WORKER = join(FIXTURES, 'env-worker.mjs');
const FAULT_WORKER = join(FIXTURES, 'fault-worker.mjs');

function tempDir(): string {
  return mkdtempSync(join(tmpdir(), 'atscale-launch-'));
}

for (const n of [2, 4]) {
  test(`${n} workers get torchrun's variables and one shared secret that the launcher never prints`, async () => {
    const dir = tempDir();
    try {
      const r = await launch(['--nproc-per-node', String(n), '--timeout-ms', '1234', '--', process.execPath, ENV_WORKER], { DUMP_SECRET_DIR: dir });
      assert.equal(r.code, 0, r.stderr);
      const envs = envLines(r.stdout);
      assert.deepEqual([...envs.keys()].sort(), Array.from({ length: n }, (_, i) => i));
      const ports = new Set<unknown>();
      for (const [rank, e] of envs) {
        assert.equal(e.RANK, String(rank));
        assert.equal(e.WORLD_SIZE, String(n));
        assert.equal(e.LOCAL_RANK, String(rank));
        assert.equal(e.LOCAL_WORLD_SIZE, String(n));
        assert.equal(e.MASTER_ADDR, '127.0.0.1');
        assert.equal(e.ATSCALE_TIMEOUT_MS, '1234');
        assert.equal(e.secretLength, 64);
        ports.add(e.MASTER_PORT);
      }
      assert.equal(ports.size, 1, 'every rank must get the same MASTER_PORT');
      assert.ok(Number([...ports][0]) > 0);
      const secret = readFileSync(join(dir, 'secret-0'), 'utf8');
      assert.match(secret, /^[0-9a-f]{64}$/);
      for (let rank = 1; rank < n; rank++) assert.equal(readFileSync(join(dir, `secret-${rank}`), 'utf8'), secret);
      assert.ok(!r.stdout.includes(secret) && !r.stderr.includes(secret), 'the launcher printed the job secret');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
}

test('two launches get different secrets', async () => {
  const shas = [];
  for (let i = 0; i < 2; i++) {
    const r = await launch(['--nproc-per-node', '1', '--', process.execPath, ENV_WORKER]);
    shas.push(envLines(r.stdout).get(0)?.secretSha256);
  }
  assert.notEqual(shas[0], shas[1]);
});

test('node 1 of a 2-node job starts global ranks 2 and 3 with the shared secret from the environment', async () => {
  const secret = 'ab'.repeat(32);
  const r = await launch(['--nnodes', '2', '--node-rank', '1', '--master-addr', '127.0.0.1', '--master-port', '29999', '--nproc-per-node', '2', '--', process.execPath, ENV_WORKER], { ATSCALE_JOB_SECRET: secret });
  assert.equal(r.code, 0, r.stderr);
  const envs = envLines(r.stdout);
  assert.deepEqual([...envs.keys()].sort(), [2, 3]);
  for (const [rank, e] of envs) {
    assert.equal(e.WORLD_SIZE, '4');
    assert.equal(e.LOCAL_RANK, String(rank - 2));
    assert.equal(e.GROUP_RANK, '1');
    assert.equal(e.MASTER_PORT, '29999');
    assert.equal(e.secretSha256, createHash('sha256').update(secret).digest('hex'));
  }
  assert.ok(!r.stdout.includes(secret) && !r.stderr.includes(secret));
});

test('a multi-node job reads the secret from --secret-file, and refuses to start without one', async () => {
  const dir = tempDir();
  try {
    const secret = 'cd'.repeat(32);
    writeFileSync(join(dir, 'secret'), secret + '\n', { mode: 0o600 });
    const node = ['--nnodes', '2', '--node-rank', '0', '--master-addr', '127.0.0.1', '--nproc-per-node', '1'];
    const ok = await launch([...node, '--secret-file', join(dir, 'secret'), '--', process.execPath, ENV_WORKER]);
    assert.equal(ok.code, 0, ok.stderr);
    assert.equal(envLines(ok.stdout).get(0)?.secretSha256, createHash('sha256').update(secret).digest('hex'));
    const refused = await launch([...node, '--', process.execPath, ENV_WORKER]);
    assert.equal(refused.code, 2);
    assert.match(refused.stderr, /needs a job secret shared by every node/);
    assert.match(refused.stderr, /head -c 32 \/dev\/urandom/);
    assert.equal(refused.stdout, '', 'no worker may start without a secret');
    const weak = await launch([...node, '--', process.execPath, ENV_WORKER], { ATSCALE_JOB_SECRET: 'hunter2' });
    assert.equal(weak.code, 2);
    assert.match(weak.stderr, /at least 32 hex digits/);
    assert.ok(!weak.stderr.includes('hunter2'));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

/** A failed test must not leave its processes behind either. */
function killLeftovers(pids: number[]): void {
  for (const p of pids) if (isAlive(p)) process.kill(p, 'SIGKILL');
}

async function pidsOf(dir: string, world: number): Promise<number[]> {
  const pids: number[] = [];
  for (let r = 0; r < world; r++) {
    const p = JSON.parse(readFileSync(join(dir, `pids-${r}`), 'utf8')) as { worker: number; grandchild: number };
    pids.push(p.worker, p.grandchild);
  }
  return pids;
}

for (const [mode, expected] of [['exit3', /rank 2 \(pid \d+\) exited with status 3; stopped the other 3 workers/], ['sigkill', /rank 2 \(pid \d+\) was killed by signal SIGKILL; stopped the other 3 workers/]] as const) {
  test(`a worker that fails (${mode}) stops the others, grandchildren included, and the launcher names its rank`, async () => {
    const dir = tempDir();
    let pids: number[] = [];
    try {
      const t0 = Date.now();
      const r = await launch(['--nproc-per-node', '4', '--stop-grace-ms', '500', '--', process.execPath, FAULT_WORKER], { PID_DIR: dir, FAULT_RANK: '2', FAULT_MODE: mode, IGNORE_SIGTERM: mode === 'sigkill' ? '1' : '0' });
      assert.notEqual(r.code, 0);
      assert.equal(r.code, mode === 'exit3' ? 3 : 128 + 9);
      assert.match(r.stderr, expected);
      assert.ok(Date.now() - t0 < 10_000);
      pids = await pidsOf(dir, 4);
      assert.equal(pids.length, 8);
      // The launcher has exited, so anything still alive now is an orphan.
      await waitFor('killed processes to be reaped', () => pids.every((p) => !isAlive(p)), 3000).catch(() => {});
      assert.deepEqual(pids.filter(isAlive), [], 'processes left running after the launcher exited');
    } finally {
      killLeftovers(pids);
      rmSync(dir, { recursive: true, force: true });
    }
  });
}

test('of failures seen together, a death by signal is named as the cause, else the first seen', () => {
  const peer = { rank: 0, pid: 10, code: 1, signal: null };
  const killed = { rank: 1, pid: 11, code: null, signal: 'SIGKILL' as const };
  const later = { rank: 2, pid: 12, code: 2, signal: null };
  assert.deepEqual(rootCauseFirst([peer, killed, later]).map((f) => f.rank), [1, 0, 2]);
  assert.deepEqual(rootCauseFirst([later, peer]).map((f) => f.rank), [2, 0]);
});

test('when a peer fails because a rank died, the launcher names the dead rank as the cause', async () => {
  const dir = tempDir();
  let pids: number[] = [];
  try {
    const r = await launch(['--nproc-per-node', '3', '--stop-grace-ms', '500', '--', process.execPath, FAULT_WORKER], { PID_DIR: dir, FAULT_RANK: '1', FAULT_MODE: 'sigkill', WATCHER_RANK: '0' });
    pids = await pidsOf(dir, 3);
    assert.equal(r.code, 137);
    // Rank 0 may or may not exit before the launcher sees rank 1's death; either way rank 1 is named first.
    assert.match(r.stderr, /atscale launch: rank 1 \(pid \d+\) was killed by signal SIGKILL(; also failed: rank 0 exited with status 1)?; stopped the other (1 worker|2 workers)\n/);
    await waitFor('killed processes to be reaped', () => pids.every((p) => !isAlive(p)), 3000).catch(() => {});
    assert.deepEqual(pids.filter(isAlive), []);
  } finally {
    killLeftovers(pids);
    rmSync(dir, { recursive: true, force: true });
  }
});

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  test(`${signal} to the launcher is forwarded, escalates to SIGKILL after the grace period, and leaves nothing running`, async () => {
    const dir = tempDir();
    let pids: number[] = [];
    try {
      const child = startLauncher(['--nproc-per-node', '2', '--stop-grace-ms', '300', '--', process.execPath, FAULT_WORKER], { PID_DIR: dir, FAULT_RANK: 'none', IGNORE_SIGTERM: signal === 'SIGTERM' ? '1' : '0' });
      const done = collect(child);
      await waitFor('both workers to start', () => existsSync(join(dir, 'pids-0')) && existsSync(join(dir, 'pids-1')));
      pids = await pidsOf(dir, 2);
      child.kill(signal);
      const r = await done;
      assert.equal(r.code, signal === 'SIGINT' ? 130 : 143, r.stderr);
      assert.match(r.stderr, new RegExp(`received ${signal}: stopped 2 workers`));
      if (signal === 'SIGTERM') assert.match(r.stdout, /\[rank \d\] ignoring SIGTERM/);
      await waitFor('killed processes to be reaped', () => pids.every((p) => !isAlive(p)), 3000).catch(() => {});
      assert.deepEqual(pids.filter(isAlive), []);
    } finally {
      killLeftovers(pids);
      rmSync(dir, { recursive: true, force: true });
    }
  });
}

test('output is forwarded line by line with a rank prefix, partial last lines included', async () => {
  const r = await launch(['--nproc-per-node', '2', '--', process.execPath, '-e', 'process.stdout.write("a\\nb"); process.stderr.write("err\\n")']);
  assert.equal(r.code, 0);
  for (const rank of [0, 1]) {
    assert.match(r.stdout, new RegExp(`^\\[rank ${rank}\\] a$`, 'm'));
    assert.match(r.stdout, new RegExp(`^\\[rank ${rank}\\] b$`, 'm'));
    assert.match(r.stderr, new RegExp(`^\\[rank ${rank}\\] err$`, 'm'));
  }
});

test('a reader that goes away (| head) neither crashes the launcher nor blocks its workers', async () => {
  const child = startLauncher(['--nproc-per-node', '4', '--', process.execPath, '-e', 'for (let i = 0; i < 50000; i++) console.log("line " + i)']);
  child.stdout!.once('data', () => child.stdout!.destroy());
  const code = await new Promise<number | null>((resolve, reject) => {
    const timer = setTimeout(() => (child.kill('SIGTERM'), reject(new Error('the launcher hung after its reader went away'))), 30_000);
    child.once('close', (c) => (clearTimeout(timer), resolve(c)));
  });
  assert.equal(code, 0);
});

test('a worker command that does not exist is reported, not hung on', async () => {
  const r = await launch(['--nproc-per-node', '2', '--', 'atscale-no-such-command']);
  assert.equal(r.code, 127);
  assert.match(r.stderr, /could not start 'atscale-no-such-command': ENOENT/);
});

const BAD: [string[], RegExp][] = [
  [['--nproc-per-node', '0', '--', 'true'], /--nproc-per-node must be a positive integer, got 0/],
  [['--nproc-per-node', '1.5', '--', 'true'], /--nproc-per-node must be a positive integer, got 1.5/],
  [['--nproc-per-node', 'two', '--', 'true'], /--nproc-per-node expects a number, got 'two'/],
  [['--nnodes', '2', '--node-rank', '2', '--master-addr', 'h', '--', 'true'], /--node-rank 2 is out of range for --nnodes 2: node ranks run from 0 to 1/],
  [['--nnodes', '2', '--master-addr', 'h', '--', 'true'], /--nnodes 2 needs --node-rank/],
  [['--nnodes', '2', '--node-rank', '1', '--', 'true'], /needs --master-addr/],
  [['--nnodes', '3:2', '--', 'true'], /--nnodes 3:2: need 1 <= MIN <= MAX <= 4096/],
  [['--nnodes', '1:two', '--', 'true'], /--nnodes must be a node count N or a range MIN:MAX \(e.g. 1:4\), got '1:two'/],
  [['--nnodes', '1:2', '--node-rank', '0', '--', 'true'], /--nnodes 1:2 needs --master-addr: the address of the node started with --node-rank 0, which hosts the rendezvous/],
  [['--nnodes', '1:2', '--emit', 'slurm', '--', 'true'], /--emit takes a node count N for --nnodes, not a range/],
  [['--master-port', '70000', '--', 'true'], /--master-port must be an integer from 1 to 65535/],
  [['--timeout-ms', '-5', '--', 'true'], /--timeout-ms must be a positive integer/],
  [['--nproc-per-node', '2'], /missing the worker command after --/],
  [['--nproc-per-node', '2', '--'], /missing the worker command after --/],
  [['node', 'train.js'], /unexpected argument 'node': the worker command goes after --/],
  [['--nprocs', '2', '--', 'true'], /unknown flag --nprocs/],
  [['--emit', 'pbs', '--', 'true'], /--emit must be 'slurm' or 'kubernetes', got 'pbs'/],
];

test('bad input gets a clear error and exit status 2, and starts nothing', async () => {
  for (const [args, message] of BAD) {
    const r = await launch(args);
    assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, message, args.join(' '));
    assert.equal(r.stdout, '');
  }
});
