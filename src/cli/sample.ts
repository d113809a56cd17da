// `atscale sample`: continue a prompt with a trained checkpoint or a Hugging Face model folder
// (KV-cache decoding).
import { parseArgs, formatHelp, UsageError, type FlagSpec } from './args.js';

export const summary = 'generate text from a checkpoint or HF folder (--model DIR --prompt TEXT)';

const FLAGS: Record<string, FlagSpec> = {
  ckpt: { type: 'string', help: 'checkpoint directory written by atscale train (e.g. out/ckpt)' },
  model: { type: 'string', help: 'any model directory: Hugging Face folder, checkpoint, run, fine-tune output or LoRA adapter' },
  adapter: { type: 'string', help: 'LoRA adapter directory applied to --model' },
  'block-size': { type: 'number', help: 'positions to build the KV cache for (HF Llama-family folders; default max_position_embeddings)', int: true, min: 1, max: 1 << 20 },
  prompt: { type: 'string', help: 'text to continue', default: '\n' },
  'max-new-tokens': { type: 'number', help: 'tokens to generate', default: 200, int: true, min: 1, max: 1_000_000 },
  temperature: { type: 'number', help: 'sampling temperature (0 = greedy)', default: 0.8, min: 0, max: 1000 },
  'top-k': { type: 'number', help: 'sample only from the k most likely tokens', default: 200, int: true, min: 1, max: 1 << 24 },
  seed: { type: 'number', help: 'random seed', default: 1337, int: true, min: 0, max: 2 ** 32 - 2 },
  device: { type: 'string', help: 'cpu or webgpu', default: 'cpu', choices: ['cpu', 'webgpu'] },
  threads: { type: 'number', help: 'ONNX Runtime threads', int: true, min: 1, max: 4096 },
  help: { type: 'boolean', help: 'show this help' },
};

export { FLAGS as SAMPLE_FLAGS };

export async function run(argv: string[]): Promise<number> {
  const { flags } = parseArgs(argv, FLAGS, 'sample');
  if (flags.help) {
    console.log(formatHelp('sample', summary, FLAGS));
    return 0;
  }
  const dir = (flags.model ?? flags.ckpt) as string | undefined;
  if (!dir) throw new UsageError('atscale sample: pass --model DIR (a Hugging Face folder, or --ckpt DIR: the ckpt/ folder that atscale train wrote)');
  const { openModel } = await import('../engine/model-dir.js');
  const { checkDevice } = await import('../runtime/session.js');
  const { Generator } = await import('../engine/generate.js');
  const { model, params, tokenizer, promptPrefix } = openModel(dir, flags.adapter as string | undefined, { blockSize: flags.blockSize as number | undefined });
  const gen = new Generator(model, params, { device: checkDevice(flags.device), threads: flags.threads as number | undefined });
  const prompt = [...(promptPrefix ?? []), ...tokenizer.encode(String(flags.prompt))];
  const ids = await gen.generate(prompt, { maxNewTokens: flags.maxNewTokens as number, temperature: flags.temperature as number, topK: flags.topK as number, seed: flags.seed as number });
  process.stdout.write(String(flags.prompt) + tokenizer.decode(ids) + '\n');
  return 0;
}
