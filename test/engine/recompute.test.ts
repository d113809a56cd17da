// Activation checkpointing per block (ir/remat.ts through engine/segments.ts): for a GPT block
// with dropout and a Llama block with grouped-query attention, the forward program with
// granularity none or selective returns the tensors its backward reads, and that backward
// gives the input and parameter gradients of the full-recompute backward. What each keeps is
// Korthikanti et al. 2022's count in this engine's element sizes: fp32 activations, bool masks.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { hostValue, type HostValue } from '../../src/ir/value.js';
import { GRANULARITIES, type Granularity } from '../../src/ir/remat.js';
import { FlatLayout } from '../../src/nn/flat.js';
import { GPT } from '../../src/models/gpt.js';
import { Llama } from '../../src/models/llama.js';
import type { LanguageModel } from '../../src/models/model.js';
import { modelSegments } from '../../src/engine/segments.js';
import { NamedExecutable, type Named } from '../../src/engine/named-program.js';
import { Rng } from '../../src/tensor/rng.js';

const B = 2;
const T = 8;

/** dx and the block's flat gradient, by forward then backward of block 0 at `g`. */
async function blockGrads(model: LanguageModel, g: Granularity): Promise<{ out: Float32Array[]; keptBytes: number }> {
  const layout = new FlatLayout(model);
  const params = layout.initialise(3);
  const seg = modelSegments(model, layout, { batch: B, seq: T }, g).segments.find((s) => s.name === 'block 0')!;
  const u = seg.units[0]!;
  const rng = new Rng(5);
  const act = (): HostValue => hostValue('float32', [B, T, model.dims.nEmbd], Float32Array.from({ length: B * T * model.dims.nEmbd }, () => rng.normal()));
  const feeds: Named = { [u.name]: hostValue('float32', [u.size], params.subarray(u.offset, u.offset + u.size)), x: act(), dy: act() };
  if (model.dims.dropout > 0) feeds.key = hostValue('int64', [], [12345]);
  const fwd = await NamedExecutable.compile(seg.forward!, ['y', ...seg.saved!.map((s) => s.name)], { threads: 1 });
  const bwd = await NamedExecutable.compile(seg.backward, ['dx', u.name], { threads: 1 });
  const pick = (exe: NamedExecutable, all: Named) => Object.fromEntries(exe.inputNames.map((n) => [n, all[n]!]));
  const { y: _y, ...saved } = await fwd.run(pick(fwd, feeds));
  const out = await bwd.run(pick(bwd, { ...feeds, ...saved }));
  // Kept between forward and backward: the saved tensors, and x when the backward reads it.
  const keptBytes = Object.values(saved).reduce((a, v) => a + v.data.byteLength, 0) + (bwd.inputNames.includes('x') ? feeds.x!.data.byteLength : 0);
  return { out: [out.dx!.data as Float32Array, out[u.name]!.data as Float32Array], keptBytes };
}

function assertClose(a: Float32Array, b: Float32Array, what: string): void {
  let worst = 0;
  let scale = 0;
  for (let i = 0; i < a.length; i++) {
    worst = Math.max(worst, Math.abs(a[i]! - b[i]!));
    scale = Math.max(scale, Math.abs(b[i]!));
  }
  assert.ok(scale > 0 && worst <= 1e-5 * scale, `${what}: max difference ${worst} against max |value| ${scale}`);
}

const gpt = new GPT({ nLayer: 2, nHead: 2, nEmbd: 16, blockSize: T, vocabSize: 11, dropout: 0.1, bias: true });
const llama = new Llama({ nLayer: 2, nHead: 4, nKvHead: 2, nEmbd: 16, intermediateSize: 24, vocabSize: 11, blockSize: T });

for (const [name, model] of [['GPT (dropout 0.1)', gpt], ['Llama (GQA 4:2)', llama]] as const) {
  test(`${name}: recompute none and selective give the gradients of full recompute`, async () => {
    const full = await blockGrads(model, 'full');
    for (const g of GRANULARITIES.filter((x) => x !== 'full')) {
      const r = await blockGrads(model, g);
      assertClose(r.out[0]!, full.out[0]!, `${name} ${g}: dx`);
      assertClose(r.out[1]!, full.out[1]!, `${name} ${g}: parameter gradient`);
      assert.ok(r.keptBytes > full.keptBytes, `${name} ${g} keeps more than the block input`);
    }
  });
}

test('GPT block: kept bytes are Korthikanti et al. in fp32 with bool masks (66sbh + 9as^2b, 66sbh, 4sbh)', async () => {
  const s = T;
  const b = B;
  const h = 16;
  const a = 2;
  const kept = Object.fromEntries(await Promise.all(GRANULARITIES.map(async (g) => [g, (await blockGrads(gpt, g)).keptBytes] as const)));
  assert.equal(kept.none, 66 * s * b * h + 9 * a * s * s * b);
  assert.equal(kept.selective, 66 * s * b * h);
  assert.equal(kept.full, 4 * s * b * h);
});

test('tensor-parallel GPT block, per rank: Korthikanti Table 2 in fp32 with bool masks, tp alone and with sequence parallelism', () => {
  // The bytes one rank's block 0 keeps: its saved tensors, and its input x (a shard of the
  // sequence with sequence parallelism) when the backward reads it. Graph level: no ONNX needed.
  const c = { nLayer: 2, nHead: 4, nEmbd: 16, blockSize: T, vocabSize: 11, dropout: 0.1, bias: true };
  const size = (s: { shape: readonly number[]; dtype: string }) => s.shape.reduce((a, b) => a * b, 1) * (s.dtype === 'bool' ? 1 : 4);
  const s = T;
  const b = B;
  const h = 16;
  const a = 4;
  const sbh = s * b * h;
  const as2b = a * s * s * b;
  for (const t of [2, 4]) {
    for (const sequence of [false, true]) {
      const shard = new GPT(c).tensorParallelShard({ axis: { name: 'tp', size: t, rank: 1 }, sequence });
      const kept = (g: Granularity) => {
        const seg = modelSegments(shard, new FlatLayout(shard), { batch: B, seq: T }, g).segments.find((x) => x.name === 'block 0')!;
        const readsX = seg.backward.inputs.some((id) => seg.backward.graph.node(id).attrs.name === 'x');
        return seg.saved!.reduce((acc, x) => acc + size(x), 0) + (readsX ? (4 * sbh) / (sequence ? t : 1) : 0);
      };
      // tp alone: sbh(10 + 24/t) + 5as^2b/t in 16 bits; with sequence parallelism sbh 34/t + 5as^2b/t.
      const sbhTerm = sequence ? (66 * sbh) / t : 18 * sbh + (48 * sbh) / t;
      const what = `tp${t}, sequence parallel ${sequence}`;
      assert.equal(kept('none'), sbhTerm + (9 * as2b) / t, `${what}, none`);
      assert.equal(kept('selective'), sbhTerm, `${what}, selective`);
      assert.equal(kept('full'), (4 * sbh) / (sequence ? t : 1), `${what}, full`);
    }
  }
});
