// `npm run bench -- finetune [--json]`: does pretraining pay off? One GPT is pretrained on
// ../shared/data/pretrain/english.txt (byte-level BPE trained on the same text), then each of the
// six tasks in ../shared/data/tasks is fine-tuned three ways with the same budget:
//   scratch: the same architecture and tokenizer from random weights, full fine-tune;
//   full:    the pretrained weights, full fine-tune;
//   lora:    the pretrained weights frozen, LoRA adapters (r 8 on c_attn: under 2% of the parameters).
// Each is scored on the task's val split (first --val-n records) with greedy decoding, and the
// LoRA step's speed is compared with the full step's and with PyTorch's LoRA peer.
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from '../src/cli/args.js';
import { runTraining } from '../src/engine/train-loop.js';
import { runFinetune } from '../src/engine/finetune.js';
import { runEval } from '../src/engine/eval/run-eval.js';
import { openBase, openModel } from '../src/engine/model-dir.js';
import { FlatLayout } from '../src/nn/flat.js';
import type { MetricName } from '../src/engine/eval/metrics.js';
import type { TrainHyper } from '../src/models/presets.js';
import { torchAvailable } from './peers/torch-peer.js';
import { torchLoraStepMs } from './peers/lora-equivalence.js';

const DATA = fileURLToPath(new URL('../../../shared/data/', import.meta.url));
const TASKS: { name: string; metric: MetricName; maxNew: number }[] = [
  { name: 'summarize-man', metric: 'rougeL', maxNew: 24 },
  { name: 'define-foldoc', metric: 'rougeL', maxNew: 32 },
  { name: 'topic-fortune', metric: 'accuracy', maxNew: 4 },
  { name: 'reply-email', metric: 'rougeL', maxNew: 32 },
  { name: 'spam-email', metric: 'accuracy', maxNew: 4 },
  { name: 'code-python', metric: 'chrf', maxNew: 64 },
];

function hyper(maxIters: number, lr: number, batch: number): TrainHyper {
  return { batchSize: batch, gradAccum: 1, maxIters, lr, minLr: lr / 10, warmupIters: Math.min(20, maxIters), decayIters: maxIters, beta1: 0.9, beta2: 0.99, weightDecay: 0, gradClip: 1, evalInterval: maxIters, evalIters: 4, logInterval: 10 };
}

