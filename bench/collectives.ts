// `npm run bench -- collectives [--json] [--ranks 2,4] [--sizes ...] [--no-gloo]`: bus bandwidth
// of atscale's all_reduce, all_gather and reduce_scatter on float32 buffers over 127.0.0.1, 2
// and 4 worker processes, beside torch.distributed's gloo backend on the same sizes and ranks
// in the same run (bench/peers/gloo_collectives.py), with the ratio. nccl-tests definitions:
// algbw = bytes / time (bytes = the full buffer), all_reduce busbw = algbw * 2(n-1)/n,
// all_gather and reduce_scatter busbw = algbw * (n-1)/n. Time per call is the slowest rank's,
// the median over several calls. Also measures the reduction kernel alone and the
// small-message crossover between direct exchange and the ring.
import { findFreePort } from '../src/launch/free-port.js';
import { spawn } from 'node:child_process';
import { runLocalJob } from '../src/launch/local-job.js';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseArgs } from '../src/cli/args.js';
import { chunkRange, initProcessGroup, sumInto, type ProcessGroup } from '../src/dist/index.js';
import { median } from '../src/runtime/median.js';

type Op = 'all_reduce' | 'all_gather' | 'reduce_scatter';
const OPS: Op[] = ['all_reduce', 'all_gather', 'reduce_scatter'];
const PYTHON = '/usr/bin/python3';

interface Timing {
  op: Op | 'all_reduce_ring' | 'all_reduce_direct';
  bytes: number;
  ranks: number;
  seconds: number;
}

const itersFor = (bytes: number) => (bytes <= 1 << 20 ? 20 : bytes <= 16 << 20 ? 7 : 3);

export function busbw(op: string, bytes: number, ranks: number, seconds: number): number {
  const algbw = bytes / seconds / 1e9;
  return op.startsWith('all_reduce') ? (algbw * 2 * (ranks - 1)) / ranks : (algbw * (ranks - 1)) / ranks;
}

async function timeOp(pg: ProcessGroup, iters: number, fn: () => Promise<void>): Promise<number> {
  await fn(); // warm-up: first-touch page faults and JIT
  const times: number[] = [];
  const slowest = new Float32Array(1);
  for (let i = 0; i < iters; i++) {
    await pg.barrier();
    const t0 = performance.now();
    await fn();
    slowest[0] = (performance.now() - t0) / 1000;
    await pg.allReduce(slowest, 'max');
    times.push(slowest[0]);
  }
  return median(times);
}

/** Runs inside each spawned worker; rank 0 prints one JSON Timing per line. */
async function worker(): Promise<void> {
  const sizes = process.env.BENCH_SIZES!.split(',').map(Number);
  const ops = process.env.BENCH_OPS!.split(',') as Op[];
  const pg = await initProcessGroup();
  const n = pg.worldSize;
  const report = (t: Timing) => pg.rank === 0 && console.log(JSON.stringify(t));
  for (const op of ops) {
    for (const bytes of sizes) {
      const len = bytes / 4;
      const full = new Float32Array(len).fill(1);
      const [a, b] = chunkRange(len, n, pg.rank);
      const part = new Float32Array(b - a).fill(1);
      const fn = op === 'all_reduce' ? () => pg.allReduce(full) : op === 'all_gather' ? () => pg.allGather(part, full) : () => pg.reduceScatter(full, part);
      report({ op, bytes, ranks: n, seconds: await timeOp(pg, itersFor(bytes), fn) });
    }
  }
  // Crossover: the same small all-reduces forced through each algorithm.
  if (ops.includes('all_reduce')) {
    const saved = pg.options.smallMessageBytes;
    for (const bytes of [1024, 4096, 16384, 65536, 262144, 1 << 20]) {
      const buf = new Float32Array(bytes / 4).fill(1);
      for (const algo of ['direct', 'ring'] as const) {
        pg.options.smallMessageBytes = algo === 'direct' ? Infinity : 0;
        report({ op: `all_reduce_${algo}`, bytes, ranks: n, seconds: await timeOp(pg, 30, () => pg.allReduce(buf)) });
      }
    }
    pg.options.smallMessageBytes = saved;
  }
  await pg.barrier();
  await pg.destroy();
}

