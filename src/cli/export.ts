// `atscale export`: write a trained checkpoint as a standalone ONNX model (weights as
// initializers, input_ids [batch, seq] int64 -> logits [batch, seq, vocab]) that any ONNX
// Runtime can run.
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { parseArgs, formatHelp, UsageError, type FlagSpec } from './args.js';

export const summary = 'export a checkpoint or HF folder as a standalone ONNX model (--model DIR --out model.onnx)';

const FLAGS: Record<string, FlagSpec> = {
  model: { type: 'string', help: 'a Hugging Face model folder or an atscale checkpoint directory' },
  ckpt: { type: 'string', help: 'checkpoint directory written by atscale train; same as --model' },
  out: { type: 'string', help: 'output .onnx file (default: model.onnx in the run\'s output directory, beside the checkpoint)' },
  batch: { type: 'number', help: 'batch dimension of the exported graph', default: 1, int: true, min: 1, max: 1 << 20 },
  seq: { type: 'number', help: 'sequence length of the exported graph (default: block size)', int: true, min: 1, max: 1 << 20 },
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
