// Flat parameter storage (as DeepSpeed and llm.c do): every parameter of a model is a view
// of one contiguous Float32Array. ZeRO shards, collectives, checkpoints and the optimizer all
// work on ranges of this one buffer.
import { Rng } from '../tensor/rng.js';
import type { Module, Parameter } from './module.js';
import type { Tensor } from '../tensor/tensor.js';

export interface Slot {
  name: string;
  param: Parameter;
  offset: number;
  size: number;
  shape: readonly number[];
}

/** Binds each slot's parameter to valueOf(slot) while fn runs (tracing module code), then unbinds. */
export function withParams<T>(slots: readonly Slot[], valueOf: (s: Slot) => Tensor, fn: (values: Tensor[]) => T): T {
  const values = slots.map((s) => {
    const v = valueOf(s);
    s.param.bind(v);
    return v;
  });
  try {
    return fn(values);
  } finally {
    for (const s of slots) s.param.bind(undefined);
  }
}

/** The view of one parameter in a traced flat tensor that holds the layout from offset `base`. */
export function flatView(flat: Tensor, s: Slot, base = 0): Tensor {
  return flat.slice([s.offset - base, s.offset - base + s.size]).reshape(s.shape);
}

export class FlatLayout {
  readonly slots: Slot[] = [];
  readonly byName = new Map<string, Slot>();
  readonly size: number;

  constructor(module: Module) {
    let offset = 0;
    for (const [name, param] of module.namedParameters()) {
      const slot = { name, param, offset, size: param.size, shape: param.shape };
      this.slots.push(slot);
      this.byName.set(name, slot);
      offset += param.size;
    }
    this.size = offset;
  }

  /** 1 where AdamW's weight decay applies, 0 elsewhere. */
  decayMask(): Float32Array {
    const m = new Float32Array(this.size);
    for (const s of this.slots) if (s.param.decay) m.fill(1, s.offset, s.offset + s.size);
    return m;
  }

  /** Fills a fresh buffer with each parameter's initialiser, in layout order, from one seed. */
  initialise(seed: number): Float32Array {
    const buf = new Float32Array(this.size);
    const rng = new Rng(seed);
    for (const s of this.slots) {
      const init = s.param.init;
      const view = buf.subarray(s.offset, s.offset + s.size);
      if (init.kind === 'const') view.fill(init.value);
      else for (let i = 0; i < view.length; i++) view[i] = init.std * rng.normal();
    }
    return buf;
  }

  view(buf: Float32Array, name: string): Float32Array {
    const s = this.byName.get(name);
    if (!s) throw new Error(`no parameter named '${name}'; parameters are ${this.slots.map((x) => x.name).join(', ')}`);
    return buf.subarray(s.offset, s.offset + s.size);
  }

  /** A state dict: name -> {shape, data view}. */
  stateDict<A extends Float32Array | Float64Array>(buf: A): Record<string, { shape: number[]; data: A }> {
    return Object.fromEntries(this.slots.map((s) => [s.name, { shape: [...s.shape], data: buf.subarray(s.offset, s.offset + s.size) as A }]));
  }

  /** Copies a state dict into buf; every parameter must be present with its exact shape. */
  loadStateDict(buf: Float32Array | Float64Array, dict: Record<string, { shape: readonly number[]; data: ArrayLike<number> }>): void {
    for (const s of this.slots) {
      const e = dict[s.name];
      if (!e) throw new Error(`state dict is missing parameter '${s.name}'`);
      if (e.shape.length !== s.shape.length || e.shape.some((d, i) => d !== s.shape[i])) {
        throw new Error(`parameter '${s.name}' has shape [${e.shape.join(', ')}] in the state dict but [${s.shape.join(', ')}] in the model`);
      }
      if (e.data.length !== s.size) throw new Error(`parameter '${s.name}' has ${e.data.length} values in the state dict, its shape [${s.shape.join(', ')}] needs ${s.size}`);
      buf.set(e.data, s.offset);
    }
    const extra = Object.keys(dict).filter((k) => !this.byName.has(k));
    if (extra.length) throw new Error(`state dict has parameters the model does not: ${extra.join(', ')}`);
  }
}
