// One job's ranks as child processes of this one, all on 127.0.0.1, with the environment the
// launcher gives its workers (worker-env.ts: torchrun's names, a fresh port and secret). For
// the calibration's link probe, benchmarks and tests, which need real ranks but none of the
// supervisor's restarts, heartbeats or log prefixes. Every rank is killed when the job overruns its time, so none outlives the
// caller, and the caller gets each rank's exit and whole output to judge.
import { spawn, type ChildProcess } from 'node:child_process';
import { findFreePort } from './free-port.js';
import { generateJobSecret } from './secret.js';
import type { Topology } from './topology.js';
import { workerEnv } from './worker-env.js';

export interface LocalJob {
  /** The JavaScript file every rank runs with this Node. */
  script: string;
  args?: string[];
  world: number;
  /** Added to every rank's environment (after the launcher's names, so it may override them). */
  env?: Record<string, string>;
  perRankEnv?: (rank: number) => Record<string, string>;
  /** After this long every rank still running is killed (SIGKILL). */
  timeoutMs: number;
}

export interface LocalRankExit {
  rank: number;
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export async function runLocalJob(job: LocalJob): Promise<LocalRankExit[]> {
  const workers = Array.from({ length: job.world }, (_, rank) => ({ rank, localRank: rank }));
  const topology: Topology = {
    source: 'flags', nnodes: 1, nodeRank: 0, worldSize: job.world, localWorldSize: job.world,
    masterAddr: '127.0.0.1', masterPort: await findFreePort('127.0.0.1'), workers,
  };
  const secret = generateJobSecret();
  const children: ChildProcess[] = [];
  const exits = workers.map((slot) => {
    const env = { ...workerEnv(process.env, { topology, slot, secret }), ...job.env, ...job.perRankEnv?.(slot.rank) };
    const child = spawn(process.execPath, [job.script, ...(job.args ?? [])], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    children.push(child);
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    return new Promise<LocalRankExit>((resolve) => child.on('close', (code, signal) => resolve({ rank: slot.rank, code, signal, stdout, stderr })));
  });
  const guard = setTimeout(() => children.forEach((c) => c.kill('SIGKILL')), job.timeoutMs);
  try {
    return await Promise.all(exits);
  } finally {
    clearTimeout(guard);
  }
}

/** The JSON of the first `RESULT {...}` line a rank printed, or null. */
export function resultLine(stdout: string): Record<string, unknown> | null {
  const line = stdout.split('\n').find((l) => l.includes('RESULT {'));
  return line ? (JSON.parse(line.slice(line.indexOf('RESULT ') + 7)) as Record<string, unknown>) : null;
}
