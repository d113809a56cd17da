// `npm run bench -- serve [--json] [--concurrency 1,4,16,64] [--rounds 3] [--shape NAME] [--quantization int8] [--soak N] [--memory]`:
// serving throughput and latency over loopback HTTP at several concurrencies, for three
// implementations in one run on the same random-weight GPT with a character vocabulary:
// - atscale: `atscale serve` with continuous batching (16 KV-cache slots);
// - sequential: the same server with one slot, so requests run one at a time;
// - transformers.js: @huggingface/transformers generating with the `export --format hf`
//   folder of the same checkpoint, c generate() calls in flight at once (it has no batching server).
// The model is nanoGPT's shakespeare_char shape by default (6 layers x 384, 6 heads, context
// 256, 10.8M parameters): a decode step of one sequence then reads 43 MB of weights, the cost
// that batching shares. The 4 x 128 shape (`--shape tiny`, 0.8M parameters) is all fixed
// per-step overhead (graph launch, sampling, HTTP), which batching cannot share.
// Streaming completions, max_tokens 32, a 24-character prompt. Each round measures every
// concurrency for every implementation back to back (the order alternating), and the rows are
// the medians over the rounds: on a shared machine a baseline measured alone swung 2.5x between
// runs. The servers run in child processes; this process is only the load generator (and
// transformers.js, which runs in the process that calls it).
// --quantization int8 adds two implementations on int8 weight GEMMs, measured in the same
// rounds as the float32 ones: the 16-slot server with --quantization int8 and transformers.js
// on the export's int8 variant (onnx/model_quantized.onnx, dtype q8).
// --soak N sends N short requests instead (to the tiny shape unless --shape says otherwise) and
// reports the server's memory at checkpoints with a verdict (serve-soak.ts).
// --memory starts the server at 1 and 16 slots, with and without a packed copy of the weights
// per graph (--pack-weights), on GPT-2 small's blocks unless --shape says otherwise, and
// reports its resident memory once listening and after four requests.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from '../src/cli/args.js';
import { saveCheckpoint } from '../src/checkpoint/index.js';
import { CharTokenizer } from '../src/data/char_tokenizer.js';
import { GPT } from '../src/models/gpt.js';
import { FlatLayout } from '../src/nn/flat.js';
import { exportHf } from '../src/engine/export-hf.js';
import { memory, soak, soakTable } from './serve-soak.js';

const MAIN = fileURLToPath(new URL('../src/cli/main.js', import.meta.url));
const PROMPT = 'First Citizen: Before we';
const MAX_TOKENS = 32;

