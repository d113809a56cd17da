// `atscale ckpt convert SRC DST --layout dp=..,tp=..,pp=..,zero=..` and `atscale ckpt inspect DIR`:
// universal checkpoints rewritten for another layout (or exported as the plain single-process
// checkpoint, or as one safetensors state dict), and what a checkpoint holds, with checksums.
import { parseArgs, formatHelp, UsageError, type FlagSpec } from './args.js';

export const summary = 'convert a checkpoint to another layout (convert SRC DST --layout dp=..,tp=..,pp=..,zero=..) or inspect one (inspect DIR)';

const FLAGS: Record<string, FlagSpec> = {
  layout: { type: 'string', help: 'target layout: dp=N,tp=N,pp=N,zero=S (missing degrees are 1, zero 0); dp=1,tp=1,pp=1,zero=0 writes the plain single-process checkpoint', default: 'dp=1,tp=1,pp=1,zero=0' },
  'state-dict': { type: 'boolean', help: 'write DST as one safetensors file of the named parameters (no optimizer state), as PyTorch state dicts are saved' },
  help: { type: 'boolean', help: 'show this help' },
};

export async function run(argv: string[]): Promise<number> {
  const { flags, positional: positionals } = parseArgs(argv, FLAGS, 'ckpt');
  if (flags.help) {
    console.log(formatHelp('ckpt convert SRC DST | ckpt inspect DIR', summary, FLAGS));
    return 0;
  }
  const [sub, ...args] = positionals;
  if (sub === 'inspect') {
    if (args.length !== 1) throw new UsageError('atscale ckpt inspect: give one checkpoint directory (atscale ckpt inspect DIR)');
    const { inspectCheckpoint } = await import('../engine/universal/inspect.js');
    const r = inspectCheckpoint(args[0]!);
    console.log(r.text);
    return r.bad.length ? 1 : 0;
  }
  if (sub === 'convert') {
    if (args.length !== 2) throw new UsageError('atscale ckpt convert: give a source and a destination (atscale ckpt convert SRC DST --layout dp=2,tp=1,pp=2,zero=1)');
    const { convertCheckpoint, parseLayout } = await import('../engine/universal/convert.js');
    const r = convertCheckpoint(args[0]!, args[1]!, parseLayout(String(flags.layout)), { stateDict: flags.stateDict === true });
    const l = r.layout;
    const what = r.kind === 'universal' ? `a universal checkpoint for dp ${l.dp} x tp ${l.tp} x pp ${l.pp} (ZeRO ${l.zero}, ${l.world} shard files)` : r.kind === 'plain' ? 'the plain single-process checkpoint' : 'one safetensors state dict';
    console.log(`converted ${args[0]} into ${what} at ${args[1]} (${r.tensors} tensors)`);
    return 0;
  }
  throw new UsageError(`atscale ckpt: the subcommand must be convert or inspect, got ${sub === undefined ? 'none' : `'${sub}'`} (atscale ckpt --help)`);
}
