// Bad values, table-driven: every `atscale train` flag and --config key, every `atscale sample`
// number flag and every meta.json field, each with a wrong type, out of range, NaN and huge
// value, is refused before any work with an error that names it. Then the meaning of a
// checkpoint's tensors (F16/BF16 converted, integer dtypes refused, extra layers refused,
// tokenizer fingerprint), the memory estimate, and NaN handling (stop or roll back) on a real
// training run whose state is poisoned mid-run.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TRAIN_FLAGS, resolveTrainArgs } from '../../src/cli/train.js';
import { SAMPLE_FLAGS } from '../../src/cli/sample.js';
import { main } from '../../src/cli/main.js';
import { UsageError, camel } from '../../src/cli/args.js';
import { ruleFor, HYPER_RULES, MODEL_RULES, type Rule } from '../../src/engine/validate-config.js';
import { runTraining, NonFiniteError, type RunOptions } from '../../src/engine/train-loop.js';
import { MeshTrainer } from '../../src/engine/mesh-trainer.js';
import { Mesh } from '../../src/engine/mesh/mesh.js';
import { FusedStep } from '../../src/engine/step/fused.js';
import { loadTrainedModel } from '../../src/engine/load-trained.js';
import { MemoryLimitError } from '../../src/engine/memory-estimate.js';
import { preset } from '../../src/models/presets.js';
import { GPT } from '../../src/models/gpt.js';
import { gptConfig } from '../../src/models/config.js';
import { FlatLayout } from '../../src/nn/flat.js';
import { parseSafetensors, serializeSafetensors, float32ToF16Bits, f16BitsToFloat32, float32ToBf16Bits, type TensorEntry } from '../../src/checkpoint/index.js';

const work = mkdtempSync(join(tmpdir(), 'atscale-badvalues-'));
const corpus = join(work, 'corpus.txt');
writeFileSync(corpus, Array.from({ length: 120 }, (_, i) => `line ${i}: the quick brown fox jumps over the lazy dog.\n`).join(''));

/** Bad values for a rule: wrong type, out of range, NaN, huge (as command-line text). */
function badFlagValues(r: Rule): string[] {
  switch (r.kind) {
    case 'int':
      return ['abc', String(r.min - 1), '0.5', 'NaN', '1e300'];
    case 'number':
      return ['abc', r.minOpen ? String(r.min) : String(r.min - 1), 'NaN', '1e300'];
    case 'enum':
      return ['bogus', '5'];
    case 'string':
      return [''];
    case 'bool':
      return [];
    case 'interval':
      return ['abc', '0', '-1', '1.5', 'NaN', '1e300'];
  }
}

/** The same for JSON (config files and meta.json): raw JSON text, so 1e400 is Infinity. */
function badJsonValues(r: Rule): string[] {
  switch (r.kind) {
    case 'int':
      return ['"7"', String(r.min - 1), '0.5', 'null', '"NaN"', '1e400', String(r.max * 10 + 1)];
    case 'number':
      return ['"0.1"', r.minOpen ? String(r.min) : String(r.min - 1), 'null', '"NaN"', '1e400'];
    case 'enum':
      return ['"bogus"', '5'];
    case 'string':
      return ['5', '""'];
    case 'bool':
      return ['"yes"', '1'];
    case 'interval':
      return ['"abc"', '0', '1.5', 'null', '"NaN"', '1e400'];
  }
}

const snake = (k: string) => k.replace(/[A-Z]/g, (c) => '_' + c.toLowerCase());

