// `npm run bench -- serve --soak N`: N short completions (16 clients over loopback, each sending
// its next request when the last one ends) against one `atscale serve`, with the server's
// resident memory and V8 heap read from /metrics at ten checkpoints. Every answer is counted by
// status; any non-200 is reported with its body, not thrown. The verdict compares the second
// half with the first checkpoints after warm-up: a leak grows with the request count, noise
// does not.
import { median } from '../src/runtime/median.js';

/** One reading of the server's memory after `requests` answers. */
export interface SoakCheckpoint {
  requests: number;
  rss_mb: number;
  heap_mb: number;
}

export interface SoakResult {
  bench: 'serve-soak';
  requests: number;
  seconds: number;
  statuses: Record<string, number>;
  first_error?: string;
  checkpoints: SoakCheckpoint[];
  /** Median of the last half of the checkpoints minus the median of checkpoints 2-4 (after warm-up). */
  rss_growth_mb: number;
  heap_growth_mb: number;
  verdict: 'no growth' | 'growth';
}

/** The server's resident memory and V8 heap, MiB, from its /metrics. */
export async function memory(url: string): Promise<{ rss: number; heap: number }> {
  const text = await (await fetch(`${url}/metrics`, { signal: AbortSignal.timeout(30_000) })).text();
  const read = (name: string) => Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(text)![1]) / 2 ** 20;
  return { rss: read('process_resident_memory_bytes'), heap: read('nodejs_heap_used_bytes') };
}

/** Growth tolerated as noise: the allocator and V8 settle in steps of a few MB. */
const SLACK_MB = 16;
const SLACK_FRACTION = 0.1;

export async function soak(url: string, model: string, n: number, clients = 16): Promise<SoakResult> {
  const statuses: Record<string, number> = {};
  let firstError: string | undefined;
  const checkpoints: SoakCheckpoint[] = [];
  const every = Math.max(1, Math.floor(n / 10));
  let sent = 0;
  let done = 0;
  const t0 = performance.now();
  const one = async () => {
    let status: string;
    try {
      const r = await fetch(`${url}/v1/completions`, { method: 'POST', body: JSON.stringify({ model, prompt: 'Hi', max_tokens: 2 }), signal: AbortSignal.timeout(180_000) });
      const body = await r.text();
      status = String(r.status);
      if (r.status !== 200) firstError ??= `HTTP ${r.status}: ${body}`;
    } catch (e) {
      status = 'network error';
      firstError ??= (e as Error).message;
    }
    statuses[status] = (statuses[status] ?? 0) + 1;
    if (++done % every === 0) {
      const m = await memory(url);
      checkpoints.push({ requests: done, rss_mb: Math.round(m.rss * 10) / 10, heap_mb: Math.round(m.heap * 10) / 10 });
    }
  };
  await Promise.all(Array.from({ length: clients }, async () => {
    while (sent++ < n) await one();
  }));
  checkpoints.sort((a, b) => a.requests - b.requests);
  const early = checkpoints.slice(1, 4);
  const late = checkpoints.slice(Math.floor(checkpoints.length / 2));
  const growth = (k: 'rss_mb' | 'heap_mb') => Math.round((median(late.map((c) => c[k])) - median(early.map((c) => c[k]))) * 10) / 10;
  const rss = growth('rss_mb');
  const heap = growth('heap_mb');
  const base = median(early.map((c) => c.rss_mb));
  const ok = rss <= SLACK_MB + SLACK_FRACTION * base && heap <= SLACK_MB;
  return {
    bench: 'serve-soak',
    requests: n,
    seconds: Math.round((performance.now() - t0) / 100) / 10,
    statuses,
    ...(firstError ? { first_error: firstError } : {}),
    checkpoints,
    rss_growth_mb: rss,
    heap_growth_mb: heap,
    verdict: ok ? 'no growth' : 'growth',
  };
}

export function soakTable(r: SoakResult): string {
  const lines = [`\nserve soak: ${r.requests} requests in ${r.seconds} s, statuses ${JSON.stringify(r.statuses)}${r.first_error ? `, first error: ${r.first_error}` : ''}`, 'requests   RSS MB   heap MB'];
  for (const c of r.checkpoints) lines.push(`${String(c.requests).padStart(8)} ${c.rss_mb.toFixed(1).padStart(8)} ${c.heap_mb.toFixed(1).padStart(9)}`);
  lines.push(`growth (median of the last half - median of checkpoints 2-4): RSS ${r.rss_growth_mb} MB, heap ${r.heap_growth_mb} MB -> ${r.verdict} (tolerance ${SLACK_MB} MB + ${SLACK_FRACTION * 100}% of RSS; heap ${SLACK_MB} MB)`);
  return lines.join('\n');
}
