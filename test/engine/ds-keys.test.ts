// Every top-level key of DeepSpeed's documented config (docs/_pages/config-json.md, plus the
// keys its runtime reads) is known: honoured ones parse and take effect, the others are accepted
// with values that ask for nothing atscale lacks and refused otherwise, naming the key and what
// to do instead. bf16/fp16 on a CPU device: "mixed precision needs a GPU device".
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseDeepSpeedConfig } from '../../src/engine/ds-config.js';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { DS_KEYS, deepSpeedKeyTable } from '../../src/engine/ds-keys.js';

const DOCUMENTED = [
  'train_batch_size', 'train_micro_batch_size_per_gpu', 'gradient_accumulation_steps', 'managed_gradient_accumulation', 'optimizer', 'scheduler',
  'communication_data_type', 'gradient_allreduce_op', 'prescale_gradients', 'gradient_predivide_factor', 'sparse_gradients', 'fp16', 'bf16', 'amp',
  'torch_autocast', 'gradient_clipping', 'zero_optimization', 'zero_allow_untested_optimizer', 'zero_force_ds_cpu_optimizer', 'aio', 'tensor_parallel',
  'hybrid_engine', 'expert_parallel', 'steps_per_print', 'wall_clock_breakdown', 'dump_state', 'autotuning', 'flops_profiler', 'activation_checkpointing',
  'sparse_attention', 'data_efficiency', 'curriculum_learning', 'tensorboard', 'wandb', 'comet', 'csv_monitor', 'elasticity', 'comms_logger',
  'compression_training', 'checkpoint', 'compile', 'data_types', 'pipeline', 'seq_parallel_communication_data_type', 'memory_breakdown',
  'disable_allgather', 'eigenvalue', 'progressive_layer_drop', 'dataloader_drop_last',
];

const BASE = { train_batch_size: 8, train_micro_batch_size_per_gpu: 4 };

/** A value DeepSpeed users write that atscale honours or accepts, and one it must refuse. */
const CASES: Record<string, { ok: unknown; refuse?: unknown; check?: (c: ReturnType<typeof parseDeepSpeedConfig>) => void }> = {
  train_batch_size: { ok: 8, check: (c) => assert.equal(c.gradAccum, 2) },
  train_micro_batch_size_per_gpu: { ok: 4, check: (c) => assert.equal(c.microBatchPerGpu, 4) },
  gradient_accumulation_steps: { ok: 2, check: (c) => assert.equal(c.gradAccum, 2) },
  managed_gradient_accumulation: { ok: true, refuse: false },
  optimizer: { ok: { type: 'AdamW', params: { lr: 3e-4 } }, refuse: { type: 'Lamb' }, check: (c) => assert.equal(c.optimizer.lr, 3e-4) },
  scheduler: { ok: { type: 'WarmupLR', params: { warmup_num_steps: 7 } }, refuse: { type: 'OneCycle' }, check: (c) => assert.equal(c.schedule.warmupIters, 7) },
  communication_data_type: { ok: 'fp32', refuse: 'bf16' },
  gradient_allreduce_op: { ok: 'mean', refuse: 'sum' },
  prescale_gradients: { ok: false, refuse: true },
  gradient_predivide_factor: { ok: 1, refuse: 2 },
  sparse_gradients: { ok: false, refuse: true },
  fp16: { ok: { enabled: false }, refuse: { enabled: true, loss_scale: 0 } },
  bf16: { ok: { enabled: 'auto' }, refuse: { enabled: true } },
  amp: { ok: { enabled: false }, refuse: { enabled: true, opt_level: 'O1' } },
  torch_autocast: { ok: { enabled: false }, refuse: { enabled: true, dtype: 'bfloat16' } },
  gradient_clipping: { ok: 0.5, refuse: -1, check: (c) => assert.equal(c.gradClip, 0.5) },
  zero_optimization: { ok: { stage: 2 }, refuse: { stage: 2, offload_optimizer: { device: 'cpu' } }, check: (c) => assert.equal(c.zero.stage, 2) },
  zero_allow_untested_optimizer: { ok: true, refuse: 'yes' },
  zero_force_ds_cpu_optimizer: { ok: false, refuse: true },
  aio: { ok: {}, refuse: { block_size: 1048576, queue_depth: 8 } },
  tensor_parallel: { ok: {} }, // honoured by the mesh engine (engine/mesh/config.ts, its own tests)
  hybrid_engine: { ok: { enabled: false }, refuse: { enabled: true, max_out_tokens: 512 } },
  expert_parallel: { ok: { enabled: false }, refuse: { enabled: true, autoep_size: 4 } },
  steps_per_print: { ok: 3, refuse: 0, check: (c) => assert.equal(c.stepsPerPrint, 3) },
  wall_clock_breakdown: { ok: false, refuse: true },
  dump_state: { ok: false, refuse: true },
  autotuning: { ok: { enabled: false }, refuse: { enabled: true, fast: true } },
  flops_profiler: { ok: { enabled: false, profile_step: 1 }, refuse: { enabled: true, profile_step: 1 } },
  activation_checkpointing: { ok: {} }, // honoured by the mesh engine
  sparse_attention: { ok: {}, refuse: { mode: 'fixed', block: 16 } },
  data_efficiency: { ok: { enabled: false }, refuse: { enabled: true } },
  curriculum_learning: { ok: { enabled: false }, refuse: { enabled: true, curriculum_type: 'seqlen' } },
  tensorboard: { ok: { enabled: true, output_path: 'logs/' }, refuse: { enabled: true, flush_secs: 5 }, check: (c) => assert.equal(c.monitor.tensorboard?.outputPath, 'logs/') },
  wandb: { ok: { enabled: false }, refuse: { enabled: true, project: 'p' } },
  comet: { ok: { enabled: false }, refuse: { enabled: true } },
  csv_monitor: { ok: { enabled: true, output_path: 'csv/' }, refuse: { enabled: 'yes' }, check: (c) => assert.equal(c.monitor.csv?.enabled, true) },
  elasticity: { ok: { enabled: false }, refuse: { enabled: true, max_train_batch_size: 2000 } },
  comms_logger: { ok: { enabled: false }, refuse: { enabled: true, verbose: false } },
  compression_training: { ok: {}, refuse: { weight_quantization: { shared_parameters: { enabled: true } } } },
  checkpoint: { ok: {}, refuse: { tag_validation: 'Warn' } },
  compile: { ok: { deepcompile: false }, refuse: { deepcompile: true, passes: ['autosp'] } },
  data_types: { ok: { grad_accum_dtype: 'fp32' }, refuse: { grad_accum_dtype: 'bf16' } },
  pipeline: { ok: {} }, // honoured by the mesh engine
  seq_parallel_communication_data_type: { ok: 'fp32', refuse: 'bf16' },
  memory_breakdown: { ok: false, refuse: true },
  disable_allgather: { ok: false, refuse: true },
  eigenvalue: { ok: { enabled: false }, refuse: { enabled: true, max_iter: 100 } },
  progressive_layer_drop: { ok: { enabled: false }, refuse: { enabled: true, theta: 0.5 } },
  dataloader_drop_last: { ok: true, refuse: 3 },
};

