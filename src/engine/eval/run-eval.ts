// `atscale eval`: generate an answer for every record of a JSONL file (the prompt, or a chat
// up to its last assistant message) and score it against the reference answer.
import { mkdirSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { readRecords, type FinetuneRecord } from '../../data/finetune-records.js';
import type { ChatFormat } from '../../data/chat-format.js';
import type { ExecOptions } from '../../runtime/session.js';
import { BatchGenerator } from './generate-batch.js';
import { score, type MetricName } from './metrics.js';
import { resolveModelDir, type OpenedModel } from '../model-dir.js';
import { ProgressBar } from '../../monitor/index.js';

export interface EvalOptions {
  data: string;
  metric: MetricName;
  maxNewTokens: number;
  temperature: number;
  topK?: number;
  seed: number;
  batch: number;
  /** Evaluate only N records spread evenly over the file (0: all). */
  limit: number;
  /** Where predictions go; default <run dir>/eval/<data name>.predictions.jsonl. */
  out?: string;
  quiet?: boolean;
  exec?: ExecOptions;
}

export interface EvalResult {
  metric: MetricName;
  score: number;
  n: number;
  predictionsFile: string;
  tokensPerS: number;
}

/** The prompt text and the reference answer of a record. */
export function promptAndReference(r: FinetuneRecord, format: ChatFormat): { prompt: string; reference: string } {
  if (r.kind === 'completion') return { prompt: r.prompt, reference: r.completion };
  const last = r.messages.map((m) => m.role).lastIndexOf('assistant');
  return { prompt: format.generationPrompt(r.messages.slice(0, last)), reference: r.messages[last]!.content };
}

export function defaultPredictionsPath(modelDir: string, data: string): string {
  return join(dirname(resolveModelDir(modelDir)), 'eval', `${basename(data).replace(/\.jsonl$/, '')}.predictions.jsonl`);
}

export async function runEval(m: OpenedModel, modelArg: string, o: EvalOptions): Promise<EvalResult> {
  let records = readRecords(o.data);
  // A subset is spread evenly over the file: task files are often sorted by label, and their
  // first N lines can all share one answer.
  if (o.limit > 0 && o.limit < records.length) {
    const all = records;
    records = Array.from({ length: o.limit }, (_, i) => all[Math.floor((i * all.length) / o.limit)]!);
  }
  const tok = m.tokenizer;
  const eosIds = tok.encode(m.chatFormat.endOfText);
  const stopToken = eosIds.length === 1 ? eosIds[0] : undefined;
  const gen = new BatchGenerator(m.model, m.params, Math.min(o.batch, records.length), o.exec);
  const items = records.map((r) => ({ line: r.line, ...promptAndReference(r, m.chatFormat) }));
  const predictions: string[] = [];
  const t0 = performance.now();
  const bar = new ProgressBar('eval', items.length, { unit: 'examples', quiet: o.quiet });
  let generated = 0;
  for (let i = 0; i < items.length; i += gen.rows) {
    const chunk = items.slice(i, i + gen.rows);
    const outs = await gen.generate(
      chunk.map((c) => Array.from(tok.encode(c.prompt))),
      { maxNewTokens: o.maxNewTokens, temperature: o.temperature, topK: o.topK, seed: o.seed + i, stopToken },
    );
    for (const ids of outs) {
      generated += ids.length;
      predictions.push(tok.decode(ids));
    }
    bar.update(Math.min(i + gen.rows, items.length));
  }
  bar.finish(`${Math.round(generated / ((performance.now() - t0) / 1000))} generated tok/s`);
  const s = score(o.metric, predictions, items.map((it) => it.reference));
  const file = o.out ?? defaultPredictionsPath(modelArg, o.data);
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(file, items.map((it, k) => JSON.stringify({ line: it.line, prompt: it.prompt, target: it.reference, prediction: predictions[k], score: s.perExample[k] })).join('\n') + '\n');
  return { metric: o.metric, score: s.score, n: items.length, predictionsFile: file, tokensPerS: generated / ((performance.now() - t0) / 1000) };
}
