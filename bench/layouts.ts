// `npm run bench -- layouts [--json] [--machine spec.json] [--iters N] [--rounds R]`: the planner against the
// engine on this machine. In each of R rounds, `atscale plan --calibrate --threads 1` with the
// bench's model shape measures the machine and times that shape's programs (unless a spec is
// given), then each local layout (1 process, dp2, pp2 with each recompute granularity,
// pp2 interleaved, dp2 x pp2) trains the cpu-small shape (4 layers, 128 wide, context 64) under
// `atscale launch ... train` with one thread per rank, in R alternating rounds over all layouts
// (each layout's figure: the median over rounds of its run's median step), and it is printed
// beside that round's `atscale plan --machine ... --dp --pp --interleave --micro-batch --recompute`'s
// prediction (target: within 25%). Every layout trains the same 4 micro-batches of 8 rows per step.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from '../src/cli/args.js';
import { backgroundThreads, cpuSample } from '../src/cli/host-load.js';
import { median } from '../src/runtime/median.js';

const CLI = fileURLToPath(new URL('../src/cli/main.js', import.meta.url));
const SHAPE = ['--n-layer', '4', '--n-head', '4', '--n-embd', '128', '--block-size', '64', '--dropout', '0'];
/** The same shape as `atscale plan` names it (tinyshakespeare's 65 characters). */
const SHAPE_FLAGS = ['--layers', '4', '--heads', '4', '--hidden', '128', '--vocab', '65', '--seq-len', '64'];
const ROWS = 8;
const M = 4;

export interface Layout {
  name: string;
  dp: number;
  pp: number;
  v: number;
  recompute: 'none' | 'selective' | 'full';
}

export const LAYOUTS: Layout[] = [
  { name: '1 process', dp: 1, pp: 1, v: 1, recompute: 'none' },
  { name: 'dp2', dp: 2, pp: 1, v: 1, recompute: 'none' },
  { name: 'pp2 full', dp: 1, pp: 2, v: 1, recompute: 'full' },
  { name: 'pp2 selective', dp: 1, pp: 2, v: 1, recompute: 'selective' },
  { name: 'pp2 none', dp: 1, pp: 2, v: 1, recompute: 'none' },
  { name: 'pp2 v2', dp: 1, pp: 2, v: 2, recompute: 'full' },
  { name: 'dp2 x pp2', dp: 2, pp: 2, v: 1, recompute: 'full' },
];

function cli(args: string[], what: string): string {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', timeout: 600_000, env: { ...process.env, WORLD_SIZE: '1' } });
  if (r.status !== 0) throw new Error(`${what} exited ${r.status}: ${(r.stderr ?? '').slice(-1500)}`);
  return r.stdout;
}

const r1 = (x: number) => Math.round(x * 10) / 10;
const r2 = (x: number) => Math.round(x * 100) / 100;
const r3 = (x: number) => Math.round(x * 1000) / 1000;

/** Median step time of a training run (the steps after the first two, which pay compilation). */
export function measure(l: Layout, data: string, out: string, iters: number): number {
  const world = l.dp * l.pp;
  const flags = ['train', '--data', data, ...SHAPE, '--batch-size', String(ROWS * l.dp), '--grad-accum', String(M), '--max-iters', String(iters), '--eval-interval', String(iters * 10), '--eval-iters', '1', '--log-interval', '1', '--threads', '1', '--quiet', '--out', out];
  // The granularity every layout is predicted at, the one process's too (its fused step would
  // otherwise recompute selectively inside its graph by default).
  flags.push('--recompute-granularity', l.recompute);
  if (l.pp > 1) flags.push('--pipeline-model-parallel-size', String(l.pp));
  if (l.v > 1) flags.push('--virtual-pipeline-model-parallel-size', String(l.v));
  cli(world === 1 ? flags : ['launch', '--nproc-per-node', String(world), '--', process.execPath, CLI, ...flags], `train (${l.name})`);
  const steps = readFileSync(join(out, 'metrics.jsonl'), 'utf8').trim().split('\n').map((x) => JSON.parse(x) as { iter?: number; step_ms?: number }).filter((x) => x.step_ms !== undefined && x.iter! > 2).map((x) => x.step_ms!);
  if (steps.length === 0) throw new Error(`train (${l.name}) logged no step times after step 2`);
  return median(steps);
}

