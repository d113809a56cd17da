// grad, valueAndGrad and jit are typed from the function they transform (as jax-js types
// them): a Tensor argument takes a HostValue, a record of tensors a record of host values,
// and the gradient has the type of the argument it is taken against. Compiles under strict.
import { grad, valueAndGrad, jit, softmax, hostValue, type Tensor, type HostValue } from 'atscale';

const f = (x: Tensor) => softmax(x).mul(x).sum();
const dfdx: HostValue = await grad(f)(hostValue('float32', [3], [1, 2, 3]));

const loss = (p: { w: Tensor; b: Tensor }, x: Tensor) => x.matmul(p.w).add(p.b).square().mean();
const params = { w: hostValue('float32', [3, 1], [1, 2, 3]), b: hostValue('float32', [1], [0]) };
const x = hostValue('float32', [2, 3], [1, 0, 0, 0, 1, 0]);
const [value, grads] = await valueAndGrad(loss)(params, x);
const dx: HostValue = await grad(loss, { argnum: 1 })(params, x); // against the second argument

const both = jit((a: Tensor, b: Tensor) => [a.add(b), a.mul(b)] as const);
const [sum, product] = await both(x, x);

console.log('df/dx', dfdx.data, 'loss', value.data[0], 'dL/dw', grads.w.data, 'dL/db', grads.b.data);
console.log('dL/dx shape', dx.shape, 'x+x', sum.data, 'x*x', product.data);
