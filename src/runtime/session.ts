// ONNX Runtime sessions: one per distinct lowered model (the signature is a hash of the model
// bytes plus the execution options), created once and reused for every step.
import { createHash } from 'node:crypto';
import * as ort from 'onnxruntime-node';
import type { DType } from '../ir/dtype.js';
import { type HostValue, allocHost } from '../ir/value.js';
import type { OnnxValueInfo } from './onnx/model.js';

export const DEVICES = ['cpu', 'webgpu'] as const;
export type Device = (typeof DEVICES)[number];

export interface ExecOptions {
  device?: Device;
  /** Intra-op threads (ONNX Runtime's pool); default: all cores. */
  threads?: number;
  /** Let idle pool threads spin for work (ONNX Runtime's default; fastest for one session at a
   * time). Off when several sessions alternate on the same cores, e.g. side-by-side benchmarks. */
  spinning?: boolean;
  /** Record ONNX Runtime's profile (a Chrome trace) for every run, into files named
   * PREFIX_<timestamp>.json; Executable.endProfiling finishes one and returns its path. */
  profile?: string;
  /** Let ONNX Runtime keep a GEMM-packed copy of each constant weight (default true): faster
   * GEMMs (a decode step ran 20-30% slower without), but one more copy of the weights per
   * session. */
  packWeights?: boolean;
  /** The folder external data (initializers kept outside the model bytes) is read from. */
  externalDataFolder?: string;
}

export function checkDevice(d: unknown): Device {
  if (typeof d === 'string' && (DEVICES as readonly string[]).includes(d)) return d as Device;
  throw new TypeError(`unknown device '${String(d)}'; valid devices are ${DEVICES.join(', ')}`);
}

const ORT_TYPE: Record<DType, ort.Tensor.Type> = {
  float32: 'float32',
  float64: 'float64',
  float16: 'float16',
  bfloat16: 'float32',
  int32: 'int32',
  int64: 'int64',
  bool: 'bool',
};

export function toOrt(v: HostValue, declared: OnnxValueInfo): ort.Tensor {
  return new ort.Tensor(ORT_TYPE[declared.dtype], v.data as never, v.shape);
}

export function fromOrt(t: ort.Tensor, dtype: DType): HostValue {
  const data = t.data as HostValue['data'];
  if (dtype === 'bool' && !(data instanceof Uint8Array)) {
    const arr = allocHost('bool', data.length) as Uint8Array;
    for (let i = 0; i < data.length; i++) arr[i] = (data as unknown as ArrayLike<number | boolean>)[i] ? 1 : 0;
    return { dtype, shape: [...t.dims], data: arr };
  }
  return { dtype, shape: [...t.dims], data };
}

const sessions = new Map<string, Promise<ort.InferenceSession>>();

function signature(model: Uint8Array, o: Required<ExecOptions>, level: string): string {
  return createHash('sha256').update(model).update(`|${o.device}|${o.threads}|${o.spinning}|${o.profile}|${o.packWeights}|${o.externalDataFolder}|${level}`).digest('hex');
}

/** Clear, typed failure for a device that this machine cannot provide. */
export class DeviceError extends Error {
  override name = 'DeviceError';
}

/**
 * `exact`: a float64 graph (training with --dtype float64, an exactness check). ONNX Runtime's
 * 'extended' and 'all' graph transformers rewrite such graphs into kernels that lose float64
 * precision: measured on a 4-layer GPT's first step, gradients moved by up to 6e-6 relative
 * against the same graph unoptimised, and a pipeline's per-block programs and the fused step
 * then differed by 5e-8 after 20 steps. 'basic' (constant folding, redundant-node removal)
 * gave the unoptimised graph's gradients bit for bit, so float64 graphs get 'basic'.
 */
export async function getSession(model: Uint8Array, opts: ExecOptions = {}, exact = false): Promise<ort.InferenceSession> {
  const o = {
    device: checkDevice(opts.device ?? 'cpu'), threads: opts.threads ?? 0, spinning: opts.spinning ?? true, profile: opts.profile ?? '',
    packWeights: opts.packWeights ?? true, externalDataFolder: opts.externalDataFolder ?? '',
  };
  if (o.threads !== 0 && !(Number.isInteger(o.threads) && o.threads > 0)) {
    throw new TypeError(`threads must be a positive integer (or omitted for all cores), got ${opts.threads}`);
  }
  if (o.device === 'webgpu') await ensureWebGpu();
  const level = exact ? 'basic' : 'all';
  const key = signature(model, o, level);
  let s = sessions.get(key);
  if (!s) {
    s = ort.InferenceSession.create(model, {
      executionProviders: [o.device],
      ...(o.threads ? { intraOpNumThreads: o.threads } : {}),
      extra: {
        session: {
          ...(o.spinning ? {} : { intra_op: { allow_spinning: '0' } }),
          ...(o.packWeights ? {} : { disable_prepacking: '1' }),
          ...(o.externalDataFolder ? { model_external_initializers_file_folder_path: o.externalDataFolder } : {}),
        },
      },
      interOpNumThreads: 1,
      graphOptimizationLevel: level,
      enableCpuMemArena: true,
      // Memory patterns pre-plan one block per run for every intermediate; with a training step's
      // activations that block held far more than the arena's reuse of freed chunks: peak RSS of
      // a shakespeare-char step at batch 16 fell from 3505 MB to 2065 MB without it, CPU time
      // per step unchanged (bench train compares the full preset with PyTorch).
      enableMemPattern: false,
      ...(o.profile ? { enableProfiling: true, profileFilePrefix: o.profile } : {}),
    }).catch((e: Error) => {
      sessions.delete(key);
      throw new Error(`ONNX Runtime could not load the compiled graph on ${o.device}: ${e.message}`);
    });
    sessions.set(key, s);
  }
  return s;
}

let webgpuChecked: Promise<void> | undefined;

/** ONNX Runtime's WebGPU provider aborts natively on some machines without an adapter, so
 * availability is probed once in a child process before a session is created here. */
export function ensureWebGpu(): Promise<void> {
  webgpuChecked ??= import('./webgpu-probe.js').then((m) => m.probeWebGpu()).then((r) => {
    if (!r.ok) {
      throw new DeviceError(`device 'webgpu' is not available on this machine (${r.reason}); use device 'cpu', or run on a machine with a GPU and a WebGPU-capable driver`);
    }
  });
  return webgpuChecked;
}

/** Releases every cached session (their native memory) and forgets them. */
export async function clearSessionCache(): Promise<void> {
  const all = [...sessions.values()];
  sessions.clear();
  await Promise.all(all.map((s) => s.then((x) => x.release(), () => undefined)));
}
