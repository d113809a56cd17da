// Starts N real rank processes on 127.0.0.1 with torchrun-style env (fresh port and secret)
// and collects the `RESULT {json}` line each prints; kills them all if any overruns.
import { findFreePort } from '../../src/launch/free-port.js';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';

export interface RankRun {
  rank: number;
  code: number | null;
  result: Record<string, unknown> | null;
  stderr: string;
}

/** A free loopback port (the launcher's helper). */
export function freePort(): Promise<number> {
  return findFreePort('127.0.0.1');
}

export function parseResult(stdout: string): Record<string, unknown> | null {
  const line = stdout.split('\n').find((l) => l.includes('RESULT {'));
  return line ? (JSON.parse(line.slice(line.indexOf('RESULT ') + 7)) as Record<string, unknown>) : null;
}

export async function runRanks(script: string, world: number, env: Record<string, string>, timeoutMs = 120_000): Promise<RankRun[]> {
  const port = await freePort();
  const secret = randomBytes(32).toString('hex');
  const children: ChildProcess[] = [];
  const runs = Array.from({ length: world }, (_, rank) => {
    const child = spawn(process.execPath, [script], {
      env: { ...process.env, RANK: String(rank), WORLD_SIZE: String(world), LOCAL_RANK: String(rank), LOCAL_WORLD_SIZE: String(world), MASTER_ADDR: '127.0.0.1', MASTER_PORT: String(port), ATSCALE_JOB_SECRET: secret, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    children.push(child);
    let out = '';
    let err = '';
    child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
    return new Promise<RankRun>((resolve) => child.on('close', (code) => resolve({ rank, code, result: parseResult(out), stderr: err })));
  });
  const guard = setTimeout(() => children.forEach((c) => c.kill('SIGKILL')), timeoutMs);
  try {
    return await Promise.all(runs);
  } finally {
    clearTimeout(guard);
  }
}
