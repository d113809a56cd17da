// Every top-level key of DeepSpeed's documented config (docs/_pages/config-json.md) and what
// atscale does with it: the one source of truth for the parser (ds-config.ts), the README
// table and the test that covers each key. A key is honoured (implemented), accepted when its
// value asks for nothing atscale lacks (a feature switched off, a default), or refused with the
// reason and what to do instead. Keys that another part of atscale will own (3D parallelism,
// monitoring, fault tolerance) are marked with that owner so its author flips one entry.

export type DsDevice = 'cpu' | 'webgpu';

export interface DsKey {
  /** honoured: implemented; neutral: accepted only with values that need nothing atscale lacks. */
  status: 'honoured' | 'neutral';
  /** What atscale does with it (README table). */
  what: string;
  /** For neutral keys: a refusal message for this value, or undefined when it is accepted. */
  check?: (value: unknown, device: DsDevice) => string | undefined;
  /** The part of atscale (issue) that will honour it, when that is planned. */
  owner?: string;
}

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);
const show = (v: unknown) => JSON.stringify(v);

/** A feature block `{ "enabled": bool, ... }` (or a bare boolean): accepted when off. */
function offSwitch(key: string, why: string, instead: string) {
  return (v: unknown): string | undefined => {
    const on = typeof v === 'boolean' ? v : isObj(v) ? v.enabled === true : true;
    return on ? `"${key}" ${show(v)} is not supported: ${why}; ${instead}` : undefined;
  };
}

/** A block with no off switch: only an empty object is accepted. */
function refusedBlock(key: string, why: string, instead: string) {
  return (v: unknown): string | undefined => (isObj(v) && Object.keys(v).length === 0 ? undefined : `"${key}" is not supported: ${why}; ${instead}`);
}

/** A value that must equal atscale's behaviour. */
function only(key: string, ok: unknown[], why: string) {
  return (v: unknown): string | undefined => (ok.some((x) => x === v) ? undefined : `"${key}": ${show(v)} is not supported: ${why}; remove it or set it to ${show(ok[0])}`);
}

/** fp16, bf16, amp, torch_autocast: atscale computes in float32 on every device. */
function mixedPrecision(key: string) {
  return (v: unknown, device: DsDevice): string | undefined => {
    // Off unless "enabled": true (DeepSpeed's default is off; the Hugging Face Trainer's
    // "auto" means whatever the trainer uses, which is float32 here).
    const on = v === true || (isObj(v) && v.enabled === true);
    if (!on) return undefined;
    if (device === 'cpu') return `"${key}": mixed precision needs a GPU device (this run's device is cpu); remove "${key}" or set "enabled": false to train in float32`;
    return `"${key}": mixed precision is not implemented on device '${device}' (atscale computes in float32 everywhere); remove "${key}" or set "enabled": false`;
  };
}

const METRICS = 'the progress line and OUT/metrics.jsonl give loss, tokens/s, MFU and grad norm';
const ISSUE_3D = '3D parallelism, issue 8';
const ISSUE_OBS = 'monitoring, issue 14';
const ISSUE_FT = 'fault tolerance, issue 15';

