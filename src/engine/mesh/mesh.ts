// A device mesh over a world process group: this rank's coordinates and one process group per
// axis (the ranks that differ only in that coordinate), plus the embedding-tie group (first
// and last pipeline stage of one (dp, tp) column), which sums the tied embedding's gradient.
// Every rank creates every group in the same order (ProcessGroup.newGroup's rule); a rank
// keeps the ones it belongs to.
import type { ProcessGroup } from '../../dist/index.js';
import { coordsOf, MeshError, rankOf, type MeshCoords, type MeshShape } from './layout.js';

export class Mesh {
  private constructor(
    readonly shape: MeshShape,
    readonly coords: MeshCoords,
    readonly world: ProcessGroup,
    /** Ranks of one tensor-parallel group (same dp, pp). */
    readonly tp: ProcessGroup,
    /** Ranks holding the same model piece (same pp, tp): gradients are summed here. */
    readonly dp: ProcessGroup,
    /** The pipeline of this (dp, tp) column, group rank = stage; activations flow here. */
    readonly pp: ProcessGroup,
    /** Gradients flow on their own channel, so they never queue behind activations. */
    readonly ppGrad: ProcessGroup,
    /** First and last stage of this column when pp > 1 (null on the stages between). */
    readonly embedTie: ProcessGroup | null,
  ) {}

  static create(world: ProcessGroup, shape: MeshShape): Mesh {
    const { dp, pp, tp } = shape;
    if (dp * pp * tp !== world.worldSize) throw new MeshError(`dp ${dp} x pp ${pp} x tp ${tp} = ${dp * pp * tp}, but the process group has ${world.worldSize} ranks`);
    const me = coordsOf(shape, world.rank);
    const range = (n: number) => Array.from({ length: n }, (_, i) => i);
    // Creates the group of every line along one axis; returns the one holding this rank.
    const along = (axis: keyof MeshShape, pick?: (ranks: number[]) => number[]): ProcessGroup | null => {
      let mine: ProcessGroup | null = null;
      const others = (['pp', 'dp', 'tp'] as const).filter((a) => a !== axis);
      for (const a of range(shape[others[0]])) {
        for (const b of range(shape[others[1]])) {
          const line = range(shape[axis]).map((i) => rankOf(shape, { ...({ [others[0]]: a, [others[1]]: b } as Pick<MeshCoords, typeof others[number]>), [axis]: i } as MeshCoords));
          const ranks = pick ? pick(line) : line;
          const g = world.newGroup(ranks);
          if (g) mine = g;
        }
      }
      return mine;
    };
    const tpG = along('tp')!;
    const dpG = along('dp')!;
    const ppG = along('pp')!;
    const ppGrad = along('pp')!;
    const tie = pp > 1 ? along('pp', (line) => [line[0]!, line.at(-1)!]) : null;
    return new Mesh(shape, me, world, tpG, dpG, ppG, ppGrad, tie);
  }

  get isFirstStage(): boolean {
    return this.coords.pp === 0;
  }

  get isLastStage(): boolean {
    return this.coords.pp === this.shape.pp - 1;
  }

  describe(): string {
    const { dp, pp, tp } = this.coords;
    return `rank ${this.world.rank} of ${this.world.worldSize}: dp ${dp}/${this.shape.dp}, pp ${pp}/${this.shape.pp}, tp ${tp}/${this.shape.tp}`;
  }
}
