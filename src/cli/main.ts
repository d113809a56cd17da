// The `atscale` command: one small module per subcommand, loaded only when used, so that
// `atscale plan` never loads ONNX Runtime (DESIGN.md: plan/ runs where no model is built).
import { readFileSync } from 'node:fs';
import { UsageError } from './args.js';

/** Every subcommand module exports these two things. */
export interface Command {
  summary: string;
  run(argv: string[]): Promise<number>;
}

/** How long a finished command may wait for open handles (flushing output, closing links) before it exits anyway. */
const EXIT_GRACE_MS = 10_000;

const COMMANDS: Record<string, () => Promise<Command>> = {
  demo: () => import('./demo.js'),
  data: () => import('./data.js'),
  train: () => import('./train.js'),
  sample: () => import('./sample.js'),
  launch: () => import('./launch.js'),
  plan: () => import('./plan.js'),
  bench: () => import('./bench.js'),
  export: () => import('./export.js'),
  serve: () => import('./serve.js'),
  save: () => import('./save.js'),
  finetune: () => import('./finetune.js'),
  eval: () => import('./eval.js'),
  merge: () => import('./merge.js'),
  ckpt: () => import('./ckpt.js'),
  dashboard: () => import('./dashboard.js'),
};

export function version(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string };
  return pkg.version;
}

async function help(): Promise<string> {
  const lines = [`atscale ${version()}: train transformer language models at scale from TypeScript`, '', 'usage: atscale <command> [flags]   (atscale <command> --help for its flags)', '', 'commands:'];
  for (const [name, load] of Object.entries(COMMANDS)) {
    let summary: string;
    try {
      summary = (await load()).summary;
    } catch {
      summary = '(not built in this version)';
    }
    lines.push(`  ${name.padEnd(10)}${summary}`);
  }
  return lines.join('\n');
}

export async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  if (cmd === undefined || cmd === '--help' || cmd === '-h' || cmd === 'help') {
    console.log(await help());
    return cmd === undefined ? 1 : 0;
  }
  if (cmd === '--version' || cmd === '-v') {
    console.log(version());
    return 0;
  }
  const load = COMMANDS[cmd];
  if (!load) {
    console.error(`atscale: unknown command '${cmd}'. Commands: ${Object.keys(COMMANDS).join(', ')}`);
    return 2;
  }
  try {
    return await (await load()).run(rest);
  } catch (e) {
    if (e instanceof UsageError) {
      console.error(e.message);
      return 2;
    }
    const err = e as Error;
    console.error(`atscale ${cmd}: ${err.message}`);
    if (process.env.ATSCALE_DEBUG) console.error(err.stack);
    return 1;
  }
}

if (process.argv[1] && import.meta.url === new URL(`file://${process.argv[1]}`).href) {
  // Under `atscale launch`, beat from the first moment (compiling a big model takes a while).
  void import('../dist/heartbeat.js').then((h) => h.startHeartbeat());
  main(process.argv.slice(2)).then((code) => {
    process.exitCode = code;
    // The command is finished: a socket left half-open by a stopped peer must not keep this
    // process alive forever (the launcher would wait on it too). Unref'd: a clean exit is not delayed.
    setTimeout(() => {
      console.error(`atscale ${process.argv[2] ?? ''}: finished, but open handles kept the process alive for ${EXIT_GRACE_MS} ms; exiting with status ${code}`);
      process.exit(code);
    }, EXIT_GRACE_MS).unref();
  });
}