test('every documented DeepSpeed key is in the table, and every table key has a case here', () => {
  for (const k of DOCUMENTED) assert.ok(DS_KEYS[k], `documented key ${k} is not in DS_KEYS`);
  for (const k of Object.keys(DS_KEYS)) assert.ok(CASES[k], `no test case for ${k}`);
  const table = deepSpeedKeyTable();
  for (const k of Object.keys(DS_KEYS)) assert.match(table, new RegExp(`\\| \`${k}\` \\|`));
});

test('each key: the honoured or neutral value parses (and takes effect), the other is refused naming the key', () => {
  for (const [k, c] of Object.entries(CASES)) {
    const cfg = k === 'train_batch_size' || k === 'train_micro_batch_size_per_gpu' ? { ...BASE, [k]: c.ok } : k === 'gradient_accumulation_steps' ? { train_batch_size: 8, [k]: c.ok } : { ...BASE, [k]: c.ok };
    const parsed = parseDeepSpeedConfig(cfg, 1);
    c.check?.(parsed);
    if (c.refuse === undefined) continue;
    assert.throws(() => parseDeepSpeedConfig({ ...BASE, [k]: c.refuse }, 1), (e: Error) => {
      assert.match(e.message, new RegExp(k.replace(/_/g, '_')), `the refusal of ${k} does not name it: ${e.message}`);
      return true;
    });
  }
});

test('refusals say why and what to do; bf16/fp16 on a CPU device need a GPU device', () => {
  for (const key of ['bf16', 'fp16']) {
    assert.throws(() => parseDeepSpeedConfig({ ...BASE, [key]: { enabled: true } }, 1, 'cpu'), new RegExp(`"${key}": mixed precision needs a GPU device .*set "enabled": false`));
    assert.throws(() => parseDeepSpeedConfig({ ...BASE, [key]: { enabled: true } }, 1, 'webgpu'), /not implemented on device 'webgpu'/);
  }
  for (const [k, c] of Object.entries(CASES)) {
    if (c.refuse === undefined || DS_KEYS[k]!.status === 'honoured') continue;
    assert.throws(() => parseDeepSpeedConfig({ ...BASE, [k]: c.refuse }, 1), /remove it|set it to|set "enabled": false|use `|resume with|fix |sample with|must be true or false/, `the refusal of ${k} says what to do instead`);
  }
  assert.throws(() => parseDeepSpeedConfig({ ...BASE, bf16: { enabled: true }, aio: { block_size: 4096 } }, 1), (e: Error) => /bf16/.test(e.message) && /aio/.test(e.message), 'all problems are reported at once');
  assert.throws(() => parseDeepSpeedConfig({ ...BASE, fp17: {} }, 1), /unknown key 'fp17' .*known keys: .*bf16/);
});

test('README lists the key table exactly as the source of truth gives it', () => {
  const readme = readFileSync(fileURLToPath(new URL('../../../README.md', import.meta.url)), 'utf8');
  assert.ok(readme.includes(deepSpeedKeyTable()), 'README.md\'s DeepSpeed table is stale: paste the output of\n  node -e "import(\'./dist/src/engine/ds-keys.js\').then((m) => console.log(m.deepSpeedKeyTable()))"');
});
