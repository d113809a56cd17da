// Fine-tuning: a pretrained model on prompt/completion or chat examples, with the loss on the
// answer tokens only, as a full fine-tune or with LoRA adapters. The data is read, rendered and
// checked before anything is built; the output is a directory every model command opens:
//   OUT/model    (full fine-tune: a checkpoint, with the chat format in its meta)
//   OUT/adapter  (LoRA: a PEFT-style adapter bound to the base's weights and tokenizer)
//   OUT/metrics.jsonl
import { appendFileSync, mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { Rng } from '../tensor/rng.js';
import { readRecords } from '../data/finetune-records.js';
import { encodeExamples, ExampleSampler, padBatch, type EncodeReport, type OverflowPolicy } from '../data/finetune-examples.js';
import type { TrainHyper } from '../models/presets.js';
import type { LanguageModel } from '../models/model.js';
import { LoraModel } from '../models/lora-model.js';
import { defaultLoraTargets } from '../models/registry.js';
import { FlatLayout } from '../nn/flat.js';
import type { LoraConfig } from '../nn/lora.js';
import { cosineLr } from '../optim/schedule.js';
import { createTrainer } from './mesh-trainer.js';
import { Mesh } from './mesh/mesh.js';
import type { Trainer } from './trainer.js';
import { openBase, type OpenedModel } from './model-dir.js';
import { saveAdapter } from './adapter-dir.js';
import { Progress } from './progress.js';
import { median } from '../runtime/median.js';

export interface FinetuneOptions {
  model: string;
  data: string;
  val?: string;
  out: string;
  /** LoRA adapters; undefined: full fine-tune. No targetModules: the model family's default. */
  lora?: Omit<LoraConfig, 'targetModules'> & { targetModules?: string[] };
  hyper: TrainHyper;
  trainOnPrompt: boolean;
  overflow: OverflowPolicy;
  seed: number;
  device?: 'cpu' | 'webgpu';
  threads?: number;
  quiet?: boolean;
  /** Data-parallel rank and world (the ZeRO engine plugs in through makeTrainer). */
  rank?: number;
  world?: number;
  makeTrainer?: (model: LanguageModel, microBatch: number, seed: number, initial: Float32Array) => Promise<Trainer>;
}

export interface FinetuneResult {
  dir: string;
  model: LanguageModel;
  trainer: Trainer;
  losses: number[];
  valLoss: number;
  trainable: number;
  total: number;
  /** Training tokens per second over the whole run (evaluation included). */
  tokensPerS: number;
  /** Median time of one optimizer step. */
  msPerIter: number;
}

/** Bytes of training state per trainable parameter: fp32 weight, gradient and AdamW's two moments. */
export const STATE_BYTES_PER_TRAINABLE = 16;

function report(file: string, r: EncodeReport, log: (s: string) => void): void {
  log(`${file}: ${r.examples.length} examples, ${r.learnedTokens} learned tokens` + (r.truncated ? `, ${r.truncated} truncated to fit` : ''));
  if (r.skipped.length > 0) {
    const reasons = new Map<string, number>();
    for (const s of r.skipped) reasons.set(s.reason.replace(/^\d+ tokens/, 'N tokens'), (reasons.get(s.reason.replace(/^\d+ tokens/, 'N tokens')) ?? 0) + 1);
    log(`${file}: skipped ${r.skipped.length} examples (lines ${r.skipped.slice(0, 5).map((s) => s.line).join(', ')}${r.skipped.length > 5 ? ', ...' : ''}): ${[...reasons].map(([k, n]) => `${n} x ${k}`).join('; ')}`);
  }
}

export async function runFinetune(o: FinetuneOptions, opened: OpenedModel = openBase(o.model)): Promise<FinetuneResult> {
  const rank = o.rank ?? 0;
  const world = o.world ?? 1;
  const h = o.hyper;
  // The data report and the memory report print even when quiet: they are facts about the run, not progress.
  const log = (s: string) => rank === 0 && process.stderr.write(s + '\n');
  const T = opened.model.dims.blockSize;
  const enc = { blockSize: T, format: opened.chatFormat, trainOnPrompt: o.trainOnPrompt, overflow: o.overflow };
  const train = encodeExamples(o.data, readRecords(o.data), opened.tokenizer, enc);
  report(o.data, train, log);
  const val = o.val ? encodeExamples(o.val, readRecords(o.val), opened.tokenizer, enc) : undefined;
  if (val) report(o.val!, val, log);
  if (h.batchSize % world !== 0) throw new Error(`batch size ${h.batchSize} is not divisible by the ${world} data-parallel ranks`);

  const lora: LoraConfig | undefined = o.lora && { ...o.lora, targetModules: o.lora.targetModules ?? defaultLoraTargets(opened.model.family) };
  const model: LanguageModel = lora ? new LoraModel(opened.model, opened.params, lora) : opened.model;
  const layout = new FlatLayout(model);
  const initial = o.lora ? layout.initialise(o.seed) : opened.params;
  const total = opened.model.paramCount();
  const trainable = layout.size;
  log(
    `${lora ? `LoRA r=${lora.r} alpha=${lora.alpha} on ${lora.targetModules.join(',')}` : 'full fine-tune'}: ` +
      `${trainable.toLocaleString('en')} trainable of ${total.toLocaleString('en')} parameters (${((100 * trainable) / total).toFixed(2)}%); ` +
      `training state ${(trainable * STATE_BYTES_PER_TRAINABLE / 2 ** 20).toFixed(1)} MiB (weights, grads, AdamW m and v)` +
      (o.lora ? ` + frozen base ${(total * 4 / 2 ** 20).toFixed(1)} MiB in the graph` : ''),
  );

  const micro = h.batchSize / world;
  const trainer = o.makeTrainer
    ? await o.makeTrainer(model, micro, o.seed, initial)
    : await createTrainer(model, Mesh.single(), {
        shape: { batch: micro, seq: T },
        optimizer: { lr: h.lr, beta1: h.beta1, beta2: h.beta2, eps: 1e-8, weightDecay: h.weightDecay },
        gradClip: h.gradClip,
        gradAccum: h.gradAccum,
        seed: o.seed,
        device: o.device,
        threads: o.threads,
        initialParams: initial,
      });
  await trainer.prepare();

  mkdirSync(o.out, { recursive: true });
  const metricsPath = join(o.out, 'metrics.jsonl');
  if (rank === 0) rmSync(metricsPath, { force: true });
  const write = (rec: object) => rank === 0 && appendFileSync(metricsPath, JSON.stringify(rec) + '\n');
  const sampler = new ExampleSampler(train.examples, new Rng(o.seed));
  const rows = (b: { x: Int32Array; y: Int32Array }) => {
    // This rank's contiguous rows of the global batch (every rank draws the same global batch).
    const at = rank * micro * T;
    return { x: b.x.slice(at, at + micro * T), y: b.y.slice(at, at + micro * T) };
  };
  const evaluate = async (): Promise<number> => {
    if (!val) return NaN;
    let sum = 0;
    let n = 0;
    for (let i = 0; i + h.batchSize <= val.examples.length && n < h.evalIters; i += h.batchSize, n++) {
      sum += await trainer.evalLoss(rows(padBatch(val.examples.slice(i, i + h.batchSize), T)));
    }
    return n > 0 ? sum / n : NaN;
  };
  const schedule = { lr: h.lr, minLr: h.minLr, warmupIters: h.warmupIters, decayIters: h.decayIters };
  const progress = new Progress(h.maxIters, o.quiet || rank !== 0);
  const losses: number[] = [];
  let valLoss = NaN;
  let tokens = 0;
  const stepMs: number[] = [];
  const t0 = performance.now();
  for (let iter = 0; iter < h.maxIters; iter++) {
    const lr = cosineLr(schedule, iter);
    const batches = Array.from({ length: h.gradAccum }, () => rows(sampler.next(h.batchSize, T)));
    const ts = performance.now();
    const r = await trainer.step(batches, lr, iter);
    stepMs.push(performance.now() - ts);
    if (!Number.isFinite(r.loss)) throw new Error(`loss became ${r.loss} at iteration ${iter}; lower --lr or check the data`);
    losses.push(r.loss);
    tokens += h.batchSize * h.gradAccum * T;
    const tps = tokens / ((performance.now() - t0) / 1000);
    const step = iter + 1; // counted from 1 in what a user reads, as the training loop does
    if (iter % h.logInterval === 0 || step === h.maxIters) {
      write({ iter: step, loss: r.loss, lr, tokens_per_s: Math.round(tps), grad_norm: r.gradNorm });
      progress.update(step, r.loss, tps);
    }
    if (val && (step % h.evalInterval === 0 || step === h.maxIters)) {
      valLoss = await evaluate();
      write({ iter: step, val_loss: valLoss });
      if (!o.quiet && rank === 0) process.stderr.write(`iter ${step}/${h.maxIters}: val loss ${valLoss.toFixed(4)}\n`);
    }
  }
  progress.done();
  const seconds = (performance.now() - t0) / 1000;
  const params = await trainer.fullParams();
  const dir = join(o.out, o.lora ? 'adapter' : 'model');
  if (rank === 0) {
    if (o.lora) saveAdapter(dir, model as LoraModel, params, opened.dir, opened.tokenizer.fingerprint());
    else await saveFinetuned(dir, trainer, model, opened, o, h);
  } else if (!o.lora) {
    await saveFinetuned(dir, trainer, model, opened, o, h); // saving a sharded trainer is collective
  }
  return { dir, model, trainer, losses, valLoss, trainable, total, tokensPerS: tokens / seconds, msPerIter: median(stepMs) };
}

async function saveFinetuned(dir: string, trainer: Trainer, model: LanguageModel, opened: OpenedModel, o: FinetuneOptions, h: TrainHyper): Promise<void> {
  const meta = {
    iter: h.maxIters,
    config: model.architecture(),
    hyper: h,
    seed: o.seed,
    tokenizer: opened.tokenizer.fingerprint(),
    chatFormat: opened.chatFormat.toJSON(),
    finetune: { from: opened.dir, data: o.data, trainOnPrompt: o.trainOnPrompt, overflow: o.overflow },
  };
  await trainer.save(dir, meta, { 'tokenizer.json': JSON.stringify(opened.tokenizer.toJSON()) });
}
