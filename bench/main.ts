// `npm run bench -- <name> [--json] [flags]`: one module per benchmark under bench/.
// Every benchmark prints a readable table and, with --json, one JSON line per measurement.
const BENCHES: Record<string, () => Promise<{ run(argv: string[]): Promise<number> }>> = {
  gemm: () => import('./gemm.js'),
  train: () => import('./train.js'),
  collectives: () => import('./collectives.js'),
  zero: () => import('./zero.js'),
  plan: () => import('./plan.js'),
  sample: () => import('./sample.js'),
  'ckpt-async': () => import('./ckpt-async.js'),
  'ckpt-fuzz': () => import('./ckpt-fuzz.js'),
  chaos: () => import('./chaos.js'),
  pipeline: () => import('./pipeline.js'),
  activations: () => import('./activations.js'),
  layouts: () => import('./layouts.js'),
  'gc-threads': () => import('./gc-threads.js'),
  equivalence: () => import('./equivalence.js'),
  'equivalence-floor': () => import('./equivalence-floor.js'),
  serve: () => import('./serve.js'),
  finetune: () => import('./finetune.js'),
  monitor: () => import('./monitor.js'),
};

export async function runBench(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  const load = name ? BENCHES[name] : undefined;
  if (!load) {
    console.error(`usage: npm run bench -- <${Object.keys(BENCHES).join('|')}> [--json]`);
    return 2;
  }
  return (await load()).run(rest);
}

if (process.argv[1] && import.meta.url === new URL(`file://${process.argv[1]}`).href) {
  runBench(process.argv.slice(2)).then((code) => {
    process.exitCode = code;
  });
}
