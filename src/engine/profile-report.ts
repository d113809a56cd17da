// `atscale train --profile`: the per-module table (in the manner of DeepSpeed's flops profiler)
// and the top operators, from ONNX Runtime's trace of one training step. Each module's row
// includes its children; time is ONNX Runtime's kernel time, FLOPs are our graph's GEMM FLOPs.
import type { Module } from '../nn/module.js';
import type { StepProfile } from '../runtime/profile.js';

interface Row {
  path: string;
  label: string;
  depth: number;
  params: number;
}

const TOP_LEVEL = '(top level: parameter views, embeddings sum, LM head, loss)';

/** Module tree rows in registration order; blocks after the first show only their own row. */
function moduleRows(root: Module): Row[] {
  const rows: Row[] = [];
  const params = new Map<string, number>();
  for (const [name, p] of root.namedParameters()) {
    const parts = name.split('.');
    for (let i = 0; i < parts.length; i++) {
      const path = parts.slice(0, i).join('.');
      params.set(path, (params.get(path) ?? 0) + p.size);
    }
  }
  const walk = (m: Module, path: string, depth: number, expand: boolean) => {
    rows.push({ path, label: `${'  '.repeat(depth)}${path ? path.split('.').pop() : 'model'}`, depth, params: params.get(path) ?? 0 });
    if (!expand) return;
    m.namedChildren().forEach(([name, c], i) => {
      const sibling = /^\d+$/.test(name) && i > 0; // a repeated block: its children read like block 0's
      walk(c, path ? `${path}.${name}` : name, depth + 1, !sibling);
    });
  };
  walk(root, '', 0, true);
  return rows;
}

const inside = (scope: string, path: string) => path === '' || scope === path || scope.startsWith(`${path}.`);

export function formatProfile(p: StepProfile, model: Module): string {
  const stepMs = p.stepUs / 1000;
  const sum = (match: (module: string) => boolean) => {
    let fwd = 0, bwd = 0, flops = 0;
    for (const k of p.kernels) if (match(k.module)) k.backward ? (bwd += k.us) : (fwd += k.us);
    for (const [m, f] of p.flops) if (match(m)) flops += f.fwd + f.bwd;
    return { fwdMs: fwd / 1000, bwdMs: bwd / 1000, flops };
  };
  const head = ['module', 'params', 'GFLOPs', 'fwd ms', 'bwd ms', 'total ms', 'GFLOP/s', 'share'];
  const lines: string[][] = [];
  const line = (label: string, params: number | undefined, s: ReturnType<typeof sum>) => {
    const total = s.fwdMs + s.bwdMs;
    lines.push([
      label,
      params === undefined ? '' : params.toLocaleString('en-US'),
      (s.flops / 1e9).toFixed(2),
      s.fwdMs.toFixed(1),
      s.bwdMs.toFixed(1),
      total.toFixed(1),
      total > 0 && s.flops > 0 ? (s.flops / 1e9 / (total / 1000)).toFixed(1) : '',
      `${((100 * total) / stepMs).toFixed(1)}%`,
    ]);
  };
  const known = new Set<string>();
  for (const r of moduleRows(model)) {
    known.add(r.path);
    // The model row is everything the model recorded (optimizer excluded).
    line(r.label, r.params, sum((m) => m !== 'optimizer' && inside(m, r.path)));
  }
  line(TOP_LEVEL, undefined, sum((m) => m === ''));
  line('optimizer (grad norm, clipping, AdamW)', undefined, sum((m) => m === 'optimizer'));
  const widths = head.map((h, i) => Math.max(h.length, ...lines.map((l) => l[i]!.length)));
  const fmt = (cells: string[]) => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  const kernelMs = p.kernels.reduce((a, k) => a + k.us, 0) / 1000;
  const out = [
    `profile of one training step (the last of ${p.runs} profiled runs): ${stepMs.toFixed(1)} ms wall, ${kernelMs.toFixed(1)} ms in kernels`,
    '',
    fmt(head),
    ...lines.map(fmt),
    '',
    'top operators by time:',
  ];
  const byOp = new Map<string, { us: number; count: number }>();
  for (const k of p.kernels) {
    const o = byOp.get(k.op) ?? { us: 0, count: 0 };
    o.us += k.us;
    o.count++;
    byOp.set(k.op, o);
  }
  for (const [op, o] of [...byOp].sort((a, b) => b[1].us - a[1].us).slice(0, 12)) {
    out.push(`  ${op.padEnd(24)} ${String(o.count).padStart(5)} nodes  ${(o.us / 1000).toFixed(1).padStart(9)} ms  ${((100 * o.us) / p.stepUs).toFixed(1).padStart(5)}%`);
  }
  out.push('', 'slowest nodes:');
  for (const k of [...p.kernels].sort((a, b) => b.us - a.us).slice(0, 12)) {
    out.push(`  ${(k.us / 1000).toFixed(1).padStart(9)} ms  ${k.op.padEnd(18)} ${k.node}`);
  }
  return out.join('\n');
}
