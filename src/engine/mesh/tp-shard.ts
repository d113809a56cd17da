// Where each parameter element of one tensor-parallel rank's shard lives in the full model's
// flat layout, from the model's tensorParallelSplit: a column, row or vocabulary split takes
// this rank's range of the split axis (a fused [q | k | v] axis its range of each third), a
// replicated parameter is whole on every rank. Initialisation slices the one-process buffer
// with it (so every layout starts from the same weights); consolidation writes each rank's
// elements back to their full positions. With one rank (local = full layout) it is the identity.
import type { FlatLayout } from '../../nn/flat.js';
import type { LanguageModel } from '../../models/model.js';
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
      if (split.kind === 'replicated') {
        if (f.size !== s.size) throw new MeshError(`tensor-parallel shard: replicated parameter ${s.name} has ${s.size} values locally but ${f.size} in the full model`);
        for (let i = 0; i < s.size; i++) this.toFull[s.offset + i] = f.offset + i;
        this.replicated.fill(1, s.offset, s.offset + s.size);
        continue;
      }
      const a = split.axis;
      const parts = split.parts ?? 1;
      const n = s.shape[a]!;
      const N = f.shape[a]!;
      const sameElsewhere = s.shape.every((d, i) => i === a || d === f.shape[i]);
      const fits = split.kind === 'vocab' ? n * size >= N && (n - 1) * size < N : n * size === N;
      if (!sameElsewhere || !fits || n % parts !== 0) {
        throw new MeshError(`tensor-parallel shard: ${s.name} is [${s.shape.join(', ')}] locally and [${f.shape.join(', ')}] in full; a ${split.kind} split of axis ${a} over ${size} ranks does not relate them`);
      }
      const inner = s.shape.slice(a + 1).reduce((x, y) => x * y, 1);
      const outer = s.shape.slice(0, a).reduce((x, y) => x * y, 1);
      const piece = n / parts;
      for (let o = 0; o < outer; o++) {
        for (let j = 0; j < n; j++) {
          // Part p of the axis: this rank's range of it, at the same place in every part.
          const fj = Math.floor(j / piece) * (N / parts) + rank * piece + (j % piece);
          const dst = s.offset + (o * n + j) * inner;
          if (fj >= N) {
            this.toFull.fill(-1, dst, dst + inner);
            continue;
          }
          const src = f.offset + (o * N + fj) * inner;
          for (let i = 0; i < inner; i++) this.toFull[dst + i] = src + i;
        }
      }
    }
  }

  /** This rank's local buffer from a full one (padding rows zero). */
  shard(full: Float32Array): Float32Array {
    const out = new Float32Array(this.toFull.length);
    for (let i = 0; i < out.length; i++) {
      const k = this.toFull[i]!;
      if (k >= 0) out[i] = full[k]!;
    }
    return out;
  }
}
