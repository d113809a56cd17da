// The model interface's decode: chunks of new tokens at per-sequence start positions, written
// into fixed-size KV caches, give the same logits as the full forward over the whole prefix.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { GPT } from '../../src/models/gpt.js';
import { Llama } from '../../src/models/llama.js';
import { cacheShape, type LanguageModel } from '../../src/models/model.js';
import { FlatLayout, flatView, withParams } from '../../src/nn/flat.js';
import { buildProgram } from '../../src/tensor/program.js';
import { compile } from '../../src/runtime/execute.js';
import { hostValue, type HostValue } from '../../src/ir/value.js';
import { relError } from '../core/check.js';

const seqs = [[3, 1, 4, 1, 5, 9], [2, 7, 1, 8, 2, 8]];

const MODELS: [string, LanguageModel][] = [
  ['GPT', new GPT({ nLayer: 2, nHead: 2, nEmbd: 16, blockSize: 8, vocabSize: 13, bias: true })],
  // Grouped-query attention (4 query heads on 2 kv heads: the cache holds 2), Llama-3 rope
  // scaling, Qwen2's q/k/v biases and a tied head.
  ['Llama (GQA 2, rope scaling, qkv bias, tied)', new Llama({ nLayer: 2, nHead: 4, nKvHead: 2, nEmbd: 32, intermediateSize: 40, blockSize: 8, vocabSize: 13, qkvBias: true, tieWordEmbeddings: true, ropeScaling: { factor: 8, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositionEmbeddings: 4 } })],
];

for (const [name, model] of MODELS) {
  const layout = new FlatLayout(model);
  // Biases and norm weights start at constants; random values make every parameter matter.
  const params = hostValue('float32', [layout.size], layout.initialise(5).map((x, i) => x + 0.01 * Math.sin(i)));

  async function forwardLogits(tokens: number[]): Promise<Float32Array> {
    const program = buildProgram((t) => {
      const p = t.input('params', [layout.size]);
      const idx = t.input('idx', [1, tokens.length], 'int32');
      return withParams(layout.slots, (s) => flatView(p, s), () => ({ inputs: [p, idx], outputs: [model.forward(idx)] }));
    });
    const [out] = await (await compile(program)).run([params, hostValue('int32', [1, tokens.length], tokens)]);
    return out!.data as Float32Array;
  }

  /** Per row of the batch: tokens at a start position, and whether its logits are kept (false: padding). */
  type Row = { tokens: number[]; start: number; keep: boolean };

  /** Runs decode calls of equal chunk length on a batch of two sequences; returns each row's kept logits. */
  async function decodeCalls(calls: Row[][]): Promise<Float32Array[]> {
    const B = calls[0]!.length;
    const n = calls[0]![0]!.tokens.length;
    const shape = cacheShape(model.dims, B);
    const L = model.dims.nLayer;
    const program = buildProgram((t) => {
      const p = t.input('params', [layout.size]);
      const tokens = t.input('tokens', [B, n], 'int32');
      const start = t.input('start', [B], 'int64');
      const caches = Array.from({ length: L }, (_, i) => ({ k: t.input(`k${i}`, shape), v: t.input(`v${i}`, shape) }));
      return withParams(layout.slots, (s) => flatView(p, s), () => {
        const r = model.decode(tokens, start, caches);
        return { inputs: [p, tokens, start, ...caches.flatMap((c) => [c.k, c.v])], outputs: [r.logits, ...r.caches.flatMap((c) => [c.k, c.v])] };
      });
    });
    const exe = await compile(program);
    let caches: HostValue[] = Array.from({ length: 2 * L }, () => hostValue('float32', shape));
    const V = model.dims.vocabSize;
    const kept: number[][] = Array.from({ length: B }, () => []);
    for (const rows of calls) {
      const inputs = [params, hostValue('int32', [B, n], rows.flatMap((r) => r.tokens)), hostValue('int64', [B], rows.map((r) => r.start)), ...caches];
      const [out, ...next] = await exe.run(inputs);
      caches = next;
      rows.forEach((r, b) => r.keep && kept[b]!.push(...(out!.data as Float32Array).slice(b * n * V, (b + 1) * n * V)));
    }
    return kept.map((k) => Float32Array.from(k));
  }

  test(`${name}: decode in chunks of 1, 2 and 3 tokens equals the full forward, per sequence of a batch`, async () => {
    const full = await Promise.all(seqs.map(forwardLogits));
    for (const size of [1, 2, 3]) {
      const calls: Row[][] = [];
      for (let s = 0; s < 6; s += size) calls.push(seqs.map((q) => ({ tokens: q.slice(s, s + size), start: s, keep: true })));
      const got = await decodeCalls(calls);
      for (let b = 0; b < seqs.length; b++) assert.ok(relError(got[b]!, full[b]!) < 1e-5, `chunk ${size}, sequence ${b}: ${relError(got[b]!, full[b]!)}`);
    }
  });

  test(`${name}: rows of one batch at different positions (continuous batching) each match their own forward`, async () => {
    const full = await Promise.all(seqs.map(forwardLogits));
    const pad = (start: number): Row => ({ tokens: [0, 0], start, keep: false }); // beyond every query's position: never visible
    const [a, b] = seqs as [number[], number[]];
    const calls: Row[][] = [
      [pad(6), { tokens: b.slice(0, 2), start: 0, keep: true }],
      [{ tokens: a.slice(0, 2), start: 0, keep: true }, { tokens: b.slice(2, 4), start: 2, keep: true }],
      [{ tokens: a.slice(2, 4), start: 2, keep: true }, { tokens: b.slice(4, 6), start: 4, keep: true }],
      [{ tokens: a.slice(4, 6), start: 4, keep: true }, pad(6)],
    ];
    const got = await decodeCalls(calls);
    for (let i = 0; i < 2; i++) assert.ok(relError(got[i]!, full[i]!) < 1e-5, `sequence ${i}: ${relError(got[i]!, full[i]!)}`);
  });
}
