// The forward graph of a trained model with its weights folded in as ONNX initializers.
import { hostValue } from '../ir/value.js';
import { optimize } from '../ir/passes.js';
import { constant } from '../tensor/tensor.js';
import { buildProgram } from '../tensor/program.js';
import { FlatLayout, withParams, type Slot } from '../nn/flat.js';
import type { LanguageModel } from '../models/model.js';
import { lowerProgram } from '../runtime/onnx/lower.js';
import { modelProto } from '../runtime/onnx/model.js';

export function exportOnnx(model: LanguageModel, params: Float32Array, batch: number, seq: number): Uint8Array {
  if (!(Number.isInteger(batch) && batch > 0)) throw new RangeError(`batch must be a positive integer, got ${batch}`);
  if (!(Number.isInteger(seq) && seq > 0 && seq <= model.dims.blockSize)) throw new RangeError(`seq must be in 1..${model.dims.blockSize} (the block size), got ${seq}`);
  const layout = new FlatLayout(model);
  const program = buildProgram((t) => {
    const ids = t.input('input_ids', [batch, seq], 'int64');
    const weight = (s: Slot) => constant(hostValue('float32', s.shape, layout.view(params, s.name)), t.graph);
    return withParams(layout.slots, weight, () => ({ inputs: [ids], outputs: [model.forward(ids)] }));
  });
  const { graph } = lowerProgram(optimize(program), `atscale-${model.family}`);
  // Friendlier external names than the internal in_/out_ convention.
  graph.inputs[0]!.name = 'input_ids';
  graph.outputs[0]!.name = 'logits';
  for (const n of graph.nodes) {
    n.inputs = n.inputs.map((x) => (x === 'in_input_ids' ? 'input_ids' : x));
    n.outputs = n.outputs.map((x) => (x === 'out_0' ? 'logits' : x));
  }
  return modelProto(graph);
}
