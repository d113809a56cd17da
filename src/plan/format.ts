// Human-readable tables for plans, searches and the Table 1 validation.
import type { PlanResult } from './evaluate.js';
import type { ReliabilityResult } from './reliability.js';
import { describeLayout, type SearchResult } from './search.js';
import { TIME_LABELS } from './time.js';
import type { Table1Check } from './validation.js';

/** Right-aligns columns of numbers, left-aligns the rest. */
export function table(header: string[], rows: string[][]): string {
  const all = [header, ...rows];
  const widths = header.map((_, i) => Math.max(...all.map((r) => (r[i] ?? '').length)));
  const numeric = header.map((_, i) => rows.every((r) => /^[-+]?[0-9.,]+[%kMBT]?$|^[0-9]+ \/ [0-9]+$|^[0-9]+x[0-9]+$/.test(r[i] ?? '')));
  const line = (r: string[]) => r.map((cell, i) => (numeric[i] ? cell.padStart(widths[i]!) : cell.padEnd(widths[i]!))).join('  ').trimEnd();
  return [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n');
}

export function human(x: number): string {
  const units: [number, string][] = [[1e12, 'T'], [1e9, 'B'], [1e6, 'M'], [1e3, 'k']];
  for (const [v, u] of units) if (Math.abs(x) >= v) return `${(x / v).toFixed(x / v >= 100 ? 0 : 1)}${u}`;
  return x.toFixed(0);
}

const pct = (x: number) => `${(x * 100).toFixed(1)}%`;

export function formatPlan(r: PlanResult): string {
  const t = r.training;
  const m = r.model;
  const head = [
    `model ${m.name}: ${human(r.params)} parameters (${m.layers} layers, hidden ${m.hidden}, ${m.heads} heads, ffn ${m.ffn}, vocab ${m.vocab}, context ${m.seqLen})`,
    `cluster ${r.cluster}, ${t.gpus} GPUs: ${describeLayout(t)}`,
    ...(r.clusterNote ? [`  (${r.clusterNote})`] : []),
    `global batch ${t.globalBatch} x ${t.seqLen} tokens, ${t.globalBatch / (t.microBatch * t.dp)} micro-batches per step, ${t.dtype}`,
    '',
  ];
  const mem = r.memory;
  const memRows = (['params', 'grads', 'optimizer', 'activations', 'overhead'] as const).map((k) => [k, mem[k].toFixed(2)]);
  memRows.push(['total', mem.total.toFixed(2)], ['usable on this GPU', r.memoryLimitGB.toFixed(2)]);
  const timeRows = (Object.keys(TIME_LABELS) as (keyof typeof TIME_LABELS)[]).map((k) => [TIME_LABELS[k], r.time[k].toFixed(3), pct(r.time[k] / r.time.step)]);
  timeRows.push(['step', r.time.step.toFixed(3), '100.0%']);
  const out = [
    ...head,
    table(['memory per GPU', 'GB'], memRows),
    r.fits ? 'fits in memory' : `DOES NOT FIT: needs ${mem.total.toFixed(1)} GB, ${r.memoryLimitGB.toFixed(1)} GB usable`,
    '',
    table(['time per step', 'seconds', 'share'], timeRows),
    '',
    table(['throughput', 'value'], [
      ['tokens/s', human(r.tokensPerS)],
      ['TFLOP/s per GPU (model)', r.tflopsModel.toFixed(1)],
      ['TFLOP/s per GPU (hardware)', r.tflopsHardware.toFixed(1)],
      ['MFU', pct(r.mfu)],
      ['HFU', pct(r.hfu)],
      [`days for ${human(t.tokens)} tokens`, r.days.toFixed(1)],
      ['GPU-hours', human(r.gpuHours)],
      ['cost (USD)', human(r.costDollars)],
    ]),
  ];
  return out.join('\n');
}

export function formatReliability(x: ReliabilityResult, nodeMtbfHours: number, checkpointS: number, restartS: number): string {
  return table(['reliability', 'value'], [
    ['node MTBF (hours; --node-mtbf-hours)', nodeMtbfHours.toFixed(0)],
    ['system MTBF (hours)', x.systemMtbfHours.toFixed(2)],
    ['checkpoint write / restart (s; --checkpoint-s, --restart-s)', `${checkpointS} / ${restartS}`],
    ['checkpoint every (Young, min)', (x.youngIntervalS / 60).toFixed(1)],
    ['checkpoint every (Daly, min)', (x.dalyIntervalS / 60).toFixed(1)],
    ['expected failures', x.expectedFailures.toFixed(0)],
    ['expected wall days', (x.expectedWallSeconds / 86400).toFixed(1)],
    ['goodput', pct(x.goodput)],
  ]);
}

export function formatSearch(s: SearchResult): string {
  const rows = s.best.map((r, i) => [
    String(i + 1), describeLayout(r.training), r.time.step.toFixed(2), r.tflopsHardware.toFixed(0), pct(r.mfu), r.memory.total.toFixed(1), r.days.toFixed(1),
  ]);
  const lines = [table(['#', 'layout', 's/step', 'TFLOP/s', 'MFU', 'GB/GPU', 'days'], rows), '', `evaluated ${s.evaluated} layouts that pass the divisibility rules; layout combinations rejected:`];
  for (const [why, n] of Object.entries(s.rejected).sort((a, b) => b[1] - a[1])) lines.push(`  ${String(n).padStart(6)}  ${why}`);
  const oom = s.fastestRejectedForMemory;
  if (oom && (s.best.length === 0 || oom.time.step < s.best[0]!.time.step)) {
    lines.push(`  the fastest layout that did not fit: ${describeLayout(oom.training)}, ${oom.time.step.toFixed(2)} s/step, needs ${oom.memory.total.toFixed(1)} GB of ${oom.memoryLimitGB.toFixed(1)} usable`);
  }
  return lines.join('\n');
}

export function formatValidation(checks: Table1Check[]): string {
  const rows = checks.map((c) => [
    `${c.row.paramsB}B`, c.paramsB.toFixed(2), `${c.row.tp}x${c.row.pp}`, String(c.row.gpus), String(c.row.batch),
    String(c.row.microBatch), String(c.row.interleave), c.row.ddp, String(c.row.tflopsPerGpu), c.result.tflopsHardware.toFixed(1), `${c.tflopsErr >= 0 ? '+' : ''}${(c.tflopsErr * 100).toFixed(1)}%`,
  ]);
  return table(['model', 'params B (ours)', 'TPxPP', 'GPUs', 'batch', 'micro', 'chunks', 'DDP', 'TFLOP/s published', 'predicted', 'error'], rows);
}
