// `npm run bench -- serve [--json] [--concurrency 1,4,16,64] [--soak N]`: serving throughput
// and latency over loopback HTTP at several concurrencies, for three implementations in one run
// on the same random-weight GPT (4 layers, 128 wide, context 128, char vocabulary):
// - atscale: `atscale serve` with continuous batching (16 KV-cache slots);
// - sequential: the same server with one slot, so requests run one at a time;
// - transformers.js: @huggingface/transformers generating with the `export --format hf`
//   folder, c generate() calls in flight at once (it has no batching server).
// Streaming completions, max_tokens 32, a 24-character prompt. --soak N sends N short requests
// instead and reports the server's memory at checkpoints with a verdict (serve-soak.ts).
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from '../src/cli/args.js';
import { saveCheckpoint } from '../src/checkpoint/index.js';
import { CharTokenizer } from '../src/data/char_tokenizer.js';
import { GPT } from '../src/models/gpt.js';
import { FlatLayout } from '../src/nn/flat.js';
import { exportHf } from '../src/engine/export-hf.js';
import { soak, soakTable } from './serve-soak.js';

const MAIN = fileURLToPath(new URL('../src/cli/main.js', import.meta.url));
const PROMPT = 'First Citizen: Before we';
const MAX_TOKENS = 32;

interface Row {
  bench: 'serve';
  impl: 'atscale' | 'sequential' | 'transformers.js';
  concurrency: number;
  req_per_s: number;
  out_tok_per_s: number;
  ttft_p50_ms: number;
  ttft_p99_ms: number;
  itl_p50_ms: number;
  itl_p99_ms: number;
}

const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]! : NaN;
};

function checkpoint(dir: string): string {
  const tokenizer = new CharTokenizer([...new Set(" \n!',-.:;?ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")].sort());
  const cfg = { nLayer: 4, nHead: 4, nEmbd: 128, blockSize: 128, vocabSize: tokenizer.vocabSize, bias: true, dropout: 0 };
  const layout = new FlatLayout(new GPT(cfg));
  const params = layout.initialise(1);
  const tensors: Record<string, { dtype: 'F32'; shape: number[]; data: Float32Array }> = {};
  for (const [k, e] of Object.entries(layout.stateDict(params))) tensors[k] = { dtype: 'F32', shape: e.shape, data: e.data };
  const ck = join(dir, 'bench-gpt');
  saveCheckpoint(ck, { tensors, meta: { config: cfg }, files: { 'tokenizer.json': JSON.stringify(tokenizer.toJSON()) } });
  return ck;
}

async function startServer(ck: string, slots: number, threads: number): Promise<{ url: string; proc: ChildProcess }> {
  const proc = spawn(process.execPath, [MAIN, 'serve', '--model', ck, '--port', '0', '--slots', String(slots), '--threads', String(threads), '--max-queue', '4096'], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  const url = await new Promise<string>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`atscale serve did not start within 120 s: ${out}`)), 120_000);
    proc.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /listening on (\S+)/.exec(out);
      if (m) {
        clearTimeout(t);
        resolve(m[1]!);
      }
    });
    proc.on('exit', (c) => reject(new Error(`atscale serve exited with ${c}: ${out}`)));
  });
  return { url, proc };
}

/** One request's token arrival times (ms since it was sent). */
type Trace = number[];

async function httpRequest(url: string): Promise<Trace> {
  const t0 = performance.now();
  const r = await fetch(`${url}/v1/completions`, { method: 'POST', body: JSON.stringify({ model: 'bench-gpt', prompt: PROMPT, max_tokens: MAX_TOKENS, temperature: 0, stream: true }) });
  if (r.status !== 200) throw new Error(`HTTP ${r.status}: ${await r.text()}`);
  const times: number[] = [];
  const dec = new TextDecoder();
  let buf = '';
  for await (const chunk of r.body as unknown as AsyncIterable<Uint8Array>) {
    buf += dec.decode(chunk, { stream: true });
    let i: number;
    while ((i = buf.indexOf('\n\n')) >= 0) {
      const ev = buf.slice(0, i);
      buf = buf.slice(i + 2);
      if (ev.startsWith('data: {') && (JSON.parse(ev.slice(6)) as { choices: { text: string }[] }).choices[0]?.text) times.push(performance.now() - t0);
    }
  }
  return times;
}

async function measure(impl: Row['impl'], concurrency: number, requests: number, one: () => Promise<Trace>): Promise<Row> {
  const traces: Trace[] = [];
  let next = 0;
  const t0 = performance.now();
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (next++ < requests) traces.push(await one());
  }));
  const secs = (performance.now() - t0) / 1000;
  const tokens = traces.reduce((n, t) => n + t.length, 0);
  const itl = traces.flatMap((t) => t.slice(1).map((x, i) => x - t[i]!));
  const r = (x: number) => Math.round(x * 100) / 100;
  return { bench: 'serve', impl, concurrency, req_per_s: r(traces.length / secs), out_tok_per_s: r(tokens / secs), ttft_p50_ms: r(pct(traces.map((t) => t[0]!), 50)), ttft_p99_ms: r(pct(traces.map((t) => t[0]!), 99)), itl_p50_ms: r(pct(itl, 50)), itl_p99_ms: r(pct(itl, 99)) };
}

