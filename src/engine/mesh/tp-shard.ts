// Where each parameter element of one tensor-parallel rank's shard lives in the full model's
// flat layout: per parameter, checkpoint/tp-split.ts's arithmetic for the model's
// tensorParallelSplit (the one definition of how a tensor is cut, which universal checkpoints
// use too), offset to the parameter's place in the full layout. Initialisation slices the
// one-process buffer with it (so every layout starts from the same weights); consolidation
// writes each rank's elements back to their full positions. With one rank it is the identity.
import { allocFloat, floatDTypeOf, type FloatArray } from '../../ir/dtype.js';
import type { FlatLayout } from '../../nn/flat.js';
import type { LanguageModel } from '../../models/model.js';
import { tpShardIndex, tpShardShape } from '../../checkpoint/index.js';
import { MeshError } from './layout.js';

export class TensorParallelShard {
  /** Full-layout index of each local element; -1 for vocabulary padding rows. */
  readonly toFull: Int32Array;
  /** 1 where the local element belongs to a replicated parameter (held by every tp rank). */
  readonly replicated: Uint8Array;

  constructor(model: LanguageModel, full: FlatLayout, local: FlatLayout, readonly rank: number, readonly size: number) {
    this.toFull = new Int32Array(local.size);
    this.replicated = new Uint8Array(local.size);
    for (const s of local.slots) {
      const f = full.byName.get(s.name);
      if (!f) throw new MeshError(`tensor-parallel shard: parameter ${s.name} of the local model is not in the full model`);
      const split = model.tensorParallelSplit(s.name);
      let want: number[];
      try {
        want = tpShardShape(s.name, f.shape, split, size);
      } catch (e) {
        throw new MeshError(`tensor-parallel shard: ${(e as Error).message}`);
      }
      if (want.length !== s.shape.length || want.some((d, i) => d !== s.shape[i])) {
        throw new MeshError(`tensor-parallel shard: ${s.name} is [${s.shape.join(', ')}] locally and [${f.shape.join(', ')}] in full; a ${split.kind} split over ${size} ranks gives [${want.join(', ')}]`);
      }
      const at = tpShardIndex(s.name, f.shape, split, size, rank);
      for (let i = 0; i < at.length; i++) this.toFull[s.offset + i] = at[i]! < 0 ? -1 : f.offset + at[i]!;
      if (split.kind === 'replicated') this.replicated.fill(1, s.offset, s.offset + s.size);
    }
  }

  /** This rank's local buffer from a full one (padding rows zero). */
  shard<A extends FloatArray>(full: A): A {
    const out = allocFloat(floatDTypeOf(full), this.toFull.length) as A;
    for (let i = 0; i < out.length; i++) {
      const k = this.toFull[i]!;
      if (k >= 0) out[i] = full[k]!;
    }
    return out;
  }
}
