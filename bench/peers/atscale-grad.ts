// atscale's side of every PyTorch equivalence check: the loss and flat gradient of one batch,
// from the same whole-model micro-step program the trainers run, called by name.
import type { LanguageModel } from '../../src/models/model.js';
import type { FlatLayout } from '../../src/nn/flat.js';
import { microstepProgram } from '../../src/engine/step-graphs.js';
import { NamedExecutable } from '../../src/engine/named-program.js';
import { hostValue } from '../../src/ir/value.js';

export interface LossAndGrad {
  loss: number;
  grad: Float32Array;
}

/** idx and targets are [batch, seq]; a target of -1 is masked. */
export async function lossAndGrad(model: LanguageModel, layout: FlatLayout, params: Float32Array, idx: Int32Array, targets: Int32Array, batch: number, seq: number, threads = 2): Promise<LossAndGrad> {
  const exe = await NamedExecutable.of(microstepProgram(model, layout, { batch, seq }), { threads });
  const out = await exe.run({
    params: hostValue('float32', [layout.size], params),
    grad_acc: hostValue('float32', [layout.size]),
    idx: hostValue('int32', [batch, seq], idx),
    targets: hostValue('int32', [batch, seq], targets),
    scale: hostValue('float32', [1], [1]),
  });
  return { loss: (out.loss!.data as Float32Array)[0]!, grad: out.grad_acc!.data as Float32Array };
}
