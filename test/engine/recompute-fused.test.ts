// Selective recomputation inside the fused one-graph step (ir/remat-in-graph.ts): with it, no
// backward node reads a T x T tensor of the forward (each layer's scores, softmax, dropout mask
// and dropped probabilities are recomputed from q and k in the backward), nor a LayerNorm or
// GELU output (redone from their inputs), and training gives the parameters of the step
// without it: the same masks, the same gradients.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { GPT } from '../../src/models/gpt.js';
import { FlatLayout } from '../../src/nn/flat.js';
import { fusedStepProgram, type InGraphRecompute } from '../../src/engine/step-graphs.js';
import { optimize } from '../../src/ir/passes.js';
import { ancestors } from '../../src/ir/remat.js';
import type { Program } from '../../src/ir/graph.js';
import { recomputeAttentionInGraph } from '../../src/ir/remat-in-graph.js';
import { createTrainer } from '../../src/engine/mesh-trainer.js';
import { Mesh } from '../../src/engine/mesh/mesh.js';
import { Rng } from '../../src/tensor/rng.js';

// Head size 4, not T: q, k and v are then not square and only the attention core is.
const T = 8;
const B = 2;
const config = { nLayer: 2, nHead: 4, nEmbd: 16, blockSize: T, vocabSize: 11, dropout: 0.1, bias: true };
const optimizer = { lr: 1e-2, beta1: 0.9, beta2: 0.99, eps: 1e-8, weightDecay: 0.1 };

/** Forward T x T tensors (ancestors of the loss) that some backward node reads. */
function squareTensorsKept(program: Program, lossOutput: number): number {
  return readByBackward(program, lossOutput, (_op, s) => s.length >= 2 && s.at(-1) === T && s.at(-2) === T);
}

/** Forward nodes (ancestors of the loss) matching `which` that some backward node reads. */
function readByBackward(program: Program, lossOutput: number, which: (op: string, shape: readonly number[]) => boolean): number {
  const p = optimize(program);
  const nodes = p.graph.nodes;
  const fwd = ancestors(nodes, [p.outputs[lossOutput]!]);
  const kept = new Set<number>();
  for (const n of nodes) {
    if (fwd[n.id]) continue;
    for (const i of n.inputs) {
      if (fwd[i] && nodes[i]!.op !== 'const' && which(nodes[i]!.op, nodes[i]!.shape)) kept.add(i);
    }
  }
  return kept.size;
}

test('fused step graph: selective recompute leaves no forward T x T, LayerNorm or GELU output for the backward', () => {
  const model = new GPT(config);
  const layout = new FlatLayout(model);
  const at = (r: InGraphRecompute) => fusedStepProgram(model, layout, { batch: B, seq: T }, optimizer, 1, r);
  const none = at('none');
  const loss = none.outputs.indexOf('loss');
  assert.ok(squareTensorsKept(none.program, loss) >= 2 * config.nLayer, 'without recompute the backward reads each layer\'s probabilities and mask');
  assert.equal(squareTensorsKept(at('selective').program, loss), 0);
  const r = recomputeAttentionInGraph(none.program, loss, T);
  // Per layer: the attention core, two LayerNorms and a GELU; then the final LayerNorm.
  assert.equal(r.components, 4 * config.nLayer + 1);
  assert.equal(readByBackward(r.program, loss, (op) => op === 'gelu' || op === 'layer_norm'), 0);
  assert.equal(readByBackward(none.program, loss, (op) => op === 'gelu' || op === 'layer_norm'), 3 * config.nLayer + 1);
  assert.ok(r.elementsFreed >= config.nLayer * 2 * B * config.nHead * T * T, `freed ${r.elementsFreed} elements`);
});

test('fused step: recompute selective trains to the parameters of recompute none (dropout 0.1, 3 steps)', async () => {
  const run = async (recompute: 'none' | 'selective') => {
    const model = new GPT(config);
    const trainer = await createTrainer(model, Mesh.single(), {
      shape: { batch: B, seq: T }, optimizer, gradClip: 1, gradAccum: 1, seed: 7, threads: 1,
      layout: { mesh: { dp: 1, pp: 1, tp: 1 }, virtual: 1, sequenceParallel: false, recompute, schedule: '1f1b' },
    });
    assert.equal(trainer.kind, 'fused');
    const rng = new Rng(4);
    const losses: number[] = [];
    for (let i = 0; i < 3; i++) {
      const tok = () => Int32Array.from({ length: B * T }, () => rng.int(config.vocabSize));
      losses.push((await trainer.step([{ x: tok(), y: tok() }], 1e-2, i)).loss);
    }
    return { losses, params: await trainer.fullParams() };
  };
  const a = await run('none');
  const b = await run('selective');
  a.losses.forEach((l, i) => assert.ok(Math.abs(l - b.losses[i]!) <= 1e-5 * Math.abs(l), `step ${i}: loss ${l} vs ${b.losses[i]}`));
  let worst = 0;
  for (let i = 0; i < a.params.length; i++) worst = Math.max(worst, Math.abs(a.params[i]! - b.params[i]!));
  assert.ok(worst <= 1e-5, `parameters differ by up to ${worst}`);
  assert.ok(a.losses[0] !== a.losses[2], 'the parameters moved');
});
