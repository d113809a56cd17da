// Prometheus text exposition (format 0.0.4) of the server's counters, gauges and latency
// histograms. Histograms keep cumulative bucket counts, so memory is fixed however long it runs.

const LATENCY_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 10, 20, 40, 80];

export class Histogram {
  private readonly counts: number[];
  private sum = 0;
  private n = 0;

  constructor(readonly name: string, readonly help: string, readonly buckets: readonly number[] = LATENCY_BUCKETS) {
    this.counts = new Array<number>(buckets.length).fill(0);
  }

  observe(v: number): void {
    this.sum += v;
    this.n++;
    for (let i = 0; i < this.buckets.length; i++) if (v <= this.buckets[i]!) this.counts[i]!++;
  }

  get count(): number {
    return this.n;
  }

  render(): string {
    const lines = [`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} histogram`];
    this.buckets.forEach((le, i) => lines.push(`${this.name}_bucket{le="${le}"} ${this.counts[i]}`));
    lines.push(`${this.name}_bucket{le="+Inf"} ${this.n}`, `${this.name}_sum ${this.sum}`, `${this.name}_count ${this.n}`);
    return lines.join('\n');
  }
}

export interface Gauges {
  running: number;
  waiting: number;
  cacheUsage: number;
  slots: number;
  promptTokens: number;
  generatedTokens: number;
}

export class ServerMetrics {
  readonly ttft = new Histogram('atscale_time_to_first_token_seconds', 'Time from request arrival to its first generated token.');
  readonly itl = new Histogram('atscale_inter_token_latency_seconds', 'Time between consecutive generated tokens of one sequence.');
  readonly e2e = new Histogram('atscale_e2e_request_latency_seconds', 'Time from request arrival to its last token.');
  requests = new Map<string, number>();

  countRequest(status: number): void {
    const k = String(status);
    this.requests.set(k, (this.requests.get(k) ?? 0) + 1);
  }

  render(g: Gauges): string {
    const one = (name: string, type: string, help: string, v: number) => `# HELP ${name} ${help}\n# TYPE ${name} ${type}\n${name} ${v}`;
    const req = ['# HELP atscale_http_requests_total HTTP requests answered, by status code.', '# TYPE atscale_http_requests_total counter'];
    for (const [k, v] of [...this.requests].sort()) req.push(`atscale_http_requests_total{code="${k}"} ${v}`);
    return [
      one('atscale_requests_running', 'gauge', 'Sequences holding a KV-cache slot.', g.running),
      one('atscale_requests_waiting', 'gauge', 'Sequences queued for a slot.', g.waiting),
      one('atscale_kv_cache_usage_ratio', 'gauge', 'Fraction of KV-cache positions holding live tokens (0..1).', g.cacheUsage),
      one('atscale_kv_cache_slots', 'gauge', 'KV-cache slots in the pool.', g.slots),
      one('atscale_prompt_tokens_total', 'counter', 'Prompt tokens read.', g.promptTokens),
      one('atscale_generation_tokens_total', 'counter', 'Tokens generated.', g.generatedTokens),
      req.join('\n'),
      this.ttft.render(),
      this.itl.render(),
      this.e2e.render(),
    ].join('\n') + '\n';
  }
}
