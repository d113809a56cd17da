// `atscale merge`: fold a LoRA adapter into its base model's weights (W + scale * B A), giving a
// plain checkpoint that needs no adapter to run.
import { parseArgs, formatHelp, UsageError, type FlagSpec } from './args.js';

export const summary = 'fold a LoRA adapter into its base (--model BASE --adapter DIR --out DIR)';

const FLAGS: Record<string, FlagSpec> = {
  model: { type: 'string', help: 'base model directory (default: the base named in the adapter config)' },
  adapter: { type: 'string', help: 'LoRA adapter directory (or a fine-tune run holding adapter/)' },
  out: { type: 'string', help: 'output checkpoint directory' },
  help: { type: 'boolean', help: 'show this help' },
};

export async function run(argv: string[]): Promise<number> {
  const { flags } = parseArgs(argv, FLAGS, 'merge');
  if (flags.help) {
    console.log(formatHelp('merge', summary, FLAGS));
    return 0;
  }
  if (!flags.adapter || !flags.out) throw new UsageError('atscale merge: pass --adapter DIR and --out DIR');
  const { mergeAdapter } = await import('../engine/merge.js');
  const dir = mergeAdapter(flags.model as string | undefined, String(flags.adapter), String(flags.out));
  console.log(`merged into ${dir}`);
  return 0;
}