/** The shared corpus when this checkout has it, else a small generated one written into `dir`. */
export function trainingText(dir: string): string {
  const shared = '/work/shared/data/tinyshakespeare.txt';
  if (existsSync(shared)) return shared;
  const data = join(dir, 'corpus.txt');
  writeFileSync(data, Array.from({ length: 4000 }, (_, i) => `${i} little pigs went to market, ${i * 7} stayed home.\n`).join(''));
  return data;
}

interface Prediction {
  ms: number;
  basis: string;
  parts: Record<string, number>;
  handoffs: number;
}

function predict(l: Layout, machine: string, backgroundLoad?: number): Prediction {
  const out = cli(['plan', ...(backgroundLoad === undefined ? [] : ['--background-load', String(backgroundLoad)]), '--machine', machine, ...SHAPE_FLAGS, '--global-batch', String(ROWS * l.dp * M), '--micro-batch', String(ROWS), '--dp', String(l.dp), '--pp', String(l.pp), '--interleave', String(l.v), '--recompute', l.recompute, '--json'], `plan (${l.name})`);
  const r = JSON.parse(out.trim().split('\n').pop()!) as { predicted_ms_per_iter: number; basis: string; parts_ms: Record<string, number>; handoffs: number };
  return { ms: r.predicted_ms_per_iter, basis: r.basis, parts: r.parts_ms, handoffs: r.handoffs };
}