interface Row {
  bench: 'serve';
  impl: 'atscale' | 'sequential' | 'transformers.js';
  /** The implementation's weights: float32, or int8 GEMMs (atscale serve --quantization int8,
   * transformers.js's q8 model, the int8 export). */
  quantization: 'none' | 'int8';
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

/** Model shapes the bench can serve (random weights; vocabulary: the characters below). */
const SHAPES = {
  'shakespeare-char': { nLayer: 6, nHead: 6, nEmbd: 384, blockSize: 256 },
  tiny: { nLayer: 4, nHead: 4, nEmbd: 128, blockSize: 128 },
  // GPT-2 small's blocks and context with a character vocabulary (85.9M parameters, 343 MB):
  // large enough that copies of the weights per graph show in --memory.
  'gpt2-blocks': { nLayer: 12, nHead: 12, nEmbd: 768, blockSize: 1024 },
} as const;
type Shape = keyof typeof SHAPES;

function checkpoint(dir: string, shape: Shape): { ck: string; describe: string } {
  const tokenizer = new CharTokenizer([...new Set(" \n!',-.:;?ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")].sort());
  const cfg = { ...SHAPES[shape], vocabSize: tokenizer.vocabSize, bias: true, dropout: 0 };
  const layout = new FlatLayout(new GPT(cfg));
  const params = layout.initialise(1);
  const tensors: Record<string, { dtype: 'F32'; shape: number[]; data: Float32Array }> = {};
  for (const [k, e] of Object.entries(layout.stateDict(params))) tensors[k] = { dtype: 'F32', shape: e.shape, data: e.data };
  const ck = join(dir, 'bench-gpt');
  saveCheckpoint(ck, { tensors, meta: { config: cfg }, files: { 'tokenizer.json': JSON.stringify(tokenizer.toJSON()) } });
  const describe = `GPT '${shape}': ${cfg.nLayer} layers x ${cfg.nEmbd}, ${cfg.nHead} heads, context ${cfg.blockSize}, vocab ${cfg.vocabSize}, ${(params.length / 1e6).toFixed(1)}M parameters, random weights`;
  return { ck, describe };
}

async function startServer(ck: string, slots: number, threads: number, extra: string[] = []): Promise<{ url: string; proc: ChildProcess }> {
  const proc = spawn(process.execPath, [MAIN, 'serve', '--model', ck, '--port', '0', '--slots', String(slots), '--threads', String(threads), '--max-queue', '4096', ...extra], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  const url = await new Promise<string>((resolve, reject) => {
    // Compiling every graph of the 16-slot server (5 batch sizes x 3 pool lengths, and the
    // prefill graphs) takes tens of seconds on a busy machine.
    const t = setTimeout(() => reject(new Error(`atscale serve (${slots} slots) did not print 'listening on' within 600 s: ${out}`)), 600_000);
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

async function measure(impl: Row['impl'], quantization: Row['quantization'], concurrency: number, requests: number, one: () => Promise<Trace>): Promise<Row> {
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
  return { bench: 'serve', impl, quantization, concurrency, req_per_s: r(traces.length / secs), out_tok_per_s: r(tokens / secs), ttft_p50_ms: r(pct(traces.map((t) => t[0]!), 50)), ttft_p99_ms: r(pct(traces.map((t) => t[0]!), 99)), itl_p50_ms: r(pct(itl, 50)), itl_p99_ms: r(pct(itl, 99)) };
}

async function transformersJs(dir: string, quantization: Row['quantization']): Promise<() => Promise<Trace>> {
  const { env, AutoTokenizer, AutoModelForCausalLM } = await import('@huggingface/transformers');
  env.allowRemoteModels = false;
  env.localModelPath = dir;
  const tokenizer = await AutoTokenizer.from_pretrained('hf');
  // q8 loads onnx/model_quantized.onnx, the export's int8 variant (the same rewrite as serve's).
  const model = await AutoModelForCausalLM.from_pretrained('hf', { dtype: quantization === 'int8' ? 'q8' : 'fp32' });
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

/** Each field's median over the rounds (one row per round). */
function medianRow(rows: Row[]): Row {
  const med = (xs: number[]) => {
    const v = [...xs].sort((a, b) => a - b);
    return v.length % 2 ? v[(v.length - 1) / 2]! : Math.round(((v[v.length / 2 - 1]! + v[v.length / 2]!) / 2) * 100) / 100;
  };
  const keys = ['req_per_s', 'out_tok_per_s', 'ttft_p50_ms', 'ttft_p99_ms', 'itl_p50_ms', 'itl_p99_ms'] as const;
  return { ...rows[0]!, ...Object.fromEntries(keys.map((k) => [k, med(rows.map((r) => r[k]))])) };
}

export async function run(argv: string[]): Promise<number> {
  const { flags } = parseArgs(argv, {
    json: { type: 'boolean', help: 'print JSON lines' },
    concurrency: { type: 'string', help: 'concurrency levels', default: '1,4,16,64' },
    threads: { type: 'number', help: 'ONNX Runtime threads for every implementation', default: 2, min: 1, int: true },
    rounds: { type: 'number', help: 'rounds of every concurrency and implementation; rows are the medians', default: 3, min: 1, int: true },
    shape: { type: 'string', help: 'the served model: shakespeare-char (6 x 384, 10.8M parameters) or tiny (4 x 128, 0.8M); default shakespeare-char, tiny for --soak', choices: Object.keys(SHAPES) },
    soak: { type: 'number', help: 'instead: N short requests, report the server memory at checkpoints and a growth verdict', default: 0 },
    memory: { type: 'boolean', help: 'instead: the server\'s resident memory at 1 and 16 slots with and without packed weights per graph (--pack-weights), once listening and after a few requests; default shape gpt2-blocks' },
    quantization: { type: 'string', help: 'int8: also the 16-slot server with --quantization int8 and transformers.js on the int8 export (dtype q8), in the same rounds; with --memory, int8 servers instead', default: 'none', choices: ['none', 'int8'] },
  }, 'bench serve');
  const levels = String(flags.concurrency).split(',').map(Number);
  if (!levels.every((c) => Number.isInteger(c) && c > 0)) throw new Error(`bench serve: --concurrency expects positive integers separated by commas, got '${String(flags.concurrency)}'`);
  const threads = flags.threads as number;
  const quantization = flags.quantization as Row['quantization'];
  const rounds = flags.rounds as number;
  const soakN = flags.soak as number;
  const shape = (flags.shape as Shape | undefined) ?? (soakN > 0 ? 'tiny' : flags.memory ? 'gpt2-blocks' : 'shakespeare-char');
  const dir = mkdtempSync(join(tmpdir(), 'atscale-bench-serve-'));
  const { ck, describe } = checkpoint(dir, shape);
  const rows: Row[] = [];
  const loads: number[] = [];
  // A bench stopped by a signal stops its servers too: a child outlives a killed parent, and
  // two orphaned servers were still running after one such stop.
  const servers: ChildProcess[] = [];
  const onSignal = (sig: NodeJS.Signals) => {
    for (const p of servers) p.kill('SIGTERM');
    process.exit(128 + ({ SIGHUP: 1, SIGINT: 2, SIGTERM: 15 } as Record<string, number>)[sig]!);
  };
  for (const sig of ['SIGHUP', 'SIGINT', 'SIGTERM'] as const) process.once(sig, onSignal);
  try {
    if (flags.memory) {
      const rows = [];
      for (const slots of [1, 16]) {
        for (const pack of ['yes', 'no']) {
          const t0 = performance.now();
          const s = await startServer(ck, slots, threads, ['--pack-weights', pack, '--quantization', quantization]);
          servers.push(s.proc);
          try {
            const startup_s = (performance.now() - t0) / 1000;
            const listening = await memory(s.url);
            for (let i = 0; i < 4; i++) await httpRequest(s.url);
            const after = await memory(s.url);
            const row = { bench: 'serve-memory', shape, quantization, slots, pack_weights: pack, startup_s, rss_mb_listening: listening.rss, rss_mb_after_4_requests: after.rss };
            rows.push(row);
            if (flags.json) console.log(JSON.stringify(row));
          } finally {
            s.proc.kill('SIGTERM');
          }
        }
      }
      const f = (x: number, d = 0) => x.toFixed(d);
      console.log(`\nserve --memory: ${describe}${quantization === 'int8' ? ', --quantization int8' : ''}; RSS of the server process, MiB (from its /metrics)`);
      console.log('slots  pack-weights  startup s  RSS listening  RSS after 4 requests');
      for (const r of rows) console.log(`${String(r.slots).padStart(5)}  ${r.pack_weights.padEnd(12)}  ${f(r.startup_s, 1).padStart(9)}  ${f(r.rss_mb_listening).padStart(13)}  ${f(r.rss_mb_after_4_requests).padStart(20)}`);
      return 0;
    }
    if (soakN > 0) {
      const s = await startServer(ck, 16, threads);
      servers.push(s.proc);
      try {
        const r = await soak(s.url, 'bench-gpt', soakN);
        console.log(flags.json ? JSON.stringify(r) : `${soakTable(r)}\nmodel: ${describe}`);
        return r.verdict === 'no growth' && Object.keys(r.statuses).every((k) => k === '200') ? 0 : 1;
      } finally {
        s.proc.kill('SIGTERM');
      }
    }
    // The servers run side by side (an idle one takes no CPU: its thread pools do not spin),
    // and transformers.js is loaded here beside them; all are measured in turn at each
    // concurrency in every round, so that a change in the shared machine's load falls on all.
    const { load } = await import('../src/serve/load.js');
    const served = load(ck);
    exportHf(served.model, served.params, served.tokenizer, join(dir, 'hf'), quantization === 'int8' ? ['int8'] : []);
    const impls: [Row['impl'], Row['quantization'], () => Promise<Trace>][] = [];
    try {
      const servings = [['atscale', 16, 'none'], ['sequential', 1, 'none'], ...(quantization === 'int8' ? [['atscale', 16, 'int8'] as const] : [])] as const;
      for (const [impl, slots, q] of servings) {
        const s = await startServer(ck, slots, threads, ['--quantization', q]);
        servers.push(s.proc);
        impls.push([impl, q, () => httpRequest(s.url)]);
      }
      impls.push(['transformers.js', 'none', await transformersJs(dir, 'none')]);
      if (quantization === 'int8') impls.push(['transformers.js', 'int8', await transformersJs(dir, 'int8')]);
      for (const [, , one] of impls) await one(); // warm-up
      const samples = new Map<string, Row[]>();
      for (let round = 0; round < rounds; round++) {
        loads.push(loadavg()[0]!);
        for (const c of levels) {
          const order = round % 2 ? [...impls].reverse() : impls;
          for (const [impl, q, one] of order) {
            // Two waves of c requests; transformers.js one (its 64 generate() calls in flight
            // take over a minute per wave here).
            const row = await measure(impl, q, c, Math.max(8, (impl === 'transformers.js' ? 1 : 2) * c), one);
            samples.set(`${impl}/${q}@${c}`, [...(samples.get(`${impl}/${q}@${c}`) ?? []), row]);
          }
        }
      }
      loads.push(loadavg()[0]!);
      for (const [impl, q] of impls) for (const c of levels) rows.push(medianRow(samples.get(`${impl}/${q}@${c}`)!));
    } finally {
      for (const p of servers) p.kill('SIGTERM');
    }
  } finally {
    for (const sig of ['SIGHUP', 'SIGINT', 'SIGTERM'] as const) process.off(sig, onSignal);
    rmSync(dir, { recursive: true, force: true });
  }
  if (flags.json) for (const r of rows) console.log(JSON.stringify(r));
  const at = (impl: Row['impl'], c: number, q: Row['quantization'] = 'none') => rows.find((r) => r.impl === impl && r.quantization === q && r.concurrency === c)?.out_tok_per_s ?? NaN;
  console.log(`\nserve: ${describe}${quantization === 'int8' ? '; int8 rows: serve --quantization int8 and transformers.js on the int8 export (q8)' : ''}; streaming completions of ${MAX_TOKENS} tokens, ${threads} ORT threads; medians of ${rounds} interleaved rounds`);
  console.log(`machine: ${cpus().length} cores (${cpus()[0]?.model ?? 'unknown'}), shared: load average (1 min) at each round's start and at the end ${loads.map((l) => l.toFixed(1)).join(', ')}; read ratios, not absolutes`);
  console.log('impl                 conc   req/s   out tok/s   TTFT p50/p99 ms   ITL p50/p99 ms');
  for (const r of rows) console.log(`${(r.quantization === 'int8' ? `${r.impl} int8` : r.impl).padEnd(20)} ${String(r.concurrency).padStart(4)} ${r.req_per_s.toFixed(2).padStart(7)} ${r.out_tok_per_s.toFixed(1).padStart(11)}   ${`${r.ttft_p50_ms.toFixed(0)}/${r.ttft_p99_ms.toFixed(0)}`.padStart(15)}   ${`${r.itl_p50_ms.toFixed(1)}/${r.itl_p99_ms.toFixed(1)}`.padStart(14)}`);
  for (const c of levels) {
    console.log(`c=${c}: atscale / sequential = ${(at('atscale', c) / at('sequential', c)).toFixed(2)}x, atscale / transformers.js = ${(at('atscale', c) / at('transformers.js', c)).toFixed(2)}x`);
    if (quantization === 'int8') console.log(`c=${c}, int8: atscale int8 / atscale = ${(at('atscale', c, 'int8') / at('atscale', c)).toFixed(2)}x, atscale int8 / transformers.js int8 = ${(at('atscale', c, 'int8') / at('transformers.js', c, 'int8')).toFixed(2)}x`);
  }
  return 0;
}
