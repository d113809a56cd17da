// `atscale dashboard RUN_DIR...`: serve the live dashboard over finished or running runs until
// interrupted. Prints `listening on http://HOST:PORT` once the socket is bound.
import { existsSync, statSync } from 'node:fs';
import { parseArgs, formatHelp, UsageError, type FlagSpec } from './args.js';

export const summary = 'live web dashboard of training runs (atscale dashboard OUT [OUT2 ...] --port P)';

const FLAGS: Record<string, FlagSpec> = {
  port: { type: 'number', help: 'TCP port (0 picks a free one)', default: 6006 },
  host: { type: 'string', help: 'address to bind; off loopback every request needs the random token printed with the URL', default: '127.0.0.1' },
  help: { type: 'boolean', help: 'show this help' },
};

/** Starts the dashboard, prints its address, and resolves when SIGINT/SIGTERM closes it. */
export async function serveUntilInterrupted(runs: string[], host: string, port: number, log: (s: string) => void = console.log): Promise<void> {
  const { startDashboard } = await import('../dashboard/index.js');
  const d = await startDashboard({ runs, host, port });
  log(`listening on ${d.url}`);
  await closeOnSignal(() => d.close());
}

/** Resolves once SIGINT or SIGTERM arrives and `close` has finished. */
export function closeOnSignal(close: () => Promise<void>): Promise<void> {
  return new Promise<void>((res) => {
    const stop = () => {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      void close().then(res);
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
  });
}

export function checkRunDirs(runs: string[], command: string): void {
  for (const r of runs) {
    if (!existsSync(r) || !statSync(r).isDirectory()) throw new UsageError(`atscale ${command}: run directory ${r} does not exist; pass the --out folder of atscale train`);
  }
}

export async function run(argv: string[]): Promise<number> {
  const { flags, positional } = parseArgs(argv, FLAGS, 'dashboard');
  if (flags.help) {
    console.log(formatHelp('dashboard RUN_DIR...', summary, FLAGS));
    return 0;
  }
  const runs = positional.length ? positional : ['out'];
  checkRunDirs(runs, 'dashboard');
  const port = flags.port as number;
  if (!(Number.isInteger(port) && port >= 0 && port < 65536)) throw new UsageError(`atscale dashboard: --port must be an integer in 0..65535, got ${port}`);
  await serveUntilInterrupted(runs, String(flags.host), port);
  return 0;
}