export async function run(argv: string[]): Promise<number> {
  const { flags } = parseArgs(argv, { json: { type: 'boolean', help: 'JSON lines' }, machine: { type: 'string', help: 'a machine spec from atscale plan --calibrate --threads 1 with the bench\'s shape (default: calibrate at the start of every round)' }, iters: { type: 'number', help: 'training steps per layout and round', default: 8 }, rounds: { type: 'number', help: 'rounds over all layouts (each layout\'s median over them)', default: 4 } }, 'bench layouts');
  const json = flags.json === true;
  const dir = mkdtempSync(join(tmpdir(), 'atscale-layouts-'));
  try {
    // Without --machine, the machine is calibrated again at the start of every round and that
    // round's layouts are predicted from it: this host's speed drifts by a quarter over minutes
    // (the same stage calls timed 3.8 / 12.2 ms in one calibration and 5.2 / 16.1 ms a few
    // minutes later), so a prediction is checked against runs taken right after its calibration.
    const given = flags.machine as string | undefined;
    const calibrate = (k: number): string => {
      if (given) return given;
      const machine = join(dir, `machine-${k}.json`);
      // On a loaded host a calibration can contradict itself (a step faster than its GEMMs
      // alone); it is taken again, up to three times.
      for (let attempt = 1; ; attempt++) {
        try {
          cli(['plan', '--calibrate', '--threads', '1', ...SHAPE_FLAGS, '--micro-batch', String(ROWS), '--json', '--out', machine], 'plan --calibrate');
          return machine;
        } catch (e) {
          if (attempt === 3) throw e;
          console.error(`calibration ${attempt} failed, again: ${(e as Error).message.split('\n').at(-2) ?? ''}`);
        }
      }
    };
    const data = trainingText(dir);
    // Every layout once per round, round after round, so that a burst of load on the shared
    // host lands on all of them rather than on one; each layout's figure is its median over rounds.
    const rounds = flags.rounds as number;
    const runs = LAYOUTS.map(() => [] as { measured: number; predicted: Prediction; atRun?: Prediction; others?: number; load: number }[]);
    for (let k = 0; k < rounds; k++) {
      const machine = calibrate(k);
      // The calibration the round's predictions stand on (its rates, programs, the load it ran beside).
      if (json) console.log(JSON.stringify({ bench: 'layouts', round: k + 1, machine: JSON.parse(readFileSync(machine, 'utf8')) }));
      LAYOUTS.forEach((l, i) => {
        const cpu0 = cpuSample();
        const measured = measure(l, data, join(dir, `${l.name.replace(/\W+/g, '-')}-${k}`), flags.iters as number);
        const cpu1 = cpuSample();
        const others = cpu0 && cpu1 ? backgroundThreads(cpu0, cpu1, l.dp * l.pp, availableParallelism()) : undefined;
        // Load on the host as this layout finished (1-minute average, its own ranks included).
        const load = loadavg()[0]!;
        const predicted = predict(l, machine);
        // The same model told the load this run actually shared the host with (not the issue's
        // figure, which stands on the calibration alone: it tells model error from load drift).
        const atRun = others === undefined ? undefined : predict(l, machine, r2(others));
        runs[i]!.push({ measured, predicted, atRun, others, load });
        if (json) console.log(JSON.stringify({ bench: 'layouts', round: k + 1, layout: l.name, measured_ms: r1(measured), predicted_ms: r1(predicted.ms), ratio: r3(predicted.ms / measured), load_avg_1m: r2(load), ...(others === undefined ? {} : { run_background_threads: r2(others) }) }));
      });
    }
    const rows: string[][] = [];
    let base: number | undefined;
    let within = 0;
    LAYOUTS.forEach((l, i) => {
      const rs = runs[i]!;
      const measured = median(rs.map((r) => r.measured));
      const predictedMs = median(rs.map((r) => r.predicted.ms));
      const load = median(rs.map((r) => r.load));
      const othersAll = rs.map((r) => r.others).filter((x) => x !== undefined);
      const others = othersAll.length === rs.length ? median(othersAll) : undefined;
      // Each round's prediction over that round's measurement; the layout's figure is their median.
      const ratio = median(rs.map((r) => r.predicted.ms / r.measured));
      if (Math.abs(ratio - 1) <= 0.25) within++;
      const atRun = rs.every((r) => r.atRun) ? median(rs.map((r) => r.atRun!.ms / r.measured)) : undefined;
      const p = rs.at(-1)!.predicted;
      // The same ratio relative to the 1-process layout's: what remains when the machine's
      // state drifted (other jobs on a shared host).
      base ??= ratio;
      const rec = {
        bench: 'layouts', layout: l.name, dp: l.dp, pp: l.pp, v: l.v, recompute: l.recompute, micro_batches: M, rows: ROWS, rounds, measured_ms: r1(measured), measured_ms_by_round: rs.map((r) => r1(r.measured)), predicted_ms: r1(predictedMs), predicted_ms_by_round: rs.map((r) => r1(r.predicted.ms)),
        ratio: r3(ratio), ratio_by_round: rs.map((r) => r3(r.predicted.ms / r.measured)), within_25pct: Math.abs(ratio - 1) <= 0.25, ratio_vs_1process: r3(ratio / base), load_avg_1m: r2(load), handoffs: p.handoffs,
        ...(atRun !== undefined ? { run_background_threads: r2(others!), ratio_at_run_load: r3(atRun) } : {}), basis: p.basis, parts_ms_last_round: Object.fromEntries(Object.entries(p.parts).map(([k, v]) => [k, r1(v)])),
      };
      if (json) console.log(JSON.stringify(rec));
      rows.push([l.name, measured.toFixed(1), rs.map((r) => r.measured.toFixed(0)).join(' '), predictedMs.toFixed(1), rs.map((r) => r.predicted.ms.toFixed(0)).join(' '), ratio.toFixed(2), rec.within_25pct ? 'yes' : 'no', rec.ratio_vs_1process.toFixed(2), String(p.handoffs), load.toFixed(1), others === undefined ? '-' : others.toFixed(1), atRun !== undefined ? atRun.toFixed(2) : '-']);
    });
    if (json) console.log(JSON.stringify({ bench: 'layouts', summary: true, within_25pct: within, layouts: LAYOUTS.length, rounds }));
    if (!json) {
      const head = ['layout', 'measured ms/step (median)', 'by round', 'planner ms/step (median)', 'by round', 'predicted / measured (median of rounds)', 'within 25%', 'ratio / 1-process ratio', 'handoffs', 'load average', 'others\' threads in run', 'ratio at that load'];
      const w = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
      for (const r of [head, ...rows]) console.log(r.map((c, i) => c.padEnd(w[i]!)).join('  '));
      console.log(`${within} of ${LAYOUTS.length} within 25% (${SHAPE.join(' ')}; ${M} micro-batches of ${ROWS} rows per replica; one thread per rank; each layout's median over ${rounds} alternating rounds of its median step after 2 warm-up steps, ${given ? `predicted from ${given}` : 'each round predicted from a calibration taken at its start'}; load average and others' threads: medians over the rounds; machine shared with other jobs)`);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  return 0;
}
