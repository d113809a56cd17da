// `atscale export`: write a trained model for other runtimes.
// --format onnx (default): one standalone ONNX file, input_ids [batch, seq] -> logits.
// --format hf: a Hugging Face-style folder (config.json, tokenizer.json, onnx/model.onnx with a
// growing KV cache and dynamic dimensions) that transformers.js loads with no network.
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { parseArgs, formatHelp, UsageError, type FlagSpec } from './args.js';

export const summary = 'export a checkpoint or HF folder as ONNX (--model DIR --out model.onnx) or as a transformers.js folder (--format hf --out DIR)';

const FLAGS: Record<string, FlagSpec> = {
  model: { type: 'string', help: 'a Hugging Face model folder or an atscale checkpoint directory' },
  ckpt: { type: 'string', help: 'checkpoint directory written by atscale train; same as --model' },
  format: { type: 'string', help: 'onnx (one file) or hf (a folder for transformers.js)', default: 'onnx', choices: ['onnx', 'hf'] },
  out: { type: 'string', help: 'output .onnx file (onnx; default: model.onnx beside the checkpoint, in the run\'s output directory) or folder (hf)' },
  variants: { type: 'string', help: 'hf only: extra files, comma-separated: fp16, int8', default: '' },
  batch: { type: 'number', help: 'onnx only: batch dimension of the exported graph', default: 1, int: true, min: 1, max: 1 << 20 },
  seq: { type: 'number', help: 'onnx only: sequence length of the exported graph (default: block size)', int: true, min: 1, max: 1 << 20 },
  quiet: { type: 'boolean', help: 'no progress display' },
  help: { type: 'boolean', help: 'show this help' },
};

export async function run(argv: string[]): Promise<number> {
  const { flags } = parseArgs(argv, FLAGS, 'export');
  if (flags.help) {
    console.log(formatHelp('export', summary, FLAGS));
    return 0;
  }
  const dir = flags.model ?? flags.ckpt;
  if (!dir) throw new UsageError('atscale export: pass --model DIR (a Hugging Face model folder, or the ckpt/ folder that atscale train wrote)');
  const format = String(flags.format);
  if (format !== 'onnx' && format !== 'hf') throw new UsageError(`atscale export: --format must be onnx or hf, got '${format}'`);
  if (format === 'hf') {
    const variants = String(flags.variants).split(',').filter(Boolean);
    const bad = variants.filter((v) => v !== 'fp16' && v !== 'int8');
    if (bad.length) throw new UsageError(`atscale export: unknown --variants ${bad.join(',')}; valid: fp16, int8`);
    if (!flags.out) throw new UsageError('atscale export --format hf: pass --out DIR (the folder to write)');
    const { load } = await import('../serve/load.js');
    const { exportHf } = await import('../engine/export-hf.js');
    const { model, params, tokenizer } = load(String(dir));
    const r = exportHf(model, params, tokenizer, String(flags.out), variants as ('fp16' | 'int8')[]);
    console.log(`wrote ${r.dir}:`);
    for (const [f, n] of Object.entries(r.files)) console.log(`  ${f.padEnd(28)} ${(n / 1e6).toFixed(3)} MB`);
    return 0;
  }
  const { loadAnyModel } = await import('../engine/load-trained.js');
  const { exportOnnx } = await import('../engine/export-onnx.js');
  const { ProgressBar } = await import('../monitor/index.js');
  // Three stages of very different length; the bar shows which one is running and the time.
  const bar = new ProgressBar('export', 3, { unit: 'stages', quiet: flags.quiet === true });
  bar.update(0);
  const { model, params } = loadAnyModel(String(dir));
  bar.update(1);
  const seq = (flags.seq as number | undefined) ?? model.dims.blockSize;
  const bytes = exportOnnx(model, params, flags.batch as number, seq);
  const out = flags.out === undefined ? join(dirname(resolve(String(dir))), 'model.onnx') : String(flags.out);
  bar.update(2);
  mkdirSync(dirname(resolve(out)), { recursive: true });
  writeFileSync(out, bytes);
  bar.update(3);
  bar.finish(`${(bytes.length / 1e6).toFixed(1)} MB`);
  console.log(`wrote ${out} (${(bytes.length / 1e6).toFixed(1)} MB): input_ids int64 [${flags.batch}, ${seq}] -> logits float32 [${flags.batch}, ${seq}, ${model.dims.vocabSize}]`);
  return 0;
}