const freePort = (): Promise<number> => findFreePort('127.0.0.1');

/** Starts `cmd` and returns its stdout lines; rejects with its stderr when it fails. */
function runProcess(cmd: string, args: string[], env: NodeJS.ProcessEnv): Promise<string[]> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve(out.split('\n').filter((l) => l.startsWith('{'))) : reject(new Error(`${cmd} ${args.join(' ')} exited ${code}: ${err.slice(-2000)}`))));
  });
}

async function runAtscale(ranks: number, sizes: number[], ops: Op[]): Promise<Timing[]> {
  const exits = await runLocalJob({ script: fileURLToPath(import.meta.url), world: ranks, env: { ATSCALE_BENCH_WORKER: '1', BENCH_SIZES: sizes.join(','), BENCH_OPS: ops.join(',') }, timeoutMs: 600_000 });
  const bad = exits.find((e) => e.code !== 0);
  if (bad) throw new Error(`collectives bench: rank ${bad.rank} exited ${bad.code ?? bad.signal}: ${bad.stderr.slice(-2000)}`);
  return exits[0]!.stdout.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Timing);
}

async function runGloo(ranks: number, sizes: number[], ops: Op[]): Promise<{ timings: Timing[]; skipped: string[] }> {
  const script = fileURLToPath(new URL('../../bench/peers/gloo_collectives.py', import.meta.url));
  if (!existsSync(PYTHON)) return { timings: [], skipped: [`gloo: ${PYTHON} not found`] };
  const lines = await runProcess(PYTHON, [script, '--ranks', String(ranks), '--port', String(await freePort()), '--sizes', sizes.join(','), '--ops', ops.join(',')], process.env);
  const timings: Timing[] = [];
  const skipped: string[] = [];
  for (const l of lines) {
    const r = JSON.parse(l) as Timing & { skip?: string };
    if (r.skip) skipped.push(`gloo${r.op ? ` ${r.op}` : ''} (${ranks} ranks): ${r.skip}`);
    else timings.push(r);
  }
  return { timings, skipped };
}

/** GB/s of sumInto on 64 MiB, read two operands and write one (counted as 12 bytes/element). */
function reduceSpeed(): { gbps: number; gelems: number } {
  const n = 16 << 20;
  const a = new Float32Array(n).fill(1);
  const b = new Float32Array(n).fill(2);
  const times: number[] = [];
  for (let i = 0; i < 7; i++) {
    const t0 = performance.now();
    sumInto(a, b);
    times.push((performance.now() - t0) / 1000);
  }
  const t = median(times);
  return { gbps: (12 * n) / t / 1e9, gelems: n / t / 1e9 };
}

const fmtBytes = (b: number) => (b >= 1 << 20 ? `${b / (1 << 20)} MiB` : `${b / 1024} KiB`);
const r3 = (x: number) => Math.round(x * 1000) / 1000;

