// What a pipeline pays to talk, measured between two real processes on this host through the
// engine's own transport (for `atscale plan --calibrate`): the time of one activation handoff
// at a small and a large size (a per-message latency, and seconds per byte beyond it) and the
// latency of an all-reduce of two floats.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { findFreePort } from '../../launch/free-port.js';

export interface LinkMeasurements {
  /** Seconds of one handoff of a few bytes: the per-message latency. */
  handoffSeconds: number;
  /** Seconds per byte beyond it (between the small and the large message), at least a memory copy's. */
  handoffSecondsPerByte: number;
  smallAllReduceSeconds: number;
  /** The raw medians: message bytes (tag excluded) -> seconds of one handoff. */
  handoffSecondsByBytes: Record<number, number>;
}

/** Elements of the two messages: two floats (latency alone) and 256 Ki floats (1 MiB, one frame). */
export const PROBE_SIZES = [2, 256 * 1024];
const WAIT_MS = 60_000;

/** `minSecondsPerByte`: the floor of the per-byte rate (the message is copied at least once, so
 * not faster than the machine's copy bandwidth); noise can otherwise make it zero or negative. */
export async function measureLinks(o: { minSecondsPerByte: number; iters?: number }): Promise<LinkMeasurements> {
  const port = await findFreePort('127.0.0.1');
  const secret = randomBytes(32).toString('hex');
  const script = fileURLToPath(new URL('./link-probe-worker.js', import.meta.url));
  const run = (rank: number) => new Promise<string>((resolve, reject) => {
    const child = spawn(process.execPath, [script], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, RANK: String(rank), WORLD_SIZE: '2', LOCAL_RANK: String(rank), LOCAL_WORLD_SIZE: '2', MASTER_ADDR: '127.0.0.1', MASTER_PORT: String(port), ATSCALE_JOB_SECRET: secret, ATSCALE_TIMEOUT_MS: String(WAIT_MS), ATSCALE_PROBE_SIZES: PROBE_SIZES.join(','), ATSCALE_PROBE_ITERS: String(o.iters ?? 20) },
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    // The worker's own waits time out after WAIT_MS naming its peer; this bounds a stuck start.
    const timer = setTimeout(() => child.kill('SIGKILL'), 2 * WAIT_MS);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      if (code === 0) resolve(out);
      else reject(new Error(`link probe rank ${rank} exited ${code}: ${err.slice(-800)}`));
    });
  });
  const [out] = await Promise.all([run(0), run(1)]);
  const line = out.split('\n').find((l) => l.startsWith('{'));
  if (!line) throw new Error(`link probe rank 0 printed no measurement: ${out.slice(-300)}`);
  const r = JSON.parse(line) as { handoffSecondsByBytes: Record<number, number>; smallAllReduceSeconds: number };
  const [small, large] = PROBE_SIZES.map((n) => r.handoffSecondsByBytes[4 * n]!);
  const perByte = (large! - small!) / (4 * (PROBE_SIZES[1]! - PROBE_SIZES[0]!));
  return { handoffSeconds: small!, handoffSecondsPerByte: Math.max(perByte, o.minSecondsPerByte), smallAllReduceSeconds: r.smallAllReduceSeconds, handoffSecondsByBytes: r.handoffSecondsByBytes };
}
