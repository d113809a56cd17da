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
//
// Per tensor-parallel rank (Korthikanti Table 2), t = 2 and 4, from the tensor-parallel block
// programs (the shard GPT.tensorParallelShard builds, cut by ir/remat.ts): with tp alone the
// attention and MLP interiors split, the LayerNorm inputs/outputs, residual and its two dropout
// masks stay whole: sbh(10 + 24/t + 5as/(ht)) in 16 bits, here sbh(18 + 48/t) + 9as^2b/t
// (the 10 is 8 bytes of 16-bit tensors and 2 of masks). With sequence parallelism everything is
// split: sbh(34/t + 5as/(ht)), here 66sbh/t + 9as^2b/t; selective drops the as^2b term; full
// keeps the block input, whole with tp alone and a shard with sequence parallelism (4sbh/t;
// Table 2 writes 2sbh for full recomputation without dividing).
//
// Per rank: the peak bytes stage 0 of a 2-stage 1F1B pipeline held while running its schedule's
// warm-up (p = 2 micro-batches in flight, half the layers), measured on the real StageRunner;
// the formula is 2 x (L/2) x per-layer, plus the stage's output and token ids per micro-batch.
import { parseArgs } from '../src/cli/args.js';
import { GPT } from '../src/models/gpt.js';
import { FlatLayout } from '../src/nn/flat.js';
import { activationShape, modelSegments } from '../src/engine/segments.js';
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

/** Bytes block 0 keeps for its backward (on one tensor-parallel rank when the model is a
 * shard): saved outputs, and x when the backward reads it. */
function layerBytes(model: GPT, c: Cfg, g: Granularity): { bytes: number; terms: string } {
  const shape = { batch: c.b, seq: c.s };
  const seg = modelSegments(model, new FlatLayout(model), shape, g).segments.find((x) => x.name === 'block 0')!;
  const readsX = seg.backward.inputs.some((id) => seg.backward.graph.node(id).attrs.name === 'x');
  const sbh = c.s * c.b * c.h;
  const square = (shape: readonly number[]) => shape.at(-1) === c.s && shape.at(-2) === c.s;
  const parts = [
    ...(readsX ? [{ what: 'x', bytes: bytesOf({ shape: activationShape(model, shape), dtype: 'float32' }), square: false }] : []),
    ...seg.saved!.map((t) => ({ what: `${t.scope.split('.').slice(3).join('.') || 'block'}:${t.op}${t.dtype === 'bool' ? '(bool)' : ''}`, bytes: bytesOf(t), square: square(t.shape) })),
  ];
  const bytes = parts.reduce((a, p) => a + p.bytes, 0);
  return { bytes, terms: parts.map((p) => `${p.what} ${p.square ? `${p.bytes / (c.a * c.s * c.s * c.b)}as2b` : `${p.bytes / sbh}sbh`}`).join(', ') };
}

/** Korthikanti et al.'s per-layer bytes on one of t tensor-parallel ranks, in 16 bits as
 * published and in this engine's fp32 activations with bool masks (t = 1: one process). */
