// Starts N real worker processes (test/dist/worker.ts, or another script beside it) on 127.0.0.1
// (src/launch/local-job.ts: torchrun-style env) and collects the JSON line each prints. Not a test itself.
import { fileURLToPath } from 'node:url';
import { runLocalJob } from '../../src/launch/local-job.js';

export interface WorkerResult {
  rank: number;
  code: number | null;
  signal: NodeJS.Signals | null;
  /** The worker's JSON report, if it printed one. */
  report: { ok: boolean; error?: string; ms: number; [more: string]: unknown } | null;
  stderr: string;
}

export async function runWorkers(n: number, args: string[], env: Record<string, string> = {}, perRankEnv: (r: number) => Record<string, string> = () => ({}), scriptName = 'worker.js'): Promise<WorkerResult[]> {
  const script = fileURLToPath(new URL(`./${scriptName}`, import.meta.url));
  // Never leave a worker behind, whatever the test does.
  const exits = await runLocalJob({ script, args, world: n, env: { ATSCALE_TEST_WORKER: '1', ...env }, perRankEnv, timeoutMs: 60_000 });
  return exits.map((e) => {
    const line = e.stdout.trim().split('\n').filter((l) => l.startsWith('{')).pop();
    return { rank: e.rank, code: e.code, signal: e.signal, report: line ? JSON.parse(line) : null, stderr: e.stderr };
  });
}
