// The basic layers. Linear stores its weight [in, out] (GPT-2's layout) by default, so
// y = x W + b needs no transpose in the graph; `outIn` stores it [out, in] (torch.nn.Linear's
// layout, used by Llama checkpoints) so such weights load and save byte for byte.
import type { Tensor } from '../tensor/tensor.js';
import { layerNorm, dropout, dropoutUnscaled, type MaskBlock } from '../tensor/functional.js';
import { Module, type Parameter } from './module.js';

/** A side path added to a layer's output (LoRA attaches one): y = layer(x) + adapter(x). */
export interface LinearAdapter {
  forward(x: Tensor, key?: Tensor): Tensor;
}

export class Linear extends Module {
  readonly weight: Parameter;
  readonly bias: Parameter | undefined;
  /** How the weight is stored: [in, out] (GPT-2's Conv1D) or [out, in] (Llama); merging an adapter reads it. */
  readonly weightLayout: 'in,out' | 'out,in';
  adapter: LinearAdapter | undefined;

  constructor(readonly inFeatures: number, readonly outFeatures: number, opts: { bias?: boolean; std?: number; outIn?: boolean } = {}) {
    super();
    this.weightLayout = opts.outIn ? 'out,in' : 'in,out';
    const shape = opts.outIn ? [outFeatures, inFeatures] : [inFeatures, outFeatures];
    this.weight = this.param('weight', shape, { kind: 'normal', std: opts.std ?? 0.02 }, true);
    this.bias = opts.bias === false ? undefined : this.param('bias', [outFeatures], { kind: 'const', value: 0 }, false);
  }

  forward(x: Tensor, key?: Tensor): Tensor {
    const y = x.matmul(this.weightLayout === 'out,in' ? this.weight.value.transpose(0, 1) : this.weight.value);
    const out = this.bias ? y.add(this.bias.value) : y;
    return this.adapter ? out.add(this.adapter.forward(x, key)) : out;
  }
}

export class Embedding extends Module {
  readonly weight: Parameter;

  constructor(readonly count: number, readonly dim: number, opts: { std?: number; decay?: boolean } = {}) {
    super();
    this.weight = this.param('weight', [count, dim], { kind: 'normal', std: opts.std ?? 0.02 }, opts.decay ?? true);
  }

  forward(indices: Tensor): Tensor {
    return this.weight.value.take(indices);
  }
}

export class LayerNorm extends Module {
  readonly weight: Parameter;
  readonly bias: Parameter | undefined;

  constructor(readonly dim: number, opts: { bias?: boolean; eps?: number } = {}) {
    super();
    this.weight = this.param('weight', [dim], { kind: 'const', value: 1 }, false);
    this.bias = opts.bias === false ? undefined : this.param('bias', [dim], { kind: 'const', value: 0 }, false);
    this.eps = opts.eps ?? 1e-5;
  }
  private readonly eps: number;

  forward(x: Tensor): Tensor {
    return layerNorm(x, this.weight.value, this.bias?.value, this.eps);
  }
}

/** RMSNorm (Zhang & Sennrich 2019): x / sqrt(mean(x^2) + eps) * weight, no centring, no bias. */
export class RMSNorm extends Module {
  readonly weight: Parameter;

  constructor(readonly dim: number, readonly eps = 1e-6) {
    super();
    this.weight = this.param('weight', [dim], { kind: 'const', value: 1 }, false);
  }

  forward(x: Tensor): Tensor {
    return x.mul(x.square().mean(-1, true).add(this.eps).rsqrt()).mul(this.weight.value);
  }
}

/**
 * Dropout with a mask that is a pure function of (key, salt): the trainer derives the key
 * from (seed, step, micro-step), each Dropout gets its own salt, so a step recomputes
 * bit-identically. With no key (evaluation) it is the identity.
 */
export class Dropout extends Module {
  constructor(readonly p: number, readonly salt: number) {
    super();
    if (!(p >= 0 && p < 1)) throw new RangeError(`dropout must be in [0, 1), got ${p}`);
  }

  /** `block`: where x lies in the tensor of one process (a shard of heads or of the sequence). */
  forward(x: Tensor, key: Tensor | undefined, block?: MaskBlock): Tensor {
    return key && this.p > 0 ? dropout(x, this.p, key, this.salt, block) : x;
  }

  /** The mask without the 1/(1-p) scale, and the scale the caller must apply downstream. */
  forwardUnscaled(x: Tensor, key: Tensor | undefined, block?: MaskBlock): { y: Tensor; scale: number } {
    return key && this.p > 0 ? { y: dropoutUnscaled(x, this.p, key, this.salt, block), scale: 1 / (1 - this.p) } : { y: x, scale: 1 };
  }
}