async function transformersJs(dir: string): Promise<() => Promise<Trace>> {
  const { env, AutoTokenizer, AutoModelForCausalLM } = await import('@huggingface/transformers');
  env.allowRemoteModels = false;
  env.localModelPath = dir;
  const tokenizer = await AutoTokenizer.from_pretrained('hf');
  const model = await AutoModelForCausalLM.from_pretrained('hf', { dtype: 'fp32' });
  return async () => {
    const t0 = performance.now();
    const times: number[] = [];
    let first = true;
    // A streamer sees the prompt once, then each new token.
    const streamer = { put: () => (first ? (first = false) : times.push(performance.now() - t0)), end: () => {} };
    await model.generate({ ...(tokenizer(PROMPT) as object), max_new_tokens: MAX_TOKENS, min_new_tokens: MAX_TOKENS, do_sample: false, streamer } as never);
    return times;
  };
}

export async function run(argv: string[]): Promise<number> {
  const { flags } = parseArgs(argv, {
    json: { type: 'boolean', help: 'print JSON lines' },
    concurrency: { type: 'string', help: 'concurrency levels', default: '1,4,16,64' },
    threads: { type: 'number', help: 'ONNX Runtime threads for every implementation', default: 2 },
    soak: { type: 'number', help: 'instead: N short requests, report the server memory at checkpoints and a growth verdict', default: 0 },
  }, 'bench serve');
  const levels = String(flags.concurrency).split(',').map(Number);
  const threads = flags.threads as number;
  const dir = mkdtempSync(join(tmpdir(), 'atscale-bench-serve-'));
  const ck = checkpoint(dir);
  const rows: Row[] = [];
  const emit = (row: Row) => {
    rows.push(row);
    if (flags.json) console.log(JSON.stringify(row));
  };
  try {
    if ((flags.soak as number) > 0) {
      const s = await startServer(ck, 16, threads);
      try {
        const r = await soak(s.url, 'bench-gpt', flags.soak as number);
        console.log(flags.json ? JSON.stringify(r) : soakTable(r));
        return r.verdict === 'no growth' && Object.keys(r.statuses).every((k) => k === '200') ? 0 : 1;
      } finally {
        s.proc.kill('SIGTERM');
      }
    }
    // Both servers run side by side (an idle one takes no CPU: its thread pools do not spin) and
    // are measured in turn at each concurrency, so that a change in the shared machine's load
    // falls on both: measured one after the other, a busy minute made one look 4x slower.
    const servers: [Row['impl'], { url: string; proc: ChildProcess }][] = [];
    try {
      for (const [impl, slots] of [['atscale', 16], ['sequential', 1]] as const) servers.push([impl, await startServer(ck, slots, threads)]);
      for (const [, s] of servers) await httpRequest(s.url); // warm-up
      for (const c of levels) for (const [impl, s] of servers) emit(await measure(impl, c, Math.max(8, 4 * c), () => httpRequest(s.url)));
    } finally {
      for (const [, s] of servers) s.proc.kill('SIGTERM');
    }
    const { load } = await import('../src/serve/load.js');
    const served = load(ck);
    exportHf(served.model, served.params, served.tokenizer, join(dir, 'hf'));
    const tjs = await transformersJs(dir);
    await tjs();
    for (const c of levels) emit(await measure('transformers.js', c, Math.max(8, 4 * c), tjs));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  const at = (impl: Row['impl'], c: number) => rows.find((r) => r.impl === impl && r.concurrency === c)?.out_tok_per_s ?? NaN;
  console.log(`\nserve: streaming completions, ${MAX_TOKENS} tokens each, ${threads} ORT threads (machine shared: read ratios, not absolutes)`);
  console.log('impl             conc   req/s   out tok/s   TTFT p50/p99 ms   ITL p50/p99 ms');
  for (const r of rows) console.log(`${r.impl.padEnd(16)} ${String(r.concurrency).padStart(4)} ${r.req_per_s.toFixed(2).padStart(7)} ${r.out_tok_per_s.toFixed(1).padStart(11)}   ${`${r.ttft_p50_ms.toFixed(0)}/${r.ttft_p99_ms.toFixed(0)}`.padStart(15)}   ${`${r.itl_p50_ms.toFixed(1)}/${r.itl_p99_ms.toFixed(1)}`.padStart(14)}`);
  for (const c of levels) console.log(`c=${c}: atscale / sequential = ${(at('atscale', c) / at('sequential', c)).toFixed(2)}x, atscale / transformers.js = ${(at('atscale', c) / at('transformers.js', c)).toFixed(2)}x`);
  return 0;
}
