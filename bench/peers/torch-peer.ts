// Runs the PyTorch reference GPT (bench/peers/gpt_torch.py) in /usr/bin/python3: the correctness
// peer (loss and gradients of atscale's weights) and the speed peer (timed training steps).
// Debian's python3-torch lives only in the system interpreter, hence the fixed path.
import { execFile, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export const PYTHON = '/usr/bin/python3';

export interface TorchAvailability {
  ok: boolean;
  /** Why the peer cannot run, when ok is false. */
  reason?: string;
  version?: string;
}

export interface TorchModelConfig {
  n_layer: number;
  n_head: number;
  n_embd: number;
  block_size: number;
  vocab_size: number;
  bias: boolean;
  dropout: number;
}

export interface TorchGradsOptions {
  /** safetensors with every parameter; the config comes from __metadata__.config unless `config` is given. */
  weights: string;
  /** safetensors with I32/I64 tensors `idx` and `targets`, both [B, T]. */
  batch: string;
  /** Where the gradients (same names as the parameters) and `loss` are written. */
  out: string;
  config?: TorchModelConfig;
  /** Compute in float64 instead of float32. */
  double?: boolean;
  /** dtype of the written gradients; default f32. */
  outDtype?: 'f32' | 'f64';
  /** Ignore tensors that are not model parameters (a full checkpoint with optimizer moments). */
  allowExtra?: boolean;
  threads?: number;
  timeoutMs?: number;
  /** OpenBLAS's own kernel choice for this CPU (see peerEnv); default: the environment's. */
  nativeBlas?: boolean;
}

export interface TorchGradsResult {
  loss: number;
  out: string;
  computeDtype: string;
  nParams: number;
  torchVersion: string;
  threads: number;
}

export interface TorchBenchOptions {
  preset?: 'cpu-small' | 'shakespeare-char';
  /** A model config, optionally with batch_size, lr, beta1, beta2, weight_decay; instead of a preset. */
  config?: TorchModelConfig & { batch_size?: number; lr?: number; beta1?: number; beta2?: number; weight_decay?: number };
  iters: number;
  warmup: number;
  threads?: number;
  batchSize?: number;
  seed?: number;
  timeoutMs?: number;
  /** OpenBLAS's own kernel choice for this CPU (see peerEnv); default: the environment's. */
  nativeBlas?: boolean;
}

/** The JSON line gpt_torch.py bench prints. */
export interface TorchBenchResult {
  impl: 'pytorch';
  preset: string;
  ms_per_iter: number;
  tokens_per_s: number;
  peak_rss_mb: number;
  torch_version: string;
  /** OpenBLAS threads (the GEMMs). */
  threads: number;
  /** ATen OpenMP threads (every other kernel). */
  omp_threads: number;
  /** The BLAS library the peer loaded. */
  blas: string;
  /** The kernel set OpenBLAS runs (openblas_get_corename), e.g. Haswell or Cooperlake. */
  blas_core: string;
  batch_size: number;
  block_size: number;
  n_params: number;
  iters: number;
  warmup: number;
  ms_all: number[];
  last_loss: number;
  config: TorchModelConfig;
  /** Median CPU time of all threads per step; moves less than wall time on a shared machine. */
  cpu_ms_per_iter: number;
  /** 1-minute load average when the run ended: above the thread count, timings are contended. */
  load_avg_1m: number;
  /** OMP_WAIT_POLICY the peer ran with (PASSIVE unless the caller's environment set it). */
  omp_wait_policy: string;
}

let availability: TorchAvailability | undefined;

/** Whether /usr/bin/python3 can import torch; asked once per process (the import takes about a second). */
export function torchAvailable(): TorchAvailability {
  if (availability) return availability;
  if (!existsSync(PYTHON)) return (availability = { ok: false, reason: `${PYTHON} not found (install python3 and python3-torch)` });
  const r = spawnSync(PYTHON, ['-c', 'import torch; print(torch.__version__)'], { encoding: 'utf8', timeout: 60_000 });
  if (r.error) availability = { ok: false, reason: `${PYTHON} -c 'import torch' failed to run: ${r.error.message}` };
  else if (r.status !== 0) availability = { ok: false, reason: `PyTorch not importable by ${PYTHON} (apt install python3-torch): ${lastLines(r.stderr, 3)}` };
  else availability = { ok: true, version: r.stdout.trim() };
  return availability;
}

/** gpt_torch.py sits next to this file in the source tree; compiled code runs from dist/bench/peers/. */
export function peerScriptPath(): string {
  const candidates = [new URL('./gpt_torch.py', import.meta.url), new URL('../../../bench/peers/gpt_torch.py', import.meta.url)];
  for (const c of candidates) {
    const p = fileURLToPath(c);
    if (existsSync(p)) return p;
  }
  throw new Error(`PyTorch peer script gpt_torch.py not found (looked at ${candidates.map((c) => fileURLToPath(c)).join(', ')})`);
}

export async function runTorchGrads(opts: TorchGradsOptions): Promise<TorchGradsResult> {
  const threads = checkThreads(opts.threads);
  const args = ['grads', '--weights', opts.weights, '--batch', opts.batch, '--out', opts.out, '--threads', String(threads)];
  if (opts.config) args.push('--config', JSON.stringify(opts.config));
  if (opts.double) args.push('--double');
  if (opts.outDtype) args.push('--out-dtype', opts.outDtype);
  if (opts.allowExtra) args.push('--allow-extra');
  const line = await runPeer(args, threads, opts.timeoutMs ?? 120_000, opts.nativeBlas ?? false);
  const loss = line['loss'];
  if (typeof loss !== 'number') throw new Error(`PyTorch peer (grads) printed no numeric loss: ${JSON.stringify(line)}`);
  return {
    loss,
    out: String(line['out']),
    computeDtype: String(line['compute_dtype']),
    nParams: Number(line['n_params']),
    torchVersion: String(line['torch_version']),
    threads: Number(line['threads']),
  };
}

export async function runTorchBench(opts: TorchBenchOptions): Promise<TorchBenchResult> {
  if ((opts.preset === undefined) === (opts.config === undefined)) throw new Error('runTorchBench: pass exactly one of preset or config');
  if (!Number.isInteger(opts.iters) || opts.iters <= 0) throw new Error(`runTorchBench: iters must be a positive integer, got ${opts.iters}`);
  if (!Number.isInteger(opts.warmup) || opts.warmup < 0) throw new Error(`runTorchBench: warmup must be an integer >= 0, got ${opts.warmup}`);
  const threads = checkThreads(opts.threads);
  const args = ['bench', '--iters', String(opts.iters), '--warmup', String(opts.warmup), '--threads', String(threads)];
  if (opts.preset) args.push('--preset', opts.preset);
  if (opts.config) args.push('--config', JSON.stringify(opts.config));
  if (opts.batchSize !== undefined) args.push('--batch-size', String(opts.batchSize));
  if (opts.seed !== undefined) args.push('--seed', String(opts.seed));
  const line = await runPeer(args, threads, opts.timeoutMs ?? 600_000, opts.nativeBlas ?? false);
  if (line['impl'] !== 'pytorch' || typeof line['ms_per_iter'] !== 'number' || typeof line['tokens_per_s'] !== 'number') {
    throw new Error(`PyTorch peer (bench) printed an unexpected line: ${JSON.stringify(line)}`);
  }
  return line as unknown as TorchBenchResult;
}

function checkThreads(threads: number | undefined): number {
  const t = threads ?? 2;
  if (!Number.isInteger(t) || t <= 0) throw new Error(`PyTorch peer: threads must be a positive integer, got ${t}`);
  return t;
}

/** Variables a machine may set to pin OpenBLAS to older kernels, because older OpenBLAS builds
 * compute wrong results or crash on some newer processors (this project's dev and CI machines
 * do, on some CPUs). They also slow the peer: on a Zen 5 with AVX-512, Debian's OpenBLAS 0.3.21 pinned to Haswell ran a 2048^3 sgemm
 * at 200 GFLOP/s on two threads, and at 364 with the Cooperlake kernels it picks itself. */
const BLAS_PINS = ['OPENBLAS_CORETYPE', 'OPENBLAS_L2_SIZE'] as const;

/** The peer's environment. `nativeBlas` drops the pins together, so OpenBLAS runs the kernels it
 * picks for this CPU: what a speed comparison needs, the strongest peer this machine can run.
 * Only a benchmark asks for it, and it checks those kernels' gradients against atscale's in
 * the same run; tests keep the machine's pins. */
export function peerEnv(nativeBlas: boolean): NodeJS.ProcessEnv {
  const env = { ...process.env };
  if (nativeBlas) for (const k of BLAS_PINS) delete env[k];
  return env;
}

/** Spawns gpt_torch.py and returns its last stdout line parsed as JSON; errors carry python's stderr. */
function runPeer(args: string[], threads: number, timeoutMs: number, nativeBlas: boolean): Promise<Record<string, unknown>> {
  const avail = torchAvailable();
  if (!avail.ok) return Promise.reject(new Error(`PyTorch peer unavailable: ${avail.reason}`));
  const script = peerScriptPath();
  const what = `PyTorch peer (${PYTHON} gpt_torch.py ${args[0]})`;
  // Thread pools are sized from the environment when torch loads; gpt_torch.py sets them from
  // --threads (OpenBLAS) and --omp-threads (ATen) before importing torch.
  const env = peerEnv(nativeBlas);
  return new Promise((resolve, reject) => {
    execFile(PYTHON, [script, ...args], { env, timeout: timeoutMs, killSignal: 'SIGKILL', maxBuffer: 16 << 20, encoding: 'utf8' },
      (err, stdout, stderr) => {
        if (err) {
          const e = err as NodeJS.ErrnoException & { killed?: boolean; code?: number | string };
          if (e.killed) return reject(new Error(`${what} timed out after ${timeoutMs / 1000} s and was killed; stderr: ${lastLines(stderr, 10) || '(empty)'}`));
          return reject(new Error(`${what} failed (exit ${String(e.code)}): ${lastLines(stderr, 20) || e.message}`));
        }
        const line = stdout.trim().split('\n').pop() ?? '';
        try {
          const parsed: unknown = JSON.parse(line);
          if (typeof parsed !== 'object' || parsed === null) throw new Error('not an object');
          resolve(parsed as Record<string, unknown>);
        } catch {
          reject(new Error(`${what} printed no JSON result line; stdout: ${lastLines(stdout, 5) || '(empty)'}; stderr: ${lastLines(stderr, 10) || '(empty)'}`));
        }
      });
  });
}

function lastLines(text: string, n: number): string {
  return text.trim().split('\n').slice(-n).join('\n');
}
