// `atscale data addition --out FILE`: writes a training corpus the project generates itself
// (no network, no download), so every command of the README runs in a fresh clone.
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { parseArgs, formatHelp, UsageError, type FlagSpec } from './args.js';

export const summary = 'write a corpus the project generates itself (atscale data addition --out FILE)';

const KINDS = ['addition'];

const FLAGS: Record<string, FlagSpec> = {
  out: { type: 'string', help: 'output text file', default: 'out/addition.txt' },
  problems: { type: 'number', help: 'problems (lines) to write (at most half of all operand pairs)', default: 4000 },
  digits: { type: 'number', help: 'digits per operand', default: 2 },
  seed: { type: 'number', help: 'random seed', default: 1 },
  help: { type: 'boolean', help: 'show this help' },
};

export async function run(argv: string[]): Promise<number> {
  const { flags, positional } = parseArgs(argv, FLAGS, 'data');
  if (flags.help) {
    console.log(formatHelp('data addition', `${summary}\n\naddition: "a+b=s" per line, operands zero-padded, the sum written least-significant digit first`, FLAGS));
    return 0;
  }
  const kind = positional[0];
  if (kind === undefined || !KINDS.includes(kind) || positional.length > 1) throw new UsageError(`atscale data: name one corpus (${KINDS.join(', ')}), e.g. atscale data addition --out out/addition.txt`);
  const digits = flags.digits as number;
  const problems = flags.problems as number;
  if (!(Number.isInteger(digits) && digits >= 1 && digits <= 6)) throw new UsageError(`atscale data: --digits must be an integer in 1..6, got ${digits}`);
  if (!(Number.isInteger(problems) && problems >= 1)) throw new UsageError(`atscale data: --problems must be a positive integer, got ${problems}`);
  const { additionCorpus } = await import('../data/addition.js');
  const { text } = additionCorpus(digits, problems, 0, flags.seed as number);
  const out = String(flags.out);
  mkdirSync(dirname(out), { recursive: true });
  writeFileSync(out, text);
  console.log(`wrote ${out}: ${problems} addition problems with ${digits}-digit operands (${text.length} characters)`);
  return 0;
}