export async function run(argv: string[]): Promise<number> {
  const { flags } = parseArgs(argv, {
    json: { type: 'boolean', help: 'also print one JSON line per measurement' },
    ranks: { type: 'string', help: 'comma-separated process counts', default: '2,4' },
    sizes: { type: 'string', help: 'comma-separated buffer sizes in bytes (default 4 KiB to 256 MiB, powers of 4)' },
    ops: { type: 'string', help: 'comma-separated ops', default: OPS.join(',') },
    gloo: { type: 'boolean', help: 'run the torch.distributed gloo peer (--gloo=false to skip)', default: true },
  }, 'bench collectives');
  const sizes = flags.sizes ? String(flags.sizes).split(',').map(Number) : Array.from({ length: 9 }, (_, i) => 4096 * 4 ** i);
  for (const s of sizes) if (!Number.isInteger(s) || s < 4 || s % 4 !== 0) throw new Error(`--sizes: ${s} is not a positive multiple of 4 bytes`);
  const ops = String(flags.ops).split(',') as Op[];
  for (const op of ops) if (!OPS.includes(op)) throw new Error(`--ops: unknown op '${op}' (use ${OPS.join(', ')})`);
  const rankCounts = String(flags.ranks).split(',').map(Number);

  const red = reduceSpeed();
  console.log(`reduction kernel (sumInto, 64 MiB): ${red.gelems.toFixed(2)} G elements/s = ${red.gbps.toFixed(1)} GB/s of memory traffic`);
  if (flags.json) console.log(JSON.stringify({ bench: 'collectives', op: 'reduce_kernel', elements_per_s: Math.round(red.gelems * 1e9), gbps: r3(red.gbps) }));

  const skipped: string[] = [];
  const rows: { op: string; bytes: number; ranks: number; ours: number; gloo: number | null }[] = [];
  const crossover: Timing[] = [];
  for (const ranks of rankCounts) {
    const ours = await runAtscale(ranks, sizes, ops);
    const gloo = flags.gloo ? await runGloo(ranks, sizes, ops) : { timings: [], skipped: ['gloo: skipped by --gloo=false'] };
    skipped.push(...gloo.skipped);
    for (const t of ours) {
      if (t.op.startsWith('all_reduce_')) {
        crossover.push(t);
        continue;
      }
      const g = gloo.timings.find((x) => x.op === t.op && x.bytes === t.bytes);
      const row = { op: t.op, bytes: t.bytes, ranks, ours: busbw(t.op, t.bytes, ranks, t.seconds), gloo: g ? busbw(g.op, g.bytes, ranks, g.seconds) : null };
      rows.push(row);
      if (flags.json) {
        console.log(JSON.stringify({ bench: 'collectives', op: t.op, bytes: t.bytes, ranks, impl: 'atscale', busbw_gbps: r3(row.ours), seconds: t.seconds }));
        if (g) console.log(JSON.stringify({ bench: 'collectives', op: g.op, bytes: g.bytes, ranks, impl: 'gloo', busbw_gbps: r3(row.gloo!), seconds: g.seconds }));
      }
    }
  }
  console.log('\nop              bytes      ranks  atscale busbw GB/s  gloo busbw GB/s  atscale/gloo');
  for (const r of rows) {
    const g = r.gloo === null ? '-' : r.gloo.toFixed(3);
    const ratio = r.gloo === null ? '-' : (r.ours / r.gloo).toFixed(2);
    console.log(`${r.op.padEnd(16)}${fmtBytes(r.bytes).padStart(9)}  ${String(r.ranks).padStart(5)}  ${r.ours.toFixed(3).padStart(18)}  ${g.padStart(15)}  ${ratio.padStart(12)}`);
  }
  console.log('\nall_reduce crossover (median us per call): direct exchange vs ring');
  for (const t of crossover.filter((x) => x.op === 'all_reduce_direct')) {
    const ring = crossover.find((x) => x.op === 'all_reduce_ring' && x.bytes === t.bytes && x.ranks === t.ranks)!;
    const winner = t.seconds <= ring.seconds ? 'direct' : 'ring';
    console.log(`  ${fmtBytes(t.bytes).padStart(8)}  ${t.ranks} ranks  direct ${(t.seconds * 1e6).toFixed(0).padStart(6)}  ring ${(ring.seconds * 1e6).toFixed(0).padStart(6)}  -> ${winner}`);
    if (flags.json) console.log(JSON.stringify({ bench: 'collectives', op: 'all_reduce_crossover', bytes: t.bytes, ranks: t.ranks, direct_s: t.seconds, ring_s: ring.seconds }));
  }
  if (flags.gloo) console.log('note: gloo all_gather uses the list form (torch 1.13 gloo has no all_gather_into_tensor), which costs it extra copies');
  for (const s of skipped) console.log(`skipped: ${s}`);
  return 0;
}

if (process.env.ATSCALE_BENCH_WORKER === '1') await worker();
