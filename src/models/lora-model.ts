// A base language model with LoRA adapters, itself a LanguageModel whose only parameters are
// the adapters. Whenever it is traced, the base weights enter the graph as constants: they are
// frozen in the compiled program, no gradient or optimizer state exists for them, and every
// engine path (trainers, generation, export) works on the adapted model unchanged.
import type { Tensor } from '../tensor/tensor.js';
import { constant } from '../tensor/tensor.js';
import { hostValue } from '../ir/value.js';
import { Module } from '../nn/module.js';
import { FlatLayout } from '../nn/flat.js';
import type { Linear } from '../nn/layers.js';
import { findLinears, LoraPair, loraScale, mergedWeight, validateLora, type LoraConfig } from '../nn/lora.js';
import type { DecodeResult, LanguageModel, LayerCache, ModelDims, ModelUnits, TpSplit } from './model.js';

export class LoraModel extends Module implements LanguageModel {
  readonly family: string;
  readonly dims: ModelDims;
  readonly targets: [string, Linear][];
  readonly pairs: LoraPair[] = [];
  private readonly baseLayout: FlatLayout;

  constructor(readonly base: LanguageModel, readonly baseParams: Float32Array, readonly lora: LoraConfig) {
    super();
    this.family = base.family;
    this.dims = base.dims;
    this.baseLayout = new FlatLayout(base);
    if (baseParams.length !== this.baseLayout.size) throw new Error(`base parameters have ${baseParams.length} values, the base model needs ${this.baseLayout.size}`);
    this.targets = findLinears(base, lora.targetModules);
    validateLora(lora, this.targets);
    this.targets.forEach(([name, linear], i) => {
      this.pairs.push(this.child(name, new LoraPair(linear.inFeatures, linear.outFeatures, lora, 4096 + i)));
    });
  }

  get blocks() {
    return this.base.blocks;
  }

  /**
   * Runs `fn` with the base weights bound as graph constants (frozen) and the adapters attached
   * to their layers; both are undone after, so the base model stays usable on its own.
   */
  private frozen<T>(graph: Tensor['graph'], fn: () => T): T {
    const slots = this.baseLayout.slots;
    for (const s of slots) s.param.bind(constant(hostValue('float32', s.shape, this.baseLayout.view(this.baseParams, s.name)), graph));
    this.targets.forEach(([, linear], i) => (linear.adapter = this.pairs[i]));
    try {
      return fn();
    } finally {
      for (const s of slots) s.param.bind(undefined);
      for (const [, linear] of this.targets) linear.adapter = undefined;
    }
  }

  architecture(): Record<string, unknown> {
    return this.base.architecture();
  }

  embed(idx: Tensor, key?: Tensor): Tensor {
    return this.frozen(idx.graph, () => this.base.embed(idx, key));
  }

  head(x: Tensor): Tensor {
    return this.frozen(x.graph, () => this.base.head(x));
  }

  forward(idx: Tensor, key?: Tensor): Tensor {
    return this.frozen(idx.graph, () => this.base.forward(idx, key));
  }

  headLoss(x: Tensor, targets: Tensor): Tensor {
    return this.frozen(x.graph, () => this.base.headLoss(x, targets));
  }

  loss(idx: Tensor, targets: Tensor, key?: Tensor): Tensor {
    return this.frozen(idx.graph, () => this.base.loss(idx, targets, key));
  }

  decode(tokens: Tensor, start: Tensor, caches: readonly LayerCache[]): DecodeResult {
    return this.frozen(tokens.graph, () => this.base.decode(tokens, start, caches));
  }

  units(): ModelUnits {
    throw new Error('LoRA adapters train with ZeRO stages 0 and 1: stages 2 and 3 work block by block on the model\'s own parameters, and the adapters (under 2% of the model) are not worth sharding further; set zero_optimization.stage to 0 or 1');
  }

  tensorParallelSplit(): TpSplit {
    return { kind: 'replicated' };
  }

  paramCount(): number {
    return this.base.paramCount() + this.trainableCount();
  }

  trainableCount(): number {
    return this.pairs.reduce((a, p) => a + p.a.size + p.b.size, 0);
  }

  flopsPerToken(seq?: number): number {
    // The base's forward and input-gradient work remains; weight gradients exist only for the
    // adapters. Counted as the base's full training FLOPs, the usual (conservative) convention.
    return this.base.flopsPerToken(seq);
  }

  /** Base parameters with every adapter folded in (W + scale * B A). */
  merge(adapterParams: Float32Array): Float32Array {
    const own = new FlatLayout(this);
    const merged = Float32Array.from(this.baseParams);
    const scale = loraScale(this.lora);
    this.targets.forEach(([name, linear]) => {
      const wName = `${name}.weight`;
      const w = this.baseLayout.view(merged, wName);
      const a = own.view(adapterParams, `${name}.lora_A.weight`);
      const b = own.view(adapterParams, `${name}.lora_B.weight`);
      w.set(mergedWeight(w, linear.weightLayout, a, b, linear.inFeatures, linear.outFeatures, this.lora.r, scale));
    });
    return merged;
  }
}
