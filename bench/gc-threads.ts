// `npm run bench -- gc-threads [--json] [--rounds R] [--iters N]`: where ranks that share every
// core of this host collect garbage (runtime/gc-threads.ts). Each multi-process layout of the
// layouts bench trains the cpu-small shape with ATSCALE_GC_THREADS=background (V8's default:
// ArrayBuffers freed and the heap marked on background threads) and =main (what `auto` picks
// here), alternated R times; each figure is the median over rounds of a run's median step.
import { mkdtempSync, rmSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from '../src/cli/args.js';
import { LAYOUTS, measure, trainingText } from './layouts.js';
import { median } from '../src/runtime/median.js';

const MODES = ['background', 'main'] as const;

export async function run(argv: string[]): Promise<number> {
  const { flags } = parseArgs(argv, { json: { type: 'boolean', help: 'JSON lines' }, rounds: { type: 'number', help: 'alternations of the two modes per layout', default: 3 }, iters: { type: 'number', help: 'training steps per run', default: 12 } }, 'bench gc-threads');
  const json = flags.json === true;
  const dir = mkdtempSync(join(tmpdir(), 'atscale-gc-threads-'));
  const before = process.env.ATSCALE_GC_THREADS;
  try {
    const data = trainingText(dir);
    const rows: string[][] = [];
    for (const l of LAYOUTS.filter((x) => x.dp * x.pp > 1)) {
      const ms: Record<(typeof MODES)[number], number[]> = { background: [], main: [] };
      for (let k = 0; k < (flags.rounds as number); k++) {
        for (const mode of MODES) {
          process.env.ATSCALE_GC_THREADS = mode;
          ms[mode].push(measure(l, data, join(dir, `${l.name.replace(/\W+/g, '-')}-${mode}-${k}`), flags.iters as number));
        }
      }
      const bg = median(ms.background);
      const main = median(ms.main);
      const rec = { bench: 'gc-threads', layout: l.name, ranks: l.dp * l.pp, cores: availableParallelism(), background_ms: Math.round(bg * 10) / 10, main_ms: Math.round(main * 10) / 10, main_over_background: Math.round((main / bg) * 1000) / 1000, background_by_round: ms.background.map(Math.round), main_by_round: ms.main.map(Math.round) };
      if (json) console.log(JSON.stringify(rec));
      rows.push([l.name, bg.toFixed(1), ms.background.map((x) => x.toFixed(0)).join(' '), main.toFixed(1), ms.main.map((x) => x.toFixed(0)).join(' '), (main / bg).toFixed(2)]);
    }
    if (!json) {
      const head = ['layout', 'background GC ms/step', 'by round', 'main-thread GC ms/step', 'by round', 'main / background'];
      const w = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
      for (const r of [head, ...rows]) console.log(r.map((c, i) => c.padEnd(w[i]!)).join('  '));
      console.log(`cpu-small shape, one thread per rank, ${availableParallelism()} cores; medians over ${flags.rounds} alternated rounds of each run's median step after 2 warm-up steps`);
    }
  } finally {
    if (before === undefined) delete process.env.ATSCALE_GC_THREADS;
    else process.env.ATSCALE_GC_THREADS = before;
    rmSync(dir, { recursive: true, force: true });
  }
  return 0;
}
