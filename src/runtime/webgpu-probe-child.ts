// Child side of the WebGPU probe: y = x + x on the WebGPU provider, printed on success.
import * as ort from 'onnxruntime-node';
import { modelProto } from './onnx/model.js';

const model = modelProto({
  name: 'probe',
  nodes: [{ op: 'Add', inputs: ['x', 'x'], outputs: ['y'] }],
  initializers: [],
  inputs: [{ name: 'x', dtype: 'float32', shape: [4] }],
  outputs: [{ name: 'y', dtype: 'float32', shape: [4] }],
});
try {
  const session = await ort.InferenceSession.create(model, { executionProviders: ['webgpu'] });
  const r = await session.run({ x: new ort.Tensor('float32', new Float32Array([1, 2, 3, 4]), [4]) });
  const y = r.y!.data as Float32Array;
  if (y[3] !== 8) throw new Error(`WebGPU computed ${Array.from(y).join(',')} for 2*[1,2,3,4]`);
  console.log('webgpu-ok');
} catch (e) {
  console.error(`webgpu-error: ${(e as Error).message.split('\n')[0]}`);
  process.exitCode = 1;
}
