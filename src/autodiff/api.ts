// grad and valueAndGrad: JAX-style transformations of a function of tensors (or of named
// parameter records), compiled to one graph that computes the value and the gradients.
import type { CompileOptions } from '../runtime/execute.js';
import type { HostValue } from '../ir/value.js';
import { type HostArgs, type HostOf, type TensorFn, type TensorTree, jit, isTensor } from '../tensor/jit.js';
import { Tensor } from '../tensor/tensor.js';
import { flatten, unflatten } from '../tensor/tree.js';
import { gradients } from './grad.js';

export interface GradOptions<N extends number = number> extends CompileOptions {
  /** Which positional argument to differentiate with respect to (default 0). */
  argnum?: N;
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

/** grad(f)(...args) -> df/d(args[argnum]) with the structure (and type) of that argument. */
export function grad<F extends TensorFn<Tensor>, N extends number = 0>(fn: F, opts: GradOptions<N> = {}): (...args: HostArgs<Parameters<F>>) => Promise<HostOf<Parameters<F>[N]>> {
  const run = jit(differentiated(fn, opts.argnum ?? 0, false), opts);
  return run as unknown as (...args: HostArgs<Parameters<F>>) => Promise<HostOf<Parameters<F>[N]>>;
}

/** valueAndGrad(f)(...args) -> [f(args), df/d(args[argnum])], typed like grad. */
export function valueAndGrad<F extends TensorFn<Tensor>, N extends number = 0>(fn: F, opts: GradOptions<N> = {}): (...args: HostArgs<Parameters<F>>) => Promise<[HostValue, HostOf<Parameters<F>[N]>]> {
  const run = jit(differentiated(fn, opts.argnum ?? 0, true), opts);
  return run as unknown as (...args: HostArgs<Parameters<F>>) => Promise<[HostValue, HostOf<Parameters<F>[N]>]>;
}
