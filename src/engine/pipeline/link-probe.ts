// What a pipeline pays to talk, measured between two real processes on this host through the
// engine's own transport (for `atscale plan --calibrate`): the time of one activation handoff
// at a small and a large size (a per-message latency, and seconds per byte beyond it) and the
// latency of an all-reduce of two floats.
import { fileURLToPath } from 'node:url';
import { runLocalJob } from '../../launch/local-job.js';

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
  const script = fileURLToPath(new URL('./link-probe-worker.js', import.meta.url));
  const env = { ATSCALE_TIMEOUT_MS: String(WAIT_MS), ATSCALE_PROBE_SIZES: PROBE_SIZES.join(','), ATSCALE_PROBE_ITERS: String(o.iters ?? 20) };
  // The workers' own waits time out after WAIT_MS naming their peer; this bounds a stuck start.
  const exits = await runLocalJob({ script, world: 2, env, timeoutMs: 2 * WAIT_MS });
  const bad = exits.find((e) => e.code !== 0);
  if (bad) throw new Error(`link probe rank ${bad.rank} exited ${bad.code ?? bad.signal}: ${bad.stderr.slice(-800)}`);
  const out = exits[0]!.stdout;
  const line = out.split('\n').find((l) => l.startsWith('{'));
  if (!line) throw new Error(`link probe rank 0 printed no measurement: ${out.slice(-300)}`);
  const r = JSON.parse(line) as { handoffSecondsByBytes: Record<number, number>; smallAllReduceSeconds: number };
  const [small, large] = PROBE_SIZES.map((n) => r.handoffSecondsByBytes[4 * n]!);
  const perByte = (large! - small!) / (4 * (PROBE_SIZES[1]! - PROBE_SIZES[0]!));
  return { handoffSeconds: small!, handoffSecondsPerByte: Math.max(perByte, o.minSecondsPerByte), smallAllReduceSeconds: r.smallAllReduceSeconds, handoffSecondsByBytes: r.handoffSecondsByBytes };
}
