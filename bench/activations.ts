// `npm run bench -- activations [--json]`: activation bytes a micro-batch keeps alive between
// its forward and its backward, per transformer layer and per pipeline rank, for recompute
// granularity none, selective and full, next to Korthikanti et al. 2022.
//
// Per layer: the tensors the compiled block programs pass from forward to backward (the
// forward's saved outputs, and the block input when the backward reads it), from
// engine/segments.ts. The paper counts 16-bit activations and 1-byte dropout masks:
// sbh(34 + 5as/h) with no recomputation, 34sbh with selective and 2sbh with full recomputation
// (the block input). atscale's activations are fp32 and its masks bool, so every 16-bit term
// doubles and the three masks (sbh, sbh, as^2b) stay 1 byte: 66sbh + 9as^2b, 66sbh and 4sbh.
// Tensor parallelism would divide the sbh terms by t with sequence parallelism; this bench runs t = 1.
//
// Per rank: the peak bytes stage 0 of a 2-stage 1F1B pipeline held while running its schedule's
// warm-up (p = 2 micro-batches in flight, half the layers), measured on the real StageRunner;
// the formula is 2 x (L/2) x per-layer, plus the stage's output and token ids per micro-batch.
import { parseArgs } from '../src/cli/args.js';
import { GPT } from '../src/models/gpt.js';
import { FlatLayout } from '../src/nn/flat.js';
import { modelSegments } from '../src/engine/segments.js';
import { StageRunner } from '../src/engine/pipeline/stage.js';
import { GRANULARITIES, type Granularity } from '../src/ir/remat.js';
import { hostValue } from '../src/ir/value.js';

const BYTES: Record<string, number> = { float32: 4, bool: 1, int32: 4, int64: 8 };
const bytesOf = (t: { shape: readonly number[]; dtype: string }) => t.shape.reduce((a, b) => a * b, 1) * BYTES[t.dtype]!;

interface Cfg {
  h: number;
  a: number;
  s: number;
  b: number;
  L: number;
}

/** Bytes block 0 keeps for its backward: saved outputs, and x when the backward reads it. */
function layerBytes(model: GPT, c: Cfg, g: Granularity): { bytes: number; terms: string } {
  const seg = modelSegments(model, new FlatLayout(model), { batch: c.b, seq: c.s }, g).segments.find((x) => x.name === 'block 0')!;
  const readsX = seg.backward.inputs.some((id) => seg.backward.graph.node(id).attrs.name === 'x');
  const sbh = c.s * c.b * c.h;
  const square = (shape: readonly number[]) => shape.at(-1) === c.s && shape.at(-2) === c.s;
  const parts = [
    ...(readsX ? [{ what: 'x', bytes: 4 * sbh, square: false }] : []),
    ...seg.saved!.map((t) => ({ what: `${t.scope.split('.').slice(3).join('.') || 'block'}:${t.op}${t.dtype === 'bool' ? '(bool)' : ''}`, bytes: bytesOf(t), square: square(t.shape) })),
  ];
  const bytes = parts.reduce((a, p) => a + p.bytes, 0);
  return { bytes, terms: parts.map((p) => `${p.what} ${p.square ? `${p.bytes / (c.a * c.s * c.s * c.b)}as2b` : `${p.bytes / sbh}sbh`}`).join(', ') };
}

/** Peak stash bytes on stage 0 of pp2 with two micro-batches in flight (1F1B warm-up). */
async function rankPeak(model: GPT, c: Cfg, g: Granularity): Promise<number> {
  const layout = new FlatLayout(model);
  const r = new StageRunner(model, layout, { batch: c.b, seq: c.s }, [{ stage: 0, blocks: [0, c.L / 2] }], 1, layout.initialise(1), g);
  await r.compile({ threads: 2 });
  const idx = Int32Array.from({ length: c.b * c.s }, (_, i) => i % 65);
  const key = (mb: number) => hostValue('int64', [], [1000 + mb]);
  for (let mb = 0; mb < 2; mb++) await r.forward(mb, 0, { idx }, key(mb));
  const dy = new Float32Array(c.b * c.s * c.h).fill(1e-3);
  for (let mb = 0; mb < 2; mb++) await r.backward(mb, 0, { dy, seed: 1 }, key(mb));
  return r.peakStashBytes;
}

export async function run(argv: string[]): Promise<number> {
  const { flags } = parseArgs(argv, { json: { type: 'boolean', help: 'JSON lines' } }, 'bench activations');
  const rows: string[][] = [];
  const breakdown: string[] = [];
  for (const c of [{ h: 64, a: 4, s: 32, b: 4, L: 4 }, { h: 128, a: 4, s: 64, b: 4, L: 4 }, { h: 128, a: 8, s: 128, b: 2, L: 4 }, { h: 256, a: 8, s: 64, b: 2, L: 4 }] as Cfg[]) {
    const model = new GPT({ nLayer: c.L, nHead: c.a, nEmbd: c.h, blockSize: c.s, vocabSize: 65, dropout: 0.1, bias: true });
    const sbh = c.s * c.b * c.h;
    const as2b = c.a * c.s * c.s * c.b;
    const paper16: Record<Granularity, number> = { none: sbh * (34 + (5 * c.a * c.s) / c.h), selective: 34 * sbh, full: 2 * sbh };
    const fp32: Record<Granularity, number> = { none: 66 * sbh + 9 * as2b, selective: 66 * sbh, full: 4 * sbh };
    for (const g of GRANULARITIES) {
      const { bytes, terms } = layerBytes(model, c, g);
      const peak = await rankPeak(model, c, g);
      // Two micro-batches x L/2 layers, plus each micro-batch's stage output (fp32) and token ids (int32).
      const rankFormula = 2 * ((c.L / 2) * fp32[g] + 4 * sbh + 4 * c.s * c.b);
      const ratio = bytes / fp32[g];
      const rec = { bench: 'activations', granularity: g, hidden: c.h, heads: c.a, seq: c.s, micro_batch: c.b, layers: c.L, layer_bytes: bytes, korthikanti_16bit: paper16[g], korthikanti_fp32: fp32[g], ratio: Math.round(ratio * 1e4) / 1e4, rank_peak_bytes: peak, rank_formula_bytes: rankFormula, rank_ratio: Math.round((peak / rankFormula) * 1e4) / 1e4 };
      if (flags.json === true) console.log(JSON.stringify(rec));
      rows.push([`h ${c.h} a ${c.a} s ${c.s} b ${c.b}`, g, String(bytes), String(paper16[g]), String(fp32[g]), ratio.toFixed(3), String(peak), String(rankFormula), rec.rank_ratio.toFixed(3)]);
      if (rows.length <= GRANULARITIES.length) breakdown.push(`${g}: ${terms}`);
    }
  }
  if (flags.json !== true) {
    const head = ['layer', 'recompute', 'measured B/layer', 'paper (16-bit)', 'paper in fp32+bool', 'ratio', 'pp2 stage-0 peak B', 'formula B', 'ratio'];
    const w = head.map((x, i) => Math.max(x.length, ...rows.map((r) => r[i]!.length)));
    for (const r of [head, ...rows]) console.log(r.map((c, i) => c.padEnd(w[i]!)).join('  '));
    console.log('\nwhat one layer keeps (first configuration):');
    for (const l of breakdown) console.log(`  ${l}`);
  }
  return 0;
}
