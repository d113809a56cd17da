// `atscale serve`: an OpenAI-compatible HTTP server with continuous batching for a checkpoint.
import { parseArgs, formatHelp, UsageError, type FlagSpec } from './args.js';

export const summary = 'serve a model over an OpenAI-compatible HTTP API (--model DIR --port P)';

const FLAGS: Record<string, FlagSpec> = {
  model: { type: 'string', help: 'model folder: a checkpoint (atscale train), a fine-tune run, or a LoRA adapter' },
  port: { type: 'number', help: 'TCP port (0 = any free port)', default: 8000 },
  host: { type: 'string', help: 'address to bind; anything but loopback exposes the server', default: '127.0.0.1' },
  'api-key': { type: 'string', help: 'require "Authorization: Bearer KEY" (or set ATSCALE_API_KEY)' },
  adapter: { type: 'string', help: 'LoRA adapter folder to apply to --model (folded into the weights at load)' },
  slots: { type: 'number', help: 'KV-cache slots: sequences decoded together', default: 16 },
  'prefill-chunk': { type: 'number', help: 'prompt tokens read per sequence and step', default: 32 },
  'prefill-rows': { type: 'number', help: 'prompts read together in one prefill step', default: 4 },
  'max-queue': { type: 'number', help: 'sequences allowed to wait for a slot (more get 429)', default: 256 },
  'max-body-bytes': { type: 'number', help: 'largest request body', default: 1 << 20 },
  'request-timeout': { type: 'number', help: 'seconds a request may take (queue + generation)', default: 120 },
  'receive-timeout': { type: 'number', help: 'seconds a client has to send its request', default: 10 },
  'drain-timeout': { type: 'number', help: 'seconds to let requests finish after SIGTERM', default: 30 },
  threads: { type: 'number', help: 'ONNX Runtime threads' },
  'pack-weights': {
    type: 'string', choices: ['auto', 'yes', 'no'], default: 'auto',
    help: 'each compiled graph (one per batch size and cache length) keeps its own GEMM-packed copy of the weights: faster decoding, one copy per graph; no: all graphs read one shared copy; auto: yes unless the copies would take over half the free memory',
  },
  quantization: {
    type: 'string', choices: ['none', 'int8'], default: 'none',
    help: 'int8: the weight GEMMs run on int8 weights (one scale per output column) with activations quantized each step: a quarter of the weight bytes to read, logits a little off',
  },
  help: { type: 'boolean', help: 'show this help' },
};

export async function run(argv: string[]): Promise<number> {
  const { flags } = parseArgs(argv, FLAGS, 'serve');
  if (flags.help) {
    console.log(formatHelp('serve', summary, FLAGS));
    return 0;
  }
  if (!flags.model) throw new UsageError('atscale serve: pass --model DIR (a checkpoint folder written by atscale train)');
  const port = flags.port as number;
  if (!(Number.isInteger(port) && port >= 0 && port < 65536)) throw new UsageError(`atscale serve: --port must be an integer in 0..65535, got ${port}`);
  for (const k of ['slots', 'prefillChunk', 'prefillRows', 'maxQueue', 'maxBodyBytes', 'requestTimeout', 'receiveTimeout', 'drainTimeout'] as const) {
    const v = flags[k] as number;
    if (!(v > 0)) throw new UsageError(`atscale serve: --${k.replace(/[A-Z]/g, (c) => '-' + c.toLowerCase())} must be positive, got ${v}`);
  }
  const { ApiServer, DEFAULT_SERVE } = await import('../serve/server.js');
  const { load } = await import('../serve/load.js');
  const server = new ApiServer({
    ...DEFAULT_SERVE,
    host: String(flags.host),
    port,
    apiKey: (flags.apiKey as string | undefined) ?? process.env.ATSCALE_API_KEY ?? undefined,
    slots: flags.slots as number,
    prefillChunk: flags.prefillChunk as number,
    prefillRows: flags.prefillRows as number,
    maxQueue: flags.maxQueue as number,
    maxBodyBytes: flags.maxBodyBytes as number,
    requestTimeoutMs: (flags.requestTimeout as number) * 1000,
    receiveTimeoutMs: (flags.receiveTimeout as number) * 1000,
    exec: { threads: flags.threads as number | undefined },
    packWeights: flags.packWeights === 'auto' ? 'auto' : flags.packWeights === 'yes',
    quantization: flags.quantization as 'none' | 'int8',
  });
  const url = await server.listen();
  console.log(`loading ${String(flags.model)} (GET ${url}/health answers 503 until ready)`);
  let stopping: Promise<number> | undefined;
  const stop = (signal: string) => {
    stopping ??= (async () => {
      console.log(`${signal}: draining (no new requests; up to ${String(flags.drainTimeout)} s for those in flight)`);
      const clean = await server.drain((flags.drainTimeout as number) * 1000);
      console.log(clean ? 'drained; exiting' : 'drain timed out; exiting with requests unfinished');
      return clean ? 0 : 1;
    })();
    return stopping;
  };
  const exited = new Promise<number>((resolve) => {
    // A repeated signal while draining is absorbed (stop is idempotent), not a hard kill.
    process.on('SIGTERM', () => void stop('SIGTERM').then(resolve));
    process.on('SIGINT', () => void stop('SIGINT').then(resolve));
  });
  await server.ready(() => load(String(flags.model), flags.adapter as string | undefined));
  const b = server.batcher!;
  console.log(`model ${String(flags.model)}: ${b.slots} KV-cache slots of ${b.model.dims.blockSize} positions, prefill chunk ${b.chunk}, ${b.weightsFileError ? `a copy of the weights per graph (no shared weights file: ${b.weightsFileError})` : b.packed ? 'a packed copy of the weights per graph' : 'one shared copy of the weights'}${b.int8Gemms ? `, int8 weights (${b.int8Gemms} GEMMs per decode step)` : ''}${flags.apiKey || process.env.ATSCALE_API_KEY ? ', API key required' : ''}`);
  console.log(`listening on ${url}`);
  return exited;
}
