// `atscale eval`: batched generation on a JSONL file, scored against the references.
import { parseArgs, formatHelp, UsageError, type FlagSpec } from './args.js';

export const summary = 'score a model on a JSONL task file (--model DIR --data FILE --metric exact|accuracy|rougeL|chrf)';

const FLAGS: Record<string, FlagSpec> = {
  model: { type: 'string', help: 'a checkpoint, run or fine-tune directory (an adapter directory opens on its base)' },
  adapter: { type: 'string', help: 'LoRA adapter directory to apply to --model' },
  data: { type: 'string', help: 'JSONL with prompt/completion or messages (the last assistant message is the reference)' },
  metric: { type: 'string', help: 'exact | accuracy | rougeL | chrf (normalisation: see the eval section of README)', default: 'exact' },
  'max-new-tokens': { type: 'number', help: 'longest answer', default: 32 },
  temperature: { type: 'number', help: 'sampling temperature (0 = greedy)', default: 0 },
  'top-k': { type: 'number', help: 'sample only from the k most likely tokens' },
  seed: { type: 'number', help: 'random seed (sampling)', default: 1337 },
  batch: { type: 'number', help: 'sequences generated together', default: 16 },
  limit: { type: 'number', help: 'evaluate only N records spread evenly over the file (0 = all)', default: 0 },
  out: { type: 'string', help: 'predictions JSONL (default: <run dir>/eval/<data>.predictions.jsonl)' },
  json: { type: 'boolean', help: 'print the result as one JSON line last' },
  device: { type: 'string', help: 'cpu or webgpu', default: 'cpu' },
  threads: { type: 'number', help: 'ONNX Runtime intra-op threads' },
  quiet: { type: 'boolean', help: 'no progress lines' },
  help: { type: 'boolean', help: 'show this help' },
};

export async function run(argv: string[]): Promise<number> {
  const { flags } = parseArgs(argv, FLAGS, 'eval');
  if (flags.help) {
    console.log(formatHelp('eval', summary, FLAGS));
    return 0;
  }
  if (!flags.model) throw new UsageError('atscale eval: pass --model DIR');
  if (!flags.data) throw new UsageError('atscale eval: pass --data FILE.jsonl');
  const { METRICS } = await import('../engine/eval/metrics.js');
  const metric = String(flags.metric);
  if (!(METRICS as readonly string[]).includes(metric)) throw new UsageError(`atscale eval: --metric must be one of ${METRICS.join(', ')}, got '${metric}'`);
  const n = (k: string) => flags[k] as number;
  if (!Number.isInteger(n('maxNewTokens')) || n('maxNewTokens') < 1) throw new UsageError(`atscale eval: --max-new-tokens must be a positive integer, got ${n('maxNewTokens')}`);
  if (!Number.isInteger(n('batch')) || n('batch') < 1) throw new UsageError(`atscale eval: --batch must be a positive integer, got ${n('batch')}`);
  if (!(n('temperature') >= 0)) throw new UsageError(`atscale eval: --temperature must be >= 0, got ${n('temperature')}`);
  if (flags.topK !== undefined && (!Number.isInteger(n('topK')) || n('topK') < 1)) throw new UsageError(`atscale eval: --top-k must be a positive integer, got ${n('topK')}`);
  const { openModel } = await import('../engine/model-dir.js');
  const { runEval } = await import('../engine/eval/run-eval.js');
  const { checkDevice } = await import('../runtime/session.js');
  const opened = openModel(String(flags.model), flags.adapter as string | undefined);
  const r = await runEval(opened, String(flags.model), {
    data: String(flags.data), metric: metric as 'exact', maxNewTokens: n('maxNewTokens'), temperature: n('temperature'), topK: flags.topK as number | undefined,
    seed: n('seed'), batch: n('batch'), limit: n('limit'), out: flags.out as string | undefined, quiet: flags.quiet === true,
    exec: { device: checkDevice(flags.device), threads: flags.threads as number | undefined },
  });
  console.log(`| data | metric | score | n | tok/s |\n|---|---|---|---|---|\n| ${String(flags.data)} | ${r.metric} | ${r.score.toFixed(4)} | ${r.n} | ${Math.round(r.tokensPerS)} |`);
  console.log(`predictions: ${r.predictionsFile}`);
  if (flags.json) console.log(JSON.stringify({ eval: String(flags.data), metric: r.metric, score: r.score, n: r.n, tokens_per_s: Math.round(r.tokensPerS), predictions: r.predictionsFile }));
  return 0;
}