export async function run(argv: string[]): Promise<number> {
  const { flags } = parseArgs(argv, {
    json: { type: 'boolean', help: 'print JSON lines' },
    'corpus-mb': { type: 'number', help: 'MB of english.txt to pretrain on', default: 4 },
    'pretrain-iters': { type: 'number', help: 'pretraining steps', default: 1500 },
    'finetune-iters': { type: 'number', help: 'fine-tuning steps per task and variant', default: 200 },
    'val-n': { type: 'number', help: 'val records scored per task', default: 100 },
    tasks: { type: 'string', help: 'comma-separated task names', default: TASKS.map((t) => t.name).join(',') },
    out: { type: 'string', help: 'work directory (kept); default: a temporary one, removed' },
    threads: { type: 'number', help: 'ONNX Runtime threads', default: 2 },
  }, 'bench finetune');
  const english = join(DATA, 'pretrain', 'english.txt');
  if (!existsSync(english)) {
    console.log(`bench finetune: ${english} is not here; this benchmark needs ../shared/data (see DESIGN.md)`);
    return 0;
  }
  const work = (flags.out as string | undefined) ?? mkdtempSync(join(tmpdir(), 'atscale-bench-ft-'));
  mkdirSync(work, { recursive: true });
  const threads = flags.threads as number;
  const lines: Record<string, unknown>[] = [];
  const emit = (rec: Record<string, unknown>) => {
    lines.push(rec);
    if (flags.json) console.log(JSON.stringify(rec));
  };
  try {
    // 1. Pretraining (skipped when the work directory already holds the checkpoint).
    const pre = join(work, 'pretrain');
    if (!existsSync(join(pre, 'ckpt'))) {
      const corpus = join(work, 'english.txt');
      const text = readFileSync(english, 'utf8');
      writeFileSync(corpus, text.slice(0, Math.round((flags.corpusMb as number) * 1e6)));
      const t0 = performance.now();
      const r = await runTraining({
        model: { nLayer: 4, nHead: 4, nEmbd: 128, blockSize: 256, dropout: 0, bias: false },
        hyper: { ...hyper(flags.pretrainIters as number, 2e-3, 16), evalInterval: flags.pretrainIters as number, weightDecay: 0.1 },
        data: corpus, tokenizer: 'bpe', bpeVocab: 2048, out: pre, seed: 1, threads, quiet: !process.stderr.isTTY,
      });
      emit({ bench: 'finetune', phase: 'pretrain', iters: flags.pretrainIters, val_loss: r.valLoss, seconds: (performance.now() - t0) / 1000 });
    }
    const pretrained = openBase(pre);
    const scratch = { ...pretrained, params: new FlatLayout(pretrained.model).initialise(2) };
    const n = flags.finetuneIters as number;
    for (const task of TASKS.filter((t) => String(flags.tasks).split(',').includes(t.name))) {
      const dir = join(DATA, 'tasks', task.name);
      for (const variant of ['scratch', 'full', 'lora'] as const) {
        const out = join(work, task.name, variant);
        const lora = variant === 'lora' ? { r: 8, alpha: 16, dropout: 0, targetModules: ['c_attn'], useRslora: false } : undefined;
        const ft = await runFinetune(
          { model: pre, data: join(dir, 'train.jsonl'), val: join(dir, 'val.jsonl'), out, lora, hyper: hyper(n, lora ? 2e-3 : 5e-4, 16), trainOnPrompt: false, overflow: 'truncate', seed: 3, threads, quiet: true },
          variant === 'scratch' ? scratch : openBase(pre),
        );
        const m = openModel(ft.dir);
        const ev = await runEval(m, out, { data: join(dir, 'val.jsonl'), metric: task.metric, maxNewTokens: task.maxNew, temperature: 0, seed: 1, batch: 16, limit: flags.valN as number, quiet: true, exec: { threads } });
        const exact = task.metric === 'accuracy' || task.metric === 'exact' ? undefined : (await runEval(m, out, { data: join(dir, 'val.jsonl'), metric: 'exact', maxNewTokens: task.maxNew, temperature: 0, seed: 1, batch: 16, limit: flags.valN as number, quiet: true, exec: { threads }, out: join(out, 'exact.jsonl') })).score;
        emit({ bench: 'finetune', task: task.name, variant, metric: task.metric, score: ev.score, exact: exact ?? ev.score, n: ev.n, val_loss: ft.valLoss, train_tokens_per_s: Math.round(ft.tokensPerS), ms_per_iter: Math.round(ft.msPerIter), trainable: ft.trainable, total: ft.total });
      }
    }
    // LoRA vs full step time (medians over each fine-tune above), and PyTorch's LoRA step on the
    // same base, adapter and batch shape, measured here in the same run.
    const firstLora = lines.find((l) => l.variant === 'lora');
    const firstFull = lines.find((l) => l.variant === 'full' && l.task === firstLora?.task);
    if (firstLora && firstFull) {
      const torch = torchAvailable();
      const peer = torch.ok ? torchLoraStepMs(pretrained.model.architecture(), pretrained.params, new FlatLayout(pretrained.model), join(work, String(firstLora.task), 'lora', 'adapter'), 16) : undefined;
      emit({ bench: 'finetune', phase: 'step-speed', lora_ms: firstLora.ms_per_iter, full_ms: firstFull.ms_per_iter, lora_speedup_vs_full: (firstFull.ms_per_iter as number) / (firstLora.ms_per_iter as number), pytorch_lora_ms: peer?.ms ?? null, atscale_vs_pytorch_lora: peer ? peer.ms / (firstLora.ms_per_iter as number) : null, torch: torch.ok ? peer!.torchVersion : `not installed (${torch.reason})` });
    }
  } finally {
    if (!flags.out) rmSync(work, { recursive: true, force: true });
  }
  const rows = lines.filter((l) => l.task);
  const byTask = new Map<string, Record<string, Record<string, unknown>>>();
  for (const r of rows) byTask.set(String(r.task), { ...(byTask.get(String(r.task)) ?? {}), [String(r.variant)]: r });
  const cell = (r: Record<string, unknown> | undefined) => (r ? `${(r.score as number).toFixed(3)} (exact ${(r.exact as number).toFixed(2)}, ${r.train_tokens_per_s} tok/s)` : '-');
  console.log('\n| task | metric | from scratch, full fine-tune | pretrained + full fine-tune | pretrained + LoRA |\n|---|---|---|---|---|');
  for (const [task, v] of byTask) console.log(`| ${task} | ${String(v.full?.metric ?? v.lora?.metric)} | ${cell(v.scratch)} | ${cell(v.full)} | ${cell(v.lora)} |`);
  const sp = lines.find((l) => l.phase === 'step-speed');
  if (sp) console.log(`\nstep (batch 16 x 256): LoRA ${Number(sp.lora_ms).toFixed(0)} ms, full ${Number(sp.full_ms).toFixed(0)} ms (LoRA ${Number(sp.lora_speedup_vs_full).toFixed(2)}x faster); PyTorch LoRA ${sp.pytorch_lora_ms === null ? `n/a (${String(sp.torch)})` : `${Number(sp.pytorch_lora_ms).toFixed(0)} ms (atscale ${Number(sp.atscale_vs_pytorch_lora).toFixed(2)}x, torch ${String(sp.torch)})`}`);
  return 0;
}
