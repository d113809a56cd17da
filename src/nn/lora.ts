// LoRA (Hu et al. 2021), with Hugging Face PEFT's conventions: a frozen weight W gets a
// trainable low-rank update, y = W x + (alpha / r) * B A dropout(x), with A [r, in] drawn at
// random and B [out, r] = 0, so training starts exactly at the base model. rsLoRA (Kalajdzievski
// 2023) scales by alpha / sqrt(r) instead, which keeps the update's size stable as r grows.
import type { Tensor } from '../tensor/tensor.js';
import { Module } from './module.js';
import { Dropout, Linear, type LinearAdapter } from './layers.js';

export interface LoraConfig {
  r: number;
  alpha: number;
  dropout: number;
  /** Names of the Linear modules to adapt (the last component of their dotted name). */
  targetModules: string[];
  useRslora: boolean;
}

export const DEFAULT_LORA: LoraConfig = { r: 8, alpha: 16, dropout: 0, targetModules: ['c_attn'], useRslora: false };

export function loraScale(c: LoraConfig): number {
  return c.useRslora ? c.alpha / Math.sqrt(c.r) : c.alpha / c.r;
}

/** The A and B matrices of one adapted layer, named as PEFT names them (lora_A.weight, lora_B.weight). */
export class LoraPair extends Module implements LinearAdapter {
  readonly drop: Dropout;
  readonly a;
  readonly b;

  constructor(readonly inFeatures: number, readonly outFeatures: number, readonly config: LoraConfig, salt: number) {
    super();
    // PEFT's "gaussian" initialisation: A ~ N(0, 1/r); B = 0.
    this.a = this.param('lora_A.weight', [config.r, inFeatures], { kind: 'normal', std: 1 / config.r }, true);
    this.b = this.param('lora_B.weight', [outFeatures, config.r], { kind: 'const', value: 0 }, true);
    this.drop = new Dropout(config.dropout, salt);
  }

  forward(x: Tensor, key?: Tensor): Tensor {
    const h = this.drop.forward(x, key).matmul(this.a.value.transpose(0, 1)); // (..., r)
    return h.matmul(this.b.value.transpose(0, 1)).mul(loraScale(this.config)); // (..., out)
  }
}

/** Every Linear under `root` whose own name is in `names`, with its full dotted name. */
export function findLinears(root: Module, names: readonly string[], prefix = ''): [string, Linear][] {
  const out: [string, Linear][] = [];
  for (const [name, child] of root.namedChildren()) {
    const full = prefix + name;
    if (child instanceof Linear && names.includes(name)) out.push([full, child]);
    out.push(...findLinears(child, names, `${full}.`));
  }
  return out;
}

/** Checks a LoRA configuration against the layers it adapts; errors name the key and the layer. */
export function validateLora(c: LoraConfig, targets: readonly [string, Linear][]): void {
  if (!Number.isInteger(c.r) || c.r < 1) throw new RangeError(`LoRA r must be a positive integer, got ${c.r}`);
  if (!(c.alpha > 0)) throw new RangeError(`LoRA alpha must be > 0, got ${c.alpha}`);
  if (!(c.dropout >= 0 && c.dropout < 1)) throw new RangeError(`LoRA dropout must be in [0, 1), got ${c.dropout}`);
  if (targets.length === 0) throw new Error(`LoRA target modules ${c.targetModules.join(', ')} match no Linear layer of the model`);
  for (const [name, l] of targets) {
    const most = Math.min(l.inFeatures, l.outFeatures);
    if (c.r > most) throw new RangeError(`LoRA r = ${c.r} is larger than layer ${name} allows (${l.inFeatures} -> ${l.outFeatures}: rank at most ${most}); use --lora-r ${most} or less`);
  }
}

/**
 * W + scale * B A in the weight's own storage layout: [in, out] gets (B A)^T, [out, in] gets B A.
 * Float64 accumulation, so the merged weight differs from the unmerged layer only by float32
 * rounding of the final sum.
 */
export function mergedWeight(w: Float32Array, layout: Linear['weightLayout'], a: Float32Array, b: Float32Array, inF: number, outF: number, r: number, scale: number): Float32Array {
  const out = new Float32Array(w.length);
  for (let o = 0; o < outF; o++) {
    for (let i = 0; i < inF; i++) {
      let d = 0;
      for (let k = 0; k < r; k++) d += b[o * r + k]! * a[k * inF + i]!;
      const at = layout === 'in,out' ? i * outF + o : o * inF + i;
      out[at] = w[at]! + scale * d;
    }
  }
  return out;
}
