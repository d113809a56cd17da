// `npm run -s bench -- ckpt-fuzz [--json] [--mutations N] [--seed S]`: damages a real checkpoint
// in N ways (bit flips, truncation of every region, header and manifest edits, missing and
// swapped files, files of another run, and edits that reseal the manifest so only the meaning
// is wrong: dtypes, shapes, extra/missing tensors and layers, meta.json fields of the wrong
// type or range, foreign tokenizers; for universal checkpoints also missing, extra, swapped,
// renamed and foreign shards and resealed manifest edits of dtypes, shapes, ranges, layout,
// splits and stages: bench/ckpt-fuzz-universal.ts) and runs the loaders of `train --resume` and `sample` on
// each. Every one must be refused with an error naming the file or checkpoint; mutations run
// in child processes so a hang (60 s without progress) or a native crash is counted, not fatal.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from '../src/cli/args.js';
import { runTraining } from '../src/engine/train-loop.js';
import { preset } from '../src/models/presets.js';
import { convertCheckpoint, parseLayout } from '../src/engine/universal/convert.js';

export interface FuzzSummary {
  bench: 'ckpt-fuzz';
  mutations: number;
  refused: number;
  loaded: number;
  crashed: number;
  hung: number;
  /** Refused, but the message named neither the checkpoint nor a file. */
  unnamed: number;
  byKind: Record<string, Record<string, number>>;
  examples: string[];
}

const CHILD = fileURLToPath(new URL('./ckpt-fuzz-child.js', import.meta.url));
const HANG_MS = 60_000;

async function makeCheckpoint(work: string, name: string, seed: number): Promise<string> {
  const corpus = join(work, 'corpus.txt');
  writeFileSync(corpus, Array.from({ length: 80 }, (_, i) => `line ${i}: the quick brown fox.\n`).join(''));
  const out = join(work, name);
  const hyper = { ...preset('cpu-small').train, batchSize: 2, maxIters: 2, evalInterval: 2, evalIters: 1, logInterval: 1, warmupIters: 1, decayIters: 2 };
  await runTraining({ model: { nLayer: 2, nHead: 2, nEmbd: 16, blockSize: 8, bias: true }, hyper, data: corpus, tokenizer: 'char', seed, threads: 1, quiet: true, out });
  return join(out, 'ckpt');
}

/** Runs mutations [0, n) in child processes; never throws for what a mutation does. */
export async function fuzzCheckpoints(n: number, seed = 1): Promise<FuzzSummary> {
  const work = mkdtempSync(join(tmpdir(), 'atscale-ckpt-fuzz-'));
  const s: FuzzSummary = { bench: 'ckpt-fuzz', mutations: 0, refused: 0, loaded: 0, crashed: 0, hung: 0, unnamed: 0, byKind: {}, examples: [] };
  const count = (i: number, kind: string, outcome: string, message = '') => {
    s.mutations++;
    (s as unknown as Record<string, number>)[outcome]!++;
    const k = (s.byKind[kind] ??= {});
    k[outcome] = (k[outcome] ?? 0) + 1;
    if (outcome !== 'refused' && s.examples.length < 20) s.examples.push(`#${i} ${kind}: ${outcome}${message ? `: ${message}` : ''}`);
  };
  try {
    const base = await makeCheckpoint(work, 'base', 11);
    const other = await makeCheckpoint(work, 'other', 12);
    // The same two runs as universal checkpoints of an 8-rank layout (dp2 x tp2 x pp2, ZeRO-1).
    const [ubase, uother] = [base, other].map((dir) => {
      const dst = `${dir}-universal`;
      convertCheckpoint(dir, dst, parseLayout('dp=2,tp=2,pp=2,zero=1'));
      return dst;
    });
    let next = 0;
    while (next < n) {
      const from = next;
      const child = spawn(process.execPath, [CHILD, work, base, other, ubase!, uother!, String(seed), String(from), String(n)], { stdio: ['ignore', 'pipe', 'pipe'] });
      let buf = '';
      let timer: NodeJS.Timeout;
      const arm = () => {
        clearTimeout(timer);
        timer = setTimeout(() => child.kill('SIGKILL'), HANG_MS);
      };
      arm();
      child.stdout!.on('data', (d: Buffer) => {
        buf += d.toString();
        let nl: number;
        while ((nl = buf.indexOf('\n')) >= 0) {
          const line = buf.slice(0, nl);
          buf = buf.slice(nl + 1);
          const r = JSON.parse(line) as { i: number; kind: string; outcome: string; message: string };
          count(r.i, r.kind, r.outcome, r.message);
          next = r.i + 1;
          arm();
        }
      });
      child.stderr!.resume();
      const { code, signal } = await new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((res) => child.once('close', (code, signal) => res({ code, signal })));
      clearTimeout(timer!);
      if (next < n && (code !== 0 || signal)) {
        // The mutation in progress hung (killed at the deadline) or crashed the process.
        const { ALL_MUTATIONS } = await import('./ckpt-fuzz-universal.js');
        count(next, ALL_MUTATIONS[next % ALL_MUTATIONS.length]!.kind, signal === 'SIGKILL' ? 'hung' : 'crashed', `child ${signal ?? `status ${code}`}`);
        next++;
      }
      if (next === from) break; // no progress at all: do not loop forever
    }
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
  return s;
}

export async function run(argv: string[]): Promise<number> {
  const { flags } = parseArgs(argv, {
    json: { type: 'boolean', help: 'one JSON line' },
    mutations: { type: 'number', help: 'how many mutations', default: 1000, int: true, min: 1, max: 1_000_000 },
    seed: { type: 'number', help: 'mutation seed', default: 1, int: true, min: 0, max: 1e9 },
  }, 'bench ckpt-fuzz');
  const s = await fuzzCheckpoints(flags.mutations as number, flags.seed as number);
  if (flags.json) {
    console.log(JSON.stringify({ bench: s.bench, mutations: s.mutations, refused: s.refused, loaded: s.loaded, crashed: s.crashed, hung: s.hung, unnamed: s.unnamed }));
  } else {
    console.log(`checkpoint fuzzer: ${s.mutations} mutations, ${s.refused} refused naming the file, ${s.unnamed} refused without naming it, ${s.loaded} loaded, ${s.crashed} crashed, ${s.hung} hung`);
    console.log('kind'.padEnd(34) + 'refused  other');
    for (const [kind, c] of Object.entries(s.byKind)) console.log(kind.padEnd(34) + String(c.refused ?? 0).padStart(7) + '  ' + Object.entries(c).filter(([k]) => k !== 'refused').map(([k, v]) => `${k} ${v}`).join(', '));
    for (const e of s.examples) console.log('  ' + e);
  }
  return s.refused === s.mutations ? 0 : 1;
}
