// Starts N real rank processes on 127.0.0.1 (src/launch/local-job.ts: torchrun-style env, fresh
// port and secret) and collects the `RESULT {json}` line each prints; kills them all if any overruns.
import { findFreePort } from '../../src/launch/free-port.js';
import { resultLine, runLocalJob } from '../../src/launch/local-job.js';

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

export async function runRanks(script: string, world: number, env: Record<string, string>, timeoutMs = 120_000): Promise<RankRun[]> {
  const exits = await runLocalJob({ script, world, env, timeoutMs });
  return exits.map((e) => ({ rank: e.rank, code: e.code, result: resultLine(e.stdout), stderr: e.stderr }));
}