export const DS_KEYS: Record<string, DsKey> = {
  train_batch_size: { status: 'honoured', what: 'global batch; any two of the batch triple give the third' },
  train_micro_batch_size_per_gpu: { status: 'honoured', what: 'sequences per rank per micro-step' },
  gradient_accumulation_steps: { status: 'honoured', what: 'micro-steps per optimizer step' },
  managed_gradient_accumulation: { status: 'neutral', what: 'true only: the engine always applies the step at the accumulation boundary', check: only('managed_gradient_accumulation', [true], 'atscale always steps at the accumulation boundary') },
  optimizer: { status: 'honoured', what: 'AdamW / Adam (adam_w_mode true): lr, betas, eps, weight_decay' },
  scheduler: { status: 'honoured', what: 'WarmupCosineLR, WarmupDecayLR, WarmupLR mapped onto warmup + cosine' },
  zero_optimization: { status: 'honoured', what: 'stage 0-3, reduce/allgather bucket sizes, overlap_comm, contiguous_gradients' },
  zero_allow_untested_optimizer: { status: 'neutral', what: 'accepted: ZeRO is tested with atscale\'s one optimizer, AdamW', check: (v) => (typeof v === 'boolean' ? undefined : `"zero_allow_untested_optimizer" must be true or false, got ${show(v)}`) },
  zero_force_ds_cpu_optimizer: { status: 'neutral', what: 'false only: there is no CPU-offload optimizer', check: only('zero_force_ds_cpu_optimizer', [false], 'optimizer offload is not implemented') },
  gradient_clipping: { status: 'honoured', what: 'global-norm clipping threshold (0 = off)' },
  steps_per_print: { status: 'honoured', what: 'steps between progress/metrics lines (unless --log-interval is given)' },
  fp16: { status: 'neutral', what: 'enabled false (or "auto") only: float32 training; on cpu "mixed precision needs a GPU device"', check: mixedPrecision('fp16') },
  bf16: { status: 'neutral', what: 'enabled false (or "auto") only: float32 training; on cpu "mixed precision needs a GPU device"', check: mixedPrecision('bf16') },
  amp: { status: 'neutral', what: 'enabled false only (NVIDIA Apex AMP)', check: mixedPrecision('amp') },
  torch_autocast: { status: 'neutral', what: 'enabled false only (torch.autocast)', check: mixedPrecision('torch_autocast') },
  communication_data_type: { status: 'neutral', what: '"fp32" only: collectives reduce in float32', check: only('communication_data_type', ['fp32', null], 'collectives reduce float32 buffers') },
  seq_parallel_communication_data_type: { status: 'neutral', what: '"fp32" only', owner: ISSUE_3D, check: only('seq_parallel_communication_data_type', ['fp32', null], 'there is no sequence parallelism yet (3D parallelism, issue 8)') },
  gradient_allreduce_op: { status: 'neutral', what: '"mean" only: gradients are averaged over ranks', check: only('gradient_allreduce_op', ['mean'], 'gradients are always averaged over data-parallel ranks') },
  prescale_gradients: { status: 'neutral', what: 'false only: gradients are summed in float32, then divided by the world size', check: only('prescale_gradients', [false], 'prescaling guards fp16 reductions, and atscale reduces in float32') },
  gradient_predivide_factor: { status: 'neutral', what: '1 only', check: only('gradient_predivide_factor', [1], 'predivision guards fp16 reductions, and atscale reduces in float32') },
  sparse_gradients: { status: 'neutral', what: 'false only: embedding gradients are dense in the flat buffer', check: only('sparse_gradients', [false], 'gradients live in one dense flat buffer') },
  disable_allgather: { status: 'neutral', what: 'false only', check: only('disable_allgather', [false], 'ZeRO needs its parameter all-gather') },
  wall_clock_breakdown: { status: 'neutral', what: `false only: ${METRICS}`, owner: 'profiler, issue 12', check: only('wall_clock_breakdown', [false], `per-phase timers are not implemented (${METRICS})`) },
  memory_breakdown: { status: 'neutral', what: 'false only', check: only('memory_breakdown', [false], 'use `npm run bench -- zero` for per-rank memory, or `atscale plan` to predict it') },
  dump_state: { status: 'neutral', what: 'false only: OUT/ckpt/meta.json records the resolved settings', check: only('dump_state', [false], 'the resolved settings are recorded in OUT/ckpt/meta.json') },
  flops_profiler: { status: 'neutral', what: `enabled false only: ${METRICS}`, owner: 'profiler, issue 12', check: offSwitch('flops_profiler', 'there is no per-module FLOPs profiler yet', `${METRICS}; set "enabled": false`) },
  autotuning: { status: 'neutral', what: 'enabled false only: `atscale plan` searches layouts', check: offSwitch('autotuning', 'there is no autotuner', 'use `atscale plan --model ... --gpus N` to search layouts; set "enabled": false') },
  activation_checkpointing: { status: 'honoured', what: 'partition_activations etc. as the mesh engine reads them (engine/mesh/config.ts)', owner: ISSUE_3D },
  pipeline: { status: 'honoured', what: 'pipeline-parallel stages and schedule (engine/mesh/config.ts)', owner: ISSUE_3D },
  tensor_parallel: { status: 'honoured', what: 'tensor-parallel degree (engine/mesh/config.ts)', owner: ISSUE_3D },
  expert_parallel: { status: 'neutral', what: 'enabled false only: no mixture-of-experts models', check: offSwitch('expert_parallel', 'atscale has no mixture-of-experts models', 'remove it') },
  hybrid_engine: { status: 'neutral', what: 'enabled false only: sampling uses atscale\'s own KV-cache decoder', check: offSwitch('hybrid_engine', 'there is no separate inference engine to switch to', 'sample with `atscale sample` or the Generator class') },
  sparse_attention: { status: 'neutral', what: 'empty only: attention is dense and causal', check: refusedBlock('sparse_attention', 'attention is dense and causal', 'remove it') },
  tensorboard: { status: 'honoured', what: 'enabled, output_path, job_name: TensorBoard event files of the run\'s metrics', owner: ISSUE_OBS },
  csv_monitor: { status: 'honoured', what: 'enabled, output_path, job_name: one CSV file per metric', owner: ISSUE_OBS },
  wandb: { status: 'neutral', what: 'enabled false only: no network logging', check: offSwitch('wandb', 'atscale does not send metrics over the network', `${METRICS}; set "enabled": false`) },
  comet: { status: 'neutral', what: 'enabled false only: no network logging', check: offSwitch('comet', 'atscale does not send metrics over the network', `${METRICS}; set "enabled": false`) },
  comms_logger: { status: 'neutral', what: 'enabled false only: `npm run bench -- collectives` measures the collectives', check: offSwitch('comms_logger', 'collectives are not logged per call', 'use `npm run bench -- collectives`; set "enabled": false') },
  elasticity: { status: 'neutral', what: 'enabled false only until elastic training lands', owner: ISSUE_FT, check: offSwitch('elasticity', 'elastic batch sizes are not implemented yet (fault tolerance, issue 15)', 'fix train_batch_size; set "enabled": false') },
  checkpoint: { status: 'neutral', what: 'empty only: checkpoints are atomic, checksummed, resumed with --resume', owner: ISSUE_FT, check: refusedBlock('checkpoint', 'checkpoint tags, universal and node-local checkpoints are not configurable (fault tolerance, issue 15)', 'remove it; resume with --resume OUT/ckpt') },
  aio: { status: 'neutral', what: 'empty only: no NVMe offload', check: refusedBlock('aio', 'asynchronous I/O configures NVMe offload, which atscale does not implement', 'remove it') },
  data_efficiency: { status: 'neutral', what: 'enabled false only', check: offSwitch('data_efficiency', 'data sampling and routing schedules are not implemented', 'remove it; batches are drawn uniformly as in nanoGPT') },
  curriculum_learning: { status: 'neutral', what: 'enabled false only', check: offSwitch('curriculum_learning', 'curriculum learning is not implemented', 'remove it') },
  progressive_layer_drop: { status: 'neutral', what: 'enabled false only', check: offSwitch('progressive_layer_drop', 'progressive layer drop is not implemented', 'remove it') },
  eigenvalue: { status: 'neutral', what: 'enabled false only', check: offSwitch('eigenvalue', 'eigenvalue estimation is not implemented', 'remove it') },
  compression_training: { status: 'neutral', what: 'empty only: no quantization or pruning during training', check: refusedBlock('compression_training', 'quantization-aware training and pruning are not implemented', 'remove it') },
  data_types: { status: 'neutral', what: 'grad_accum_dtype "fp32" only', check: (v) => (isObj(v) && Object.entries(v).every(([k, x]) => k === 'grad_accum_dtype' && (x === 'fp32' || x === null)) ? undefined : `"data_types" ${show(v)} is not supported: gradients accumulate in float32; remove it or set {"grad_accum_dtype": "fp32"}`) },
  compile: { status: 'neutral', what: 'deepcompile false only: every step is already one compiled ONNX graph', check: (v) => (isObj(v) && v.deepcompile !== true ? undefined : `"compile" ${show(v)} is not supported: every step is already compiled to one ONNX graph; remove it`) },
  dataloader_drop_last: { status: 'neutral', what: 'accepted: batches are random windows, never a short last batch', check: (v) => (typeof v === 'boolean' ? undefined : `"dataloader_drop_last" must be true or false, got ${show(v)}`) },
};

/** Refusals for every key of a config (unknown keys name the known ones). */
export function checkDeepSpeedKeys(config: Obj, device: DsDevice): string[] {
  const problems: string[] = [];
  for (const [k, v] of Object.entries(config)) {
    const spec = DS_KEYS[k];
    if (!spec) problems.push(`unknown key '${k}' in the DeepSpeed config; known keys: ${Object.keys(DS_KEYS).join(', ')}`);
    else if (spec.status === 'neutral') {
      const why = spec.check?.(v, device);
      if (why) problems.push(why);
    }
  }
  return problems;
}

/** The README table: key | atscale. */
export function deepSpeedKeyTable(): string {
  const rows = Object.entries(DS_KEYS).map(([k, s]) => `| \`${k}\` | ${s.status === 'honoured' ? 'honoured' : 'accepted if'}: ${s.what}${s.owner ? ` (${s.owner})` : ''} |`);
  return ['| key | atscale |', '| --- | --- |', ...rows].join('\n');
}
