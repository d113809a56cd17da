// `atscale demo` (what `npm start` runs): pretrain a small GPT on an addition corpus the
// project generates itself, then score it by exact-match accuracy on held-out problems.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs, formatHelp, type FlagSpec } from './args.js';
import { capIters } from './iter-cap.js';

export const summary = 'the main job: train a small GPT on built-in addition problems and score it (no network)';

const FLAGS: Record<string, FlagSpec> = {
  digits: { type: 'number', help: 'digits per operand', default: 2 },
  'max-iters': { type: 'number', help: 'training steps', default: 2500 },
  'train-problems': { type: 'number', help: 'problems in the training text', default: 4000 },
  'test-problems': { type: 'number', help: 'held-out problems to score', default: 200 },
  out: { type: 'string', help: 'output directory', default: 'out/demo' },
  threads: { type: 'number', help: 'ONNX Runtime threads' },
  seed: { type: 'number', help: 'random seed', default: 1 },
  help: { type: 'boolean', help: 'show this help' },
};

export async function run(argv: string[]): Promise<number> {
  const { flags } = parseArgs(argv, FLAGS, 'demo');
  if (flags.help) {
    console.log(formatHelp('demo', summary, FLAGS));
    return 0;
  }
  const { additionCorpus } = await import('../data/addition.js');
  const { runTraining } = await import('../engine/train-loop.js');
  const { Generator } = await import('../engine/generate.js');
  const out = String(flags.out);
  mkdirSync(out, { recursive: true });
  const digits = flags.digits as number;
  const { text, test } = additionCorpus(digits, flags.trainProblems as number, flags.testProblems as number, flags.seed as number);
  const dataPath = join(out, 'addition.txt');
  writeFileSync(dataPath, text);
  const maxIters = capIters(flags.maxIters as number);
  console.log(`atscale demo: ${flags.trainProblems} addition problems with ${digits}-digit operands (zero-padded, sums written least-significant digit first), ${test.length} held out`);
  const t0 = performance.now();
  const r = await runTraining({
    model: { nLayer: 2, nHead: 4, nEmbd: 128, blockSize: 32, dropout: 0, bias: true },
    hyper: { batchSize: 32, gradAccum: 1, maxIters, lr: 2e-3, minLr: 2e-4, warmupIters: 50, decayIters: maxIters, beta1: 0.9, beta2: 0.99, weightDecay: 0.1, gradClip: 1, evalInterval: Math.max(1, Math.floor(maxIters / 3)), evalIters: 10, logInterval: 25 },
    data: dataPath,
    tokenizer: 'char',
    // Windows start at a problem boundary, so digits sit at the same positions in every window.
    alignAfter: '\n',
    out,
    seed: flags.seed as number,
    threads: flags.threads as number | undefined,
  });
  const trainSeconds = (performance.now() - t0) / 1000;
  const gen = new Generator(r.model, await r.trainer.fullParams(), { threads: flags.threads as number | undefined });
  const newline = r.tokenizer.encode('\n')[0]!;
  let correct = 0;
  const shown: string[] = [];
  for (const p of test) {
    const ids = await gen.generate(Array.from(r.tokenizer.encode(p.prompt)), { maxNewTokens: digits + 2, temperature: 0, seed: 0 });
    const end = ids.indexOf(newline);
    const got = r.tokenizer.decode(end >= 0 ? ids.slice(0, end) : ids);
    if (got === p.answer) correct++;
    if (shown.length < 8) shown.push(`  ${p.prompt}${got}  (${got === p.answer ? 'right' : `wrong, expected ${p.answer}`}; reads ${[...got].reverse().join('')})`);
  }
  const accuracy = correct / test.length;
  console.log(`\ntrained ${maxIters} steps in ${trainSeconds.toFixed(0)} s, val loss ${r.valLoss.toFixed(3)}`);
  console.log(`samples (greedy, held-out problems):\n${shown.join('\n')}`);
  console.log(`\nexact-match accuracy on ${test.length} held-out problems: ${(accuracy * 100).toFixed(1)}%`);
  writeFileSync(join(out, 'result.json'), JSON.stringify({ accuracy, correct, total: test.length, val_loss: r.valLoss, train_seconds: trainSeconds }) + '\n');
  return 0;
}