function korthikanti(c: Cfg, t: number, sp: boolean): { paper16: Record<Granularity, number>; fp32: Record<Granularity, number> } {
  const sbh = c.s * c.b * c.h;
  const as2b = c.a * c.s * c.s * c.b;
  // The whole (replicated) part: 10sbh in 16 bits = 8 of tensors + 2 of masks; none with sp.
  const whole16 = sp ? 0 : 10;
  const whole32 = sp ? 0 : 18;
  const split16 = sp ? 34 : 24;
  const split32 = sp ? 66 : 48;
  const input = sp ? 1 / t : 1;
  return {
    paper16: { none: sbh * (whole16 + split16 / t) + (5 * as2b) / t, selective: sbh * (whole16 + split16 / t), full: 2 * sbh * input },
    fp32: { none: sbh * (whole32 + split32 / t) + (9 * as2b) / t, selective: sbh * (whole32 + split32 / t), full: 4 * sbh * input },
  };
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

const CONFIGS: Cfg[] = [{ h: 64, a: 4, s: 32, b: 4, L: 4 }, { h: 128, a: 4, s: 64, b: 4, L: 4 }, { h: 128, a: 8, s: 128, b: 2, L: 4 }, { h: 256, a: 8, s: 64, b: 2, L: 4 }];
const shapeName = (c: Cfg) => `h ${c.h} a ${c.a} s ${c.s} b ${c.b}`;
const gptOf = (c: Cfg) => new GPT({ nLayer: c.L, nHead: c.a, nEmbd: c.h, blockSize: c.s, vocabSize: 65, dropout: 0.1, bias: true });
const round4 = (x: number) => Math.round(x * 1e4) / 1e4;

function printTable(head: string[], rows: string[][]): void {
  const w = head.map((x, i) => Math.max(x.length, ...rows.map((r) => r[i]!.length)));
  for (const r of [head, ...rows]) console.log(r.map((c, i) => c.padEnd(w[i]!)).join('  '));
}

export async function run(argv: string[]): Promise<number> {
  const { flags } = parseArgs(argv, { json: { type: 'boolean', help: 'JSON lines' } }, 'bench activations');
  const json = flags.json === true;
  const rows: string[][] = [];
  const breakdown: string[] = [];
  for (const c of CONFIGS) {
    const model = gptOf(c);
    const sbh = c.s * c.b * c.h;
    const { paper16, fp32 } = korthikanti(c, 1, false);
    for (const g of GRANULARITIES) {
      const { bytes, terms } = layerBytes(model, c, g);
      const peak = await rankPeak(model, c, g);
      // Two micro-batches x L/2 layers, plus each micro-batch's stage output (fp32) and token ids (int32).
      const rankFormula = 2 * ((c.L / 2) * fp32[g] + 4 * sbh + 4 * c.s * c.b);
      const ratio = bytes / fp32[g];
      const rec = { bench: 'activations', granularity: g, tp: 1, sequence_parallel: false, hidden: c.h, heads: c.a, seq: c.s, micro_batch: c.b, layers: c.L, layer_bytes: bytes, korthikanti_16bit: paper16[g], korthikanti_fp32: fp32[g], ratio: round4(ratio), rank_peak_bytes: peak, rank_formula_bytes: rankFormula, rank_ratio: round4(peak / rankFormula) };
      if (json) console.log(JSON.stringify(rec));
      rows.push([shapeName(c), g, String(bytes), String(paper16[g]), String(fp32[g]), ratio.toFixed(3), String(peak), String(rankFormula), rec.rank_ratio.toFixed(3)]);
      if (rows.length <= GRANULARITIES.length) breakdown.push(`${g}: ${terms}`);
    }
  }
  // Tensor-parallel rows: rank 0's shard (every rank's programs have the same shapes).
  const tpRows: string[][] = [];
  const tpBreakdown: string[] = [];
  for (const c of CONFIGS) {
    for (const t of [2, 4]) {
      for (const sp of [false, true]) {
        const shard = gptOf(c).tensorParallelShard({ axis: { name: 'tp', size: t, rank: 0 }, sequence: sp });
        const { paper16, fp32 } = korthikanti(c, t, sp);
        for (const g of GRANULARITIES) {
          const { bytes, terms } = layerBytes(shard, c, g);
          const ratio = bytes / fp32[g];
          const rec = { bench: 'activations', granularity: g, tp: t, sequence_parallel: sp, hidden: c.h, heads: c.a, seq: c.s, micro_batch: c.b, layers: c.L, layer_bytes: bytes, korthikanti_16bit: paper16[g], korthikanti_fp32: fp32[g], ratio: round4(ratio) };
          if (json) console.log(JSON.stringify(rec));
          tpRows.push([shapeName(c), String(t), sp ? 'on' : 'off', g, String(bytes), String(Math.round(paper16[g])), String(Math.round(fp32[g])), ratio.toFixed(3)]);
          if (c === CONFIGS[0] && t === 2) tpBreakdown.push(`tp2, sequence parallel ${sp ? 'on' : 'off'}, ${g}: ${terms}`);
        }
      }
    }
  }
  if (!json) {
    printTable(['layer', 'recompute', 'measured B/layer', 'paper (16-bit)', 'paper in fp32+bool', 'ratio', 'pp2 stage-0 peak B', 'formula B', 'ratio'], rows);
    console.log('\nwhat one layer keeps (first configuration):');
    for (const l of breakdown) console.log(`  ${l}`);
    console.log('\nper tensor-parallel rank (Korthikanti Table 2):');
    printTable(['layer', 'tp', 'seq par', 'recompute', 'measured B/layer/rank', 'paper (16-bit)', 'paper in fp32+bool', 'ratio'], tpRows);
    console.log('\nwhat one layer keeps on one rank (first configuration, tp2; sbh and as2b of the whole layer):');
    for (const l of tpBreakdown) console.log(`  ${l}`);
  }
  return 0;
}
