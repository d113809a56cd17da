// `npm run bench -- activations [--json]`: activation bytes one transformer layer keeps for its
// backward, computed from the traced training graph (the microstep program atscale compiles:
// every data-dependent forward tensor that a backward node reads), next to Korthikanti et al.
// 2022's sbh(34 + 5as/h) (16-bit activations, 1-byte dropout masks) and the same count for
// atscale's fp32 activations and 4-byte float masks, 72sbh + 12as^2b. Per layer = graph of
// L + 1 layers minus graph of L layers, so embedding and head drop out. No recomputation
// (the fused one-process path); pipeline stages recompute every block and keep 4sbh.
import { parseArgs } from '../src/cli/args.js';
import { GPT } from '../src/models/gpt.js';
import { FlatLayout } from '../src/nn/flat.js';
import { microstepProgram } from '../src/engine/step-graphs.js';
import type { Program } from '../src/ir/graph.js';

const BYTES: Record<string, number> = { float32: 4, bfloat16: 2, float16: 2, int32: 4, int64: 8, bool: 1 };

/** Bytes of forward tensors that depend on the tokens and are read by a backward node. */
export function savedActivationBytes(p: Program, loss: number): number {
  const nodes = p.graph.nodes;
  const forward = new Set<number>();
  const stack = [loss];
  while (stack.length) {
    const id = stack.pop()!;
    if (forward.has(id)) continue;
    forward.add(id);
    stack.push(...nodes[id]!.inputs);
  }
  const idx = nodes.find((n) => n.op === 'input' && n.attrs.name === 'idx')!.id;
  const dataDependent = new Set<number>([idx]);
  for (const n of nodes) if (n.inputs.some((i) => dataDependent.has(i))) dataDependent.add(n.id);
  const saved = new Set<number>();
  for (const n of nodes) {
    if (forward.has(n.id)) continue;
    for (const i of n.inputs) if (forward.has(i) && dataDependent.has(i) && i !== idx) saved.add(i);
  }
  let bytes = 0;
  for (const id of saved) {
    const n = nodes[id]!;
    // A reshape of a saved tensor is a view of the same memory.
    if (n.op === 'reshape' && saved.has(n.inputs[0]!)) continue;
    bytes += n.shape.reduce((a, b) => a * b, 1) * (BYTES[n.dtype] ?? 4);
  }
  return bytes;
}

function layerBytes(cfg: { nEmbd: number; nHead: number; blockSize: number }, batch: number): number {
  const at = (nLayer: number) => {
    const model = new GPT({ ...cfg, nLayer, vocabSize: 65, dropout: 0.1, bias: true });
    const { program } = microstepProgram(model, new FlatLayout(model), { batch, seq: cfg.blockSize });
    return savedActivationBytes(program, program.outputs[1]!);
  };
  return at(2) - at(1);
}

export async function run(argv: string[]): Promise<number> {
  const { flags } = parseArgs(argv, { json: { type: 'boolean', help: 'JSON lines' } }, 'bench activations');
  const rows: string[][] = [];
  for (const [h, a, s, b] of [[64, 4, 32, 4], [128, 4, 64, 4], [128, 8, 128, 2], [256, 8, 64, 2]] as const) {
    const measured = layerBytes({ nEmbd: h, nHead: a, blockSize: s }, b);
    const korthikanti = s * b * h * (34 + (5 * a * s) / h);
    const fp32 = 72 * s * b * h + 12 * a * s * s * b;
    const rec = { bench: 'activations', hidden: h, heads: a, seq: s, micro_batch: b, measured_bytes: measured, korthikanti_16bit: korthikanti, korthikanti_fp32: fp32, ratio_fp32: Math.round((measured / fp32) * 1e4) / 1e4 };
    if (flags.json === true) console.log(JSON.stringify(rec));
    rows.push([`h ${h} a ${a} s ${s} b ${b}`, String(measured), String(korthikanti), String(fp32), rec.ratio_fp32.toFixed(3)]);
  }
  if (flags.json !== true) {
    const head = ['layer', 'measured bytes', 'sbh(34+5as/h)', '72sbh+12as^2b (fp32)', 'measured / fp32'];
    const w = head.map((x, i) => Math.max(x.length, ...rows.map((r) => r[i]!.length)));
    for (const r of [head, ...rows]) console.log(r.map((c, i) => c.padEnd(w[i]!)).join('  '));
  }
  return 0;
}
