// grad and valueAndGrad: JAX-style transformations of a function of tensors (or of named
// parameter records), compiled to one graph that computes the value and the gradients.
import type { CompileOptions } from '../runtime/execute.js';
import { type HostTree, type TensorFn, type TensorTree, jit, isTensor } from '../tensor/jit.js';
import { Tensor } from '../tensor/tensor.js';
import { flatten, unflatten } from '../tensor/tree.js';
import { gradients } from './grad.js';

export interface GradOptions extends CompileOptions {
  /** Which positional argument to differentiate with respect to (default 0). */
  argnum?: number;
}

function differentiated(fn: TensorFn<Tensor>, argnum: number, withValue: boolean) {
  return (...args: TensorTree[]): TensorTree => {
    const y = (fn as (...a: TensorTree[]) => Tensor)(...args);
    if (!(y instanceof Tensor)) throw new TypeError('grad: the function must return a single scalar tensor');
    const target = args[argnum];
    if (target === undefined) throw new RangeError(`grad: argnum ${argnum} but the function got ${args.length} arguments`);
    const leaves = flatten(target, isTensor).map((l) => l.leaf);
    const gs = gradients(y, leaves);
    const g = unflatten(target, isTensor, gs);
    return withValue ? [y, g] : g;
  };
}

/** grad(f)(...args) -> df/d(args[argnum]) with the structure of that argument. */
export function grad(fn: TensorFn<Tensor>, opts: GradOptions = {}): (...args: HostTree[]) => Promise<HostTree> {
  return jit(differentiated(fn, opts.argnum ?? 0, false), opts);
}

/** valueAndGrad(f)(...args) -> [f(args), df/d(args[argnum])]. */
export function valueAndGrad(fn: TensorFn<Tensor>, opts: GradOptions = {}): (...args: HostTree[]) => Promise<HostTree> {
  return jit(differentiated(fn, opts.argnum ?? 0, true), opts);
}