test('every train flag: wrong type, out of range, NaN and huge values are refused, naming the flag', () => {
  let cases = 0;
  for (const [flag, spec] of Object.entries(TRAIN_FLAGS)) {
    if (flag === 'help' || flag === 'config') continue;
    const rule = ruleFor(camel(flag));
    assert.ok(rule, `--${flag} has no validation rule`);
    if (spec.type === 'boolean') continue;
    for (const bad of badFlagValues(rule)) {
      cases++;
      assert.throws(() => resolveTrainArgs(['--data', corpus, `--${flag}`, bad]), (e: Error) => e instanceof UsageError && e.message.includes(`--${flag}`), `--${flag} ${bad} was accepted`);
    }
  }
  // The probes from the issue, by name.
  for (const args of [['--seed', '0.5'], ['--lr', '-1'], ['--weight-decay', '-1'], ['--warmup-iters', '-5'], ['--log-interval', '0'], ['--min-lr', '1']]) {
    assert.throws(() => resolveTrainArgs(['--data', corpus, ...args]), (e: Error) => e instanceof UsageError && e.message.includes(args[0]!.slice(2).replace('min-lr', 'min-lr')), args.join(' '));
  }
  assert.ok(cases > 80, `only ${cases} cases`);
});

test('every --config key: wrong type, out of range, NaN and huge values are refused, naming the key and file', () => {
  const file = join(work, 'config.json');
  for (const [flag] of Object.entries(TRAIN_FLAGS)) {
    if (flag === 'help' || flag === 'config') continue;
    const key = snake(camel(flag));
    for (const bad of badJsonValues(ruleFor(camel(flag))!)) {
      writeFileSync(file, `{"${key}": ${bad}}`);
      assert.throws(() => resolveTrainArgs(['--config', file]), (e: Error) => e instanceof UsageError && e.message.includes(`'${key}' in ${file}`), `{"${key}": ${bad}} was accepted`);
    }
  }
  for (const text of ['null', '[1]', '"x"', '{"seed": "abc"}', '{"dropout": "0.1"}']) {
    writeFileSync(file, text);
    assert.throws(() => resolveTrainArgs(['--config', file]), UsageError, text);
  }
});

async function capture(argv: string[]): Promise<{ code: number; err: string }> {
  const lines: string[] = [];
  const orig = console.error;
  console.error = (...a: unknown[]) => lines.push(a.join(' '));
  try {
    return { code: await main(argv), err: lines.join('\n') };
  } finally {
    console.error = orig;
  }
}

test('every sample number flag: bad values are refused before the checkpoint is read, naming the flag', async () => {
  for (const [flag, spec] of Object.entries(SAMPLE_FLAGS)) {
    if (spec.type !== 'number') continue;
    assert.ok(spec.min !== undefined && spec.max !== undefined, `--${flag} has no range`);
    const values = ['abc', 'NaN', String(spec.minOpen ? spec.min : spec.min! - 1), String(spec.max! * 10 + 1), ...(spec.int ? ['1.5'] : [])];
    for (const bad of values) {
      const r = await capture(['sample', '--ckpt', join(work, 'does-not-exist'), `--${flag}`, bad]);
      assert.equal(r.code, 2, `--${flag} ${bad}: ${r.err}`);
      assert.match(r.err, new RegExp(`--${flag}`));
    }
  }
  for (const args of [['--max-new-tokens', '-5'], ['--top-k', '0'], ['--device', 'tpu']]) {
    const r = await capture(['sample', '--ckpt', 'x', ...args]);
    assert.equal(r.code, 2);
    assert.match(r.err, new RegExp(args[0]!));
  }
});

// --- a real checkpoint, edited with its checksums rewritten, so only the meaning is wrong ---

const TINY: Partial<RunOptions> = { model: { nLayer: 2, nHead: 2, nEmbd: 16, blockSize: 8, dropout: 0, bias: false }, tokenizer: 'char', seed: 7, threads: 1, quiet: true, peakGflops: 1 };
const tinyHyper = { ...preset('cpu-small').train, batchSize: 2, maxIters: 4, evalInterval: 2, evalIters: 1, logInterval: 1, warmupIters: 1, decayIters: 4 };
const options = (out: string, extra: Partial<RunOptions> = {}): RunOptions => ({ ...TINY, hyper: { ...tinyHyper }, data: corpus, out, ...extra }) as RunOptions;

