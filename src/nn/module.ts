// Module and Parameter. A module declares its parameters (shape, initialiser, weight decay)
// at construction; their values live in one flat buffer (flat.ts). While a step is traced,
// each Parameter is bound to the tensor that views its slice of that buffer, so forward code
// reads naturally: x.matmul(this.weight.value).
import type { Tensor } from '../tensor/tensor.js';

/** How a parameter is initialised: normal(0, std), constant fill. */
export type Init = { kind: 'normal'; std: number } | { kind: 'const'; value: number };

export class Parameter {
  private bound: Tensor | undefined;

  constructor(
    readonly name: string,
    readonly shape: readonly number[],
    readonly init: Init,
    /** AdamW weight decay applies (matrices and embeddings by default; not biases or norms). */
    readonly decay: boolean,
  ) {}

  get size(): number {
    return this.shape.reduce((a, b) => a * b, 1);
  }

  get value(): Tensor {
    if (!this.bound) throw new Error(`parameter ${this.name} has no value here: module forward code must run inside a traced step (bindParameters)`);
    return this.bound;
  }

  bind(t: Tensor | undefined): void {
    this.bound = t;
  }
}

export abstract class Module {
  private readonly ownParams: Parameter[] = [];
  private readonly children: [string, Module][] = [];
  prefix = '';

  protected param(name: string, shape: readonly number[], init: Init, decay: boolean): Parameter {
    const p = new Parameter(name, shape, init, decay);
    this.ownParams.push(p);
    return p;
  }

  protected child<M extends Module>(name: string, m: M): M {
    this.children.push([name, m]);
    return m;
  }

  /** All parameters with their full dotted names, in registration order (the flat layout order). */
  namedParameters(prefix = ''): [string, Parameter][] {
    const out: [string, Parameter][] = this.ownParams.map((p) => [prefix + p.name, p]);
    // A loop, not push(...list): spreading a deep model's list as call arguments overflows the stack.
    for (const [name, m] of this.children) for (const e of m.namedParameters(`${prefix}${name}.`)) out.push(e);
    return out;
  }

  /** Direct children, for segmenting a model into units (one per transformer block). */
  namedChildren(): readonly [string, Module][] {
    return this.children;
  }
}
