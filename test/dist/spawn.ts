// Starts N real worker processes (test/dist/worker.ts, or another script beside it) on 127.0.0.1 with torchrun-style env
// and collects the JSON line each prints. Not a test itself.
import { findFreePort } from '../../src/launch/free-port.js';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';

export interface WorkerResult {
  rank: number;
  code: number | null;
  signal: NodeJS.Signals | null;
  /** The worker's JSON report, if it printed one. */
  report: { ok: boolean; error?: string; ms: number; [more: string]: unknown } | null;
  stderr: string;
}

/** A free loopback port (the launcher's helper). */
export function freePort(): Promise<number> {
  return findFreePort('127.0.0.1');
}

export async function runWorkers(n: number, args: string[], env: Record<string, string> = {}, perRankEnv: (r: number) => Record<string, string> = () => ({}), scriptName = 'worker.js'): Promise<WorkerResult[]> {
  const port = await freePort();
  const secret = randomBytes(32).toString('hex');
  const script = fileURLToPath(new URL(`./${scriptName}`, import.meta.url));
  const children: ChildProcess[] = [];
  const results = Array.from({ length: n }, (_, rank) => {
    const child = spawn(process.execPath, [script, ...args], {
      env: {
        ...process.env,
        ATSCALE_TEST_WORKER: '1',
        RANK: String(rank),
        WORLD_SIZE: String(n),
        LOCAL_RANK: String(rank),
        LOCAL_WORLD_SIZE: String(n),
        MASTER_ADDR: '127.0.0.1',
        MASTER_PORT: String(port),
        ATSCALE_JOB_SECRET: secret,
        ...env,
        ...perRankEnv(rank),
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    children.push(child);
    let out = '';
    let err = '';
    child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
    return new Promise<WorkerResult>((resolve) => {
      child.on('close', (code, signal) => {
        const line = out.trim().split('\n').filter((l) => l.startsWith('{')).pop();
        resolve({ rank, code, signal, report: line ? JSON.parse(line) : null, stderr: err });
      });
    });
  });
  // Never leave a worker behind, whatever the test does.
  const guard = setTimeout(() => children.forEach((c) => c.kill('SIGKILL')), 60_000);
  try {
    return await Promise.all(results);
  } finally {
    clearTimeout(guard);
  }
}