/** Replaces a checkpoint file and rewrites its manifest entry, as a careful forger would. */
function rewrite(dir: string, name: string, data: Buffer | string): void {
  const bytes = Buffer.from(data);
  writeFileSync(join(dir, name), bytes);
  const manifest = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8')) as { files: Record<string, { bytes: number; sha256: string }> };
  manifest.files[name] = { bytes: bytes.length, sha256: createHash('sha256').update(bytes).digest('hex') };
  writeFileSync(join(dir, 'manifest.json'), JSON.stringify(manifest));
}

let good: { dir: string; meta: string; tensors: Buffer; tokenizer: string } | undefined;
async function goodCheckpoint() {
  if (!good) {
    const out = join(work, 'good');
    await runTraining(options(out));
    const dir = join(out, 'ckpt');
    good = { dir, meta: readFileSync(join(dir, 'meta.json'), 'utf8'), tensors: readFileSync(join(dir, 'model.safetensors')), tokenizer: readFileSync(join(dir, 'tokenizer.json'), 'utf8') };
  }
  for (const [name, data] of [['meta.json', good.meta], ['model.safetensors', good.tensors], ['tokenizer.json', good.tokenizer]] as const) rewrite(good.dir, name, data);
  return good;
}

/** Sets a dotted path in a JSON object to raw JSON text. */
function withField(metaText: string, path: string, raw: string): string {
  const meta = JSON.parse(metaText) as Record<string, unknown>;
  const keys = path.split('.');
  let o = meta;
  for (const k of keys.slice(0, -1)) o = o[k] as Record<string, unknown>;
  o[keys.at(-1)!] = '__RAW__';
  return JSON.stringify(meta).replace('"__RAW__"', raw);
}

test('every meta.json field: wrong type, out of range, NaN and huge values refuse the resume, naming the field', async () => {
  const g = await goodCheckpoint();
  const out = join(work, 'resume-bad');
  const fields: [string, string[]][] = [
    ['iter', badJsonValues(HYPER_RULES.maxIters)],
    ['seed', ['"abc"', '0.5', '-1', '"NaN"', '1e400']],
    ['world', ['0', '"2"', '1e400']],
    ['trainRng', ['[0,0,0,0]', '"x"', '[1,2,3]', '[1,2,3,-4]']],
    ['valRng', ['null']],
    ['tokenizer', ['5', '"abc"']],
    ['skipped', ['["a"]', '[1e12]']],
    ...Object.entries(MODEL_RULES).map(([k, r]) => [`architecture.${k}`, badJsonValues(r)] as [string, string[]]),
    ...Object.entries(HYPER_RULES).map(([k, r]) => [`hyper.${k}`, badJsonValues(r)] as [string, string[]]),
    ['architecture.extraLayers', ['2']],
    ['hyper.momentum', ['0.9']],
  ];
  let cases = 0;
  for (const [field, values] of fields) {
    for (const raw of values) {
      cases++;
      rewrite(g.dir, 'meta.json', withField(g.meta, field, raw));
      await assert.rejects(runTraining(options(out, { resume: g.dir })), (e: Error) => e.message.includes(field.split('.').at(-1)!) && e.message.includes('meta.json'), `${field} = ${raw} was accepted`);
    }
  }
  for (const whole of ['null', '[]', '"meta"', '7']) {
    rewrite(g.dir, 'meta.json', whole);
    await assert.rejects(runTraining(options(out, { resume: g.dir })), /meta\.json must be a JSON object/);
    assert.throws(() => loadTrainedModel(g.dir), /meta\.json must be a JSON object/);
  }
  assert.ok(!existsSync(join(out, 'metrics.jsonl')), 'training started from a bad meta.json');
  assert.ok(cases > 100, `only ${cases} cases`);
});

