// `atscale finetune`: fine-tune a pretrained model on prompt/completion or chat JSONL, fully or
// with LoRA adapters. The result (OUT/model or OUT/adapter) opens with eval, sample and serve.
import { camel, parseArgs, formatHelp, UsageError, type FlagSpec } from './args.js';
import type { TrainHyper } from '../models/presets.js';

export const summary = 'fine-tune a model on prompt/completion or chat JSONL (--model DIR --data FILE [--lora-r R])';

const FLAGS: Record<string, FlagSpec> = {
  model: { type: 'string', help: 'base model: a checkpoint or run directory atscale wrote' },
  data: { type: 'string', help: 'training JSONL: {"prompt","completion"} or {"messages":[{role,content,weight}]} per line' },
  val: { type: 'string', help: 'validation JSONL (val loss at every eval interval)' },
  out: { type: 'string', help: 'output directory (model/ or adapter/, metrics.jsonl)', default: 'out/finetune' },
  'lora-r': { type: 'number', help: 'LoRA rank; omit for a full fine-tune' },
  'lora-alpha': { type: 'number', help: 'LoRA alpha (scale alpha / r)', default: 16 },
  'lora-dropout': { type: 'number', help: 'dropout on the LoRA input', default: 0 },
  'lora-targets': { type: 'string', help: 'comma-separated Linear module names to adapt', default: 'c_attn' },
  rslora: { type: 'boolean', help: 'rank-stabilised LoRA: scale alpha / sqrt(r)' },
  'train-on-prompt': { type: 'boolean', help: 'learn the prompt tokens too (default: only completions / assistant messages)' },
  overflow: { type: 'string', help: 'examples longer than the context: truncate (prompt from the left, then the answer\'s end), skip, or refuse', default: 'truncate' },
  'batch-size': { type: 'number', help: 'examples per micro-step, all ranks together', default: 8 },
  'grad-accum': { type: 'number', help: 'micro-steps per optimizer step', default: 1 },
  'max-iters': { type: 'number', help: 'optimizer steps', default: 200 },
  lr: { type: 'number', help: 'peak learning rate (LoRA usually wants ~10x a full fine-tune\'s)', default: 3e-4 },
  'min-lr': { type: 'number', help: 'final learning rate of the cosine decay', default: 3e-5 },
  'warmup-iters': { type: 'number', help: 'linear warmup steps', default: 10 },
  'weight-decay': { type: 'number', help: 'AdamW weight decay', default: 0 },
  'eval-interval': { type: 'number', help: 'steps between validation losses', default: 50 },
  'eval-iters': { type: 'number', help: 'validation batches', default: 10 },
  'log-interval': { type: 'number', help: 'steps between metric lines', default: 10 },
  seed: { type: 'number', help: 'random seed', default: 1337 },
  'deepspeed-config': { type: 'string', help: 'DeepSpeed-style JSON (batch sizes, optimizer, zero_optimization); also implied under atscale launch' },
  device: { type: 'string', help: 'cpu or webgpu', default: 'cpu' },
  threads: { type: 'number', help: 'ONNX Runtime intra-op threads' },
  quiet: { type: 'boolean', help: 'no progress lines' },
  help: { type: 'boolean', help: 'show this help' },
};

export async function run(argv: string[]): Promise<number> {
  const { flags } = parseArgs(argv, FLAGS, 'finetune');
  if (flags.help) {
    console.log(formatHelp('finetune', summary, FLAGS));
    return 0;
  }
  if (!flags.model) throw new UsageError('atscale finetune: pass --model DIR (a checkpoint or run directory)');
  if (!flags.data) throw new UsageError('atscale finetune: pass --data FILE.jsonl');
  const overflow = String(flags.overflow);
  if (!['truncate', 'skip', 'refuse'].includes(overflow)) throw new UsageError(`atscale finetune: --overflow must be truncate, skip or refuse, got '${overflow}'`);
  const n = (k: string) => flags[k] as number;
  for (const k of ['batchSize', 'gradAccum', 'evalInterval', 'evalIters', 'logInterval']) {
    if (!Number.isInteger(n(k)) || n(k) < 1) throw new UsageError(`atscale finetune: --${k.replace(/[A-Z]/g, (c) => '-' + c.toLowerCase())} must be a positive integer, got ${n(k)}`);
  }
  if (!Number.isInteger(n('maxIters')) || n('maxIters') < 0) throw new UsageError(`atscale finetune: --max-iters must be an integer >= 0, got ${n('maxIters')}`);
  if (!(n('lr') > 0) || !(n('minLr') >= 0) || !(n('weightDecay') >= 0) || !(n('warmupIters') >= 0)) {
    throw new UsageError('atscale finetune: --lr must be > 0, and --min-lr, --weight-decay, --warmup-iters >= 0');
  }
  const hyper: TrainHyper = {
    batchSize: n('batchSize'), gradAccum: n('gradAccum'), maxIters: n('maxIters'), lr: n('lr'), minLr: n('minLr'), warmupIters: n('warmupIters'),
    decayIters: n('maxIters'), beta1: 0.9, beta2: 0.999, weightDecay: n('weightDecay'), gradClip: 1, evalInterval: n('evalInterval'), evalIters: n('evalIters'), logInterval: n('logInterval'),
  };
  const lora = flags.loraR === undefined ? undefined : { r: n('loraR'), alpha: n('loraAlpha'), dropout: n('loraDropout'), targetModules: String(flags.loraTargets).split(',').map((s) => s.trim()).filter(Boolean), useRslora: flags.rslora === true };
  const { runFinetune } = await import('../engine/finetune.js');
  const { checkDevice } = await import('../runtime/session.js');
  const { distributedSetup } = await import('./train-distributed.js');
  const device = checkDevice(flags.device);
  // Flags the user gave (not defaults): a DeepSpeed config owns batch size, lr and the like.
  const explicit = new Set(argv.filter((a) => a.startsWith('--')).map((a) => camel(a.slice(2).split('=')[0]!)));
  const dist = await distributedSetup(flags.deepspeedConfig as string | undefined, hyper, explicit, { device, threads: flags.threads as number | undefined });
  let r;
  try {
    r = await runFinetune({
      model: String(flags.model), data: String(flags.data), val: flags.val as string | undefined, out: String(flags.out), lora, hyper: dist.hyper,
      trainOnPrompt: flags.trainOnPrompt === true, overflow: overflow as 'truncate', seed: n('seed'),
      device, threads: flags.threads as number | undefined, quiet: flags.quiet === true,
      rank: dist.rank, world: dist.world, makeTrainer: dist.makeTrainer,
    });
  } finally {
    await dist.close();
  }
  if (dist.rank !== 0) return 0;
  console.log(`fine-tuned ${r.trainable.toLocaleString('en')} of ${r.total.toLocaleString('en')} parameters; final loss ${r.losses.at(-1)?.toFixed(4) ?? 'n/a'}` + (Number.isFinite(r.valLoss) ? `, val loss ${r.valLoss.toFixed(4)}` : '') + `; ${Math.round(r.tokensPerS)} tok/s; wrote ${r.dir}`);
  return 0;
}
