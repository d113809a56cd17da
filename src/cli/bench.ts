// `atscale bench <name>` runs the same benchmarks as `npm run bench -- <name>`.
export const summary = 'run a benchmark (gemm, train, collectives, zero, plan, monitor); --json for JSON lines';

export async function run(argv: string[]): Promise<number> {
  const { runBench } = await import('../../bench/main.js');
  return runBench(argv);
}
