// A device mesh over a world process group: this rank's coordinates and one process group per
// axis (the ranks that differ only in that coordinate), plus the embedding-tie group (first
// and last pipeline stage of one (dp, tp) column), which sums the tied embedding's gradient.
// The mesh of one (single()) is one process with no group at all: the fused step needs none.
// Every rank creates every group in the same order (ProcessGroup.newGroup's rule); a rank
// keeps the ones it belongs to.
import type { ProcessGroup } from '../../dist/index.js';
import { coordsOf, MeshError, rankOf, type MeshCoords, type MeshShape } from './layout.js';

interface AxisGroups {
  world: ProcessGroup;
  tp: ProcessGroup;
  dp: ProcessGroup;
  pp: ProcessGroup;
  ppGrad: ProcessGroup;
  embedTie: ProcessGroup | null;
}

export class Mesh {
  private constructor(
    readonly shape: MeshShape,
    readonly coords: MeshCoords,
    /** null for the mesh of one (single()): no process group exists. */
    private readonly groups: AxisGroups | null,
  ) {}

  /** The mesh of one: this process alone, dp = pp = tp = 1, with no process group. The
   * trainer runs its fused one-graph step on it. */
  static single(): Mesh {
    return new Mesh({ dp: 1, pp: 1, tp: 1 }, { dp: 0, pp: 0, tp: 0 }, null);
  }

  /** False only for the mesh of one, which has no process group to run collectives on. */
  get hasProcessGroup(): boolean {
    return this.groups !== null;
  }

  private group<K extends keyof AxisGroups>(name: K): AxisGroups[K] {
    if (!this.groups) throw new MeshError(`the mesh of one (Mesh.single()) has no process group, so it has no '${name}' group; build the mesh with Mesh.create(await initProcessGroup(...), { dp, pp, tp }) for a layout that runs collectives`);
    return this.groups[name];
  }

  get world(): ProcessGroup {
    return this.group('world');
  }

  /** Ranks of one tensor-parallel group (same dp, pp). */
  get tp(): ProcessGroup {
    return this.group('tp');
  }

  /** Ranks holding the same model piece (same pp, tp): gradients are summed here. */
  get dp(): ProcessGroup {
    return this.group('dp');
  }

  /** The pipeline of this (dp, tp) column, group rank = stage; activations flow here. */
  get pp(): ProcessGroup {
    return this.group('pp');
  }

  /** Gradients flow on their own channel, so they never queue behind activations. */
  get ppGrad(): ProcessGroup {
    return this.group('ppGrad');
  }

  /** First and last stage of this column when pp > 1 (null on the stages between). */
  get embedTie(): ProcessGroup | null {
    return this.groups?.embedTie ?? null;
  }

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
    return new Mesh(shape, me, { world, tp: tpG, dp: dpG, pp: ppG, ppGrad, embedTie: tie });
  }

  get isFirstStage(): boolean {
    return this.coords.pp === 0;
  }

  get isLastStage(): boolean {
    return this.coords.pp === this.shape.pp - 1;
  }

  describe(): string {
    const { dp, pp, tp } = this.coords;
    if (!this.groups) return 'the mesh of one: one process, no process group';
    return `rank ${this.world.rank} of ${this.world.worldSize}: dp ${dp}/${this.shape.dp}, pp ${pp}/${this.shape.pp}, tp ${tp}/${this.shape.tp}`;
  }
}