test('tensors load by their declared dtype: F16/BF16 converted, integers refused, extra layers refused, tokenizer checked', async () => {
  const g = await goodCheckpoint();
  const { tensors } = parseSafetensors(g.tensors);
  const name = 'transformer.wte.weight' in tensors ? 'transformer.wte.weight' : Object.keys(tensors).find((k) => !k.startsWith('optimizer'))!;
  const f32 = tensors[name]!.data as Float32Array;
  const edited = (e: TensorEntry) => serializeSafetensors({ ...tensors, [name]: e });
  const slot = (loaded: ReturnType<typeof loadTrainedModel>) => {
    const s = new FlatLayout(loaded.model).slots.find((x) => x.name === name)!;
    return loaded.params.subarray(s.offset, s.offset + s.size);
  };
  rewrite(g.dir, 'model.safetensors', edited({ dtype: 'F16', shape: tensors[name]!.shape, data: float32ToF16Bits(f32) }));
  assert.deepEqual(Array.from(slot(loadTrainedModel(g.dir))), Array.from(f16BitsToFloat32(float32ToF16Bits(f32))));
  rewrite(g.dir, 'model.safetensors', edited({ dtype: 'BF16', shape: tensors[name]!.shape, data: float32ToBf16Bits(f32) }));
  const bf = slot(loadTrainedModel(g.dir));
  for (let i = 0; i < f32.length; i++) assert.ok(Math.abs(bf[i]! - f32[i]!) <= Math.abs(f32[i]!) / 128 + 1e-30, `BF16 value ${i} was not converted`);
  for (const dtype of ['I32', 'U32'] as const) {
    const data = dtype === 'I32' ? new Int32Array(f32.buffer.slice(f32.byteOffset, f32.byteOffset + f32.byteLength)) : new Uint32Array(f32.buffer.slice(f32.byteOffset, f32.byteOffset + f32.byteLength));
    rewrite(g.dir, 'model.safetensors', edited({ dtype, shape: tensors[name]!.shape, data }));
    assert.throws(() => loadTrainedModel(g.dir), new RegExp(`"${name.replace(/\./g, '\\.')}" has dtype ${dtype}.*model\\.safetensors|model\\.safetensors.*"${name.replace(/\./g, '\\.')}" has dtype ${dtype}`));
    await assert.rejects(runTraining(options(join(work, 'resume-int'), { resume: g.dir })), new RegExp(`has dtype ${dtype}`));
  }
  rewrite(g.dir, 'model.safetensors', g.tensors);
  // meta says one layer fewer than the tensors hold: refused, not silently dropped.
  rewrite(g.dir, 'meta.json', withField(g.meta, 'architecture.nLayer', '1'));
  assert.throws(() => loadTrainedModel(g.dir), /parameters the model does not: .*\.1\./);
  await assert.rejects(runTraining(options(join(work, 'resume-extra'), { resume: g.dir })), /parameters the model does not/);
  rewrite(g.dir, 'meta.json', g.meta);
  // A tokenizer from another run (same size, different mapping) does not match the fingerprint.
  const tok = JSON.parse(g.tokenizer) as { chars: string[] };
  [tok.chars[0], tok.chars[1]] = [tok.chars[1]!, tok.chars[0]!];
  rewrite(g.dir, 'tokenizer.json', JSON.stringify(tok));
  assert.throws(() => loadTrainedModel(g.dir), /tokenizer\.json does not match the fingerprint in meta\.json/);
  const r = await capture(['sample', '--ckpt', g.dir, '--max-new-tokens', '2']);
  assert.equal(r.code, 1);
  assert.match(r.err, /fingerprint/);
});

