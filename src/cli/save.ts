// `atscale save`: write a model in another format. Today: a Hugging Face folder (config.json,
// safetensors, tokenizer.json, tokenizer_config.json) from an atscale checkpoint or from
// another HF folder (to re-shard it or change its dtype).
import { parseArgs, formatHelp, UsageError, type FlagSpec } from './args.js';

export const summary = 'write a checkpoint or model as a Hugging Face folder (--model SRC --format hf --out DIR)';

const FLAGS: Record<string, FlagSpec> = {
  model: { type: 'string', help: 'source: an atscale checkpoint directory (e.g. out/ckpt) or a Hugging Face model folder' },
  format: { type: 'string', help: 'output format: hf', default: 'hf' },
  out: { type: 'string', help: 'output directory (written atomically; an existing one is kept as OUT.prev)' },
  dtype: { type: 'string', help: 'f32, bf16 or f16 (default: the source folder\'s dtypes, f32 for checkpoints); 16-bit formats round to nearest even' },
  'max-shard-bytes': { type: 'number', help: 'split the weights into model-0000x-of-0000y.safetensors shards of at most this size, with an index' },
  quiet: { type: 'boolean', help: 'no progress display' },
  help: { type: 'boolean', help: 'show this help' },
};

export async function run(argv: string[]): Promise<number> {
  const { flags } = parseArgs(argv, FLAGS, 'save');
  if (flags.help) {
    console.log(formatHelp('save', summary, FLAGS));
    return 0;
  }
  if (!flags.model) throw new UsageError('atscale save: pass --model SRC (an atscale checkpoint or a Hugging Face folder)');
  if (!flags.out) throw new UsageError('atscale save: pass --out DIR');
  if (flags.format !== 'hf') throw new UsageError(`atscale save: --format ${String(flags.format)} is not supported; use --format hf`);
  const dtypeFlag = flags.dtype as string | undefined;
  const dtypeOf = { f32: 'F32', bf16: 'BF16', f16: 'F16' } as const;
  if (dtypeFlag !== undefined && !(dtypeFlag in dtypeOf)) throw new UsageError(`atscale save: --dtype ${dtypeFlag} is not one of f32, bf16, f16`);
  const { loadAnyModel } = await import('../engine/load-trained.js');
  const { saveModelDir } = await import('../models/hf/folder.js');
  const { ProgressBar } = await import('../monitor/index.js');
  // Two stages of very different length (read and verify the source; convert and write): the
  // bar shows which one is running, the time so far, and a final line.
  const bar = new ProgressBar('save', 2, { unit: 'stages', quiet: flags.quiet === true });
  bar.update(0);
  const src = loadAnyModel(String(flags.model));
  bar.update(1);
  const names = src.hf ? Object.keys(src.hf.dtypes) : [];
  const dtypes = dtypeFlag ? Object.fromEntries(names.concat(src.model.namedParameters().map(([n]) => n)).map((n) => [n, dtypeOf[dtypeFlag as keyof typeof dtypeOf]])) : src.hf?.dtypes;
  // Only a BPE tokenizer's JSON is a tokenizer.json; a char tokenizer has no HF form.
  const tokenizer = src.tokenizer.kind === 'bpe' ? src.tokenizer : undefined;
  saveModelDir(String(flags.out), { model: src.model, params: src.params, tokenizer, tokenizerConfig: src.hf?.tokenizerConfig.raw, hfConfig: src.hf?.hfConfig, dtypes, maxShardBytes: flags.maxShardBytes as number | undefined });
  bar.update(2);
  bar.finish(`${src.model.paramCount().toLocaleString('en')} parameters`);
  console.log(`wrote ${String(flags.out)}: ${src.model.family}, ${src.model.paramCount()} parameters${tokenizer ? '' : ' (no tokenizer.json: the source tokenizer is character-level, which has no Hugging Face form)'}`);
  return 0;
}