test('the memory estimate refuses before anything is allocated, with the figures; deep models build without overflowing the stack', async () => {
  const out = join(work, 'too-big');
  await assert.rejects(runTraining(options(out, { maxMemoryGb: 0.0001 })), (e: Error) => e instanceof MemoryLimitError && /params .* grads .* optimizer .* activations .*--max-memory-gb 0.0001/.test(e.message));
  await assert.rejects(runTraining(options(out, { model: { nLayer: 24, nHead: 16, nEmbd: 2048, blockSize: 64 } })), MemoryLimitError);
  await assert.rejects(runTraining(options(out, { model: { nLayer: 4, nHead: 4, nEmbd: 128, blockSize: 16384 } })), MemoryLimitError);
  assert.ok(!existsSync(out), 'the output directory was created before the estimate refused');
  const deep = new FlatLayout(new GPT(gptConfig({ nLayer: 10_000, nHead: 1, nEmbd: 4, blockSize: 4, vocabSize: 8 })));
  const one = new FlatLayout(new GPT(gptConfig({ nLayer: 1, nHead: 1, nEmbd: 4, blockSize: 4, vocabSize: 8 })));
  assert.equal(deep.slots.length, one.slots.length + 9_999 * (one.slots.length - 4));
});

/** A real trainer on the mesh of one (the fused step) whose parameters get a NaN written into them before step `at` and the
 * next steps (`times` in all),
 * as a memory fault or an overflow would; everything else is the real step. */
function poisonedTrainer(at: number, times: number): RunOptions['makeTrainer'] {
  let left = times;
  return async (model, micro, seed) => {
    const t = new MeshTrainer(model, Mesh.single(), { shape: { batch: micro, seq: model.dims.blockSize }, optimizer: { lr: tinyHyper.lr, beta1: tinyHyper.beta1, beta2: tinyHyper.beta2, eps: 1e-8, weightDecay: tinyHyper.weightDecay }, gradClip: tinyHyper.gradClip, gradAccum: 1, seed, threads: 1 });
    const step = t.step.bind(t);
    t.step = async (batches, lr, iter) => {
      if (iter >= at && left-- > 0) ((t.strategy as FusedStep).params.cur.data as Float32Array)[0] = NaN;
      return step(batches, lr, iter);
    };
    return t;
  };
}

test('a NaN loss stops the run before it saves, naming the step; rollback reloads the last checkpoint and skips the batch', async () => {
  const out = join(work, 'nan-stop');
  const opts = options(out, { hyper: { ...tinyHyper, maxIters: 6 }, makeTrainer: poisonedTrainer(3, 1) });
  await assert.rejects(runTraining(opts), (e: Error) => e instanceof NonFiniteError && /at step 3/.test(e.message) && /last good checkpoint .*step 2.* was not touched/.test(e.message));
  const meta = JSON.parse(readFileSync(join(out, 'ckpt', 'meta.json'), 'utf8')) as { iter: number };
  assert.equal(meta.iter, 2, 'the last good checkpoint was overwritten');
  loadTrainedModel(join(out, 'ckpt')); // still verifies and loads

  const out2 = join(work, 'nan-rollback');
  const r = await runTraining(options(out2, { hyper: { ...tinyHyper, maxIters: 6 }, makeTrainer: poisonedTrainer(3, 1), onNonFinite: 'rollback' }));
  assert.deepEqual(r.losses.map((l) => l.iter), [1, 2, 3, 5, 6]); // steps counted from 1; step 4 skipped
  assert.ok(r.losses.every((l) => Number.isFinite(l.loss)));
  const meta2 = JSON.parse(readFileSync(join(out2, 'ckpt', 'meta.json'), 'utf8')) as { iter: number; skipped: number[] };
  assert.equal(meta2.iter, 6);
  assert.deepEqual(meta2.skipped, [3]);
  assert.match(readFileSync(join(out2, 'metrics.jsonl'), 'utf8'), /"rollback_to":2/);

  // A fault every time: rollback gives up after a bounded number of tries, never loops forever.
  const out3 = join(work, 'nan-always');
  await assert.rejects(runTraining(options(out3, { hyper: { ...tinyHyper, maxIters: 60 }, makeTrainer: poisonedTrainer(3, 1000), onNonFinite: 'rollback' })), /rollbacks already/);
});
