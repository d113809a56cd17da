// The arithmetic of a device mesh, checked before any process starts: world = dp x pp x tp
// (tp innermost, then dp, pp outermost, as Megatron-DeepSpeed places them), each rank's
// coordinates, and which contiguous layers each (virtual) pipeline stage holds. Pure: no
// process group, no model; `atscale train` validates with it before building anything.

export interface MeshShape {
  dp: number;
  pp: number;
  tp: number;
}

export interface MeshCoords {
  dp: number;
  pp: number;
  tp: number;
}

export type Recompute = 'none' | 'selective' | 'full';
export type ScheduleKind = 'gpipe' | '1f1b' | 'interleaved';

/** Everything about a run's parallel layout that must be consistent with the model and batch. */
export interface ParallelLayout {
  mesh: MeshShape;
  /** Model chunks per pipeline rank (interleaved 1F1B when > 1). */
  virtual: number;
  /** Layers of each virtual stage, in virtual-stage order (pp x virtual entries); default even. */
  split?: number[];
  sequenceParallel: boolean;
  recompute: Recompute;
  schedule: ScheduleKind;
}

export class MeshError extends Error {
  override name = 'MeshError';
}

/** Global rank of mesh coordinates: tp innermost, then dp, then pp. */
export function rankOf(shape: MeshShape, c: MeshCoords): number {
  return (c.pp * shape.dp + c.dp) * shape.tp + c.tp;
}

export function coordsOf(shape: MeshShape, rank: number): MeshCoords {
  const tp = rank % shape.tp;
  const dp = Math.floor(rank / shape.tp) % shape.dp;
  const pp = Math.floor(rank / (shape.tp * shape.dp));
  return { dp, pp, tp };
}

const posInt = (x: number) => Number.isInteger(x) && x >= 1;

/** The layers of each virtual stage: the explicit split, checked, or an even one. */
export function stageLayers(nLayer: number, pp: number, virtual: number, split?: number[]): number[] {
  const stages = pp * virtual;
  if (split) {
    if (split.length !== stages) throw new MeshError(`the explicit layer split [${split.join(', ')}] has ${split.length} entries but there are pp ${pp} x virtual ${virtual} = ${stages} stages; give one layer count per stage`);
    if (split.some((n) => !posInt(n))) throw new MeshError(`the explicit layer split [${split.join(', ')}] must give every stage at least one layer`);
    const total = split.reduce((a, b) => a + b, 0);
    if (total !== nLayer) {
      const what = total < nLayer ? `loses ${nLayer - total} layer(s)` : `repeats ${total - nLayer} layer(s)`;
      throw new MeshError(`the explicit layer split [${split.join(', ')}] covers ${split.join(' + ')} = ${total} layers but the model has ${nLayer}: it ${what}; every layer must be on exactly one stage`);
    }
    return [...split];
  }
  if (stages > nLayer) throw new MeshError(`${stages} pipeline stages (pp ${pp} x virtual ${virtual}) but only ${nLayer} layers: every stage needs at least one layer; lower --pipeline-model-parallel-size or the interleave`);
  if (virtual > 1 && nLayer % pp === 0 && (nLayer / pp) % virtual !== 0) {
    throw new MeshError(`interleave ${virtual} does not divide the ${nLayer / pp} layers per pipeline stage (${nLayer} layers / pp ${pp}); choose --virtual-pipeline-model-parallel-size dividing ${nLayer / pp}`);
  }
  if (nLayer % stages !== 0) {
    throw new MeshError(`${nLayer} layers do not divide evenly into pp ${pp} x virtual ${virtual} = ${stages} stages (${nLayer} % ${stages} = ${nLayer % stages}); give an explicit split (pipeline.partition) or change the degrees`);
  }
  return Array.from({ length: stages }, () => nLayer / stages);
}

/** First layer of each virtual stage (prefix sums of the split), plus the total at the end. */
export function stageStarts(layers: number[]): number[] {
  const starts = [0];
  for (const n of layers) starts.push(starts.at(-1)! + n);
  return starts;
}

export interface LayoutCheck {
  world: number;
  nLayer: number;
  nHead: number;
  /** Micro-batches per optimizer step on one data-parallel rank (gradient accumulation). */
  microBatches: number;
}

/**
 * Every constraint between the layout, the world size, the model and the batch, with the
 * arithmetic in the message. Returns the layers per virtual stage.
 */
export function checkLayout(l: ParallelLayout, c: LayoutCheck): number[] {
  const { dp, pp, tp } = l.mesh;
  for (const [k, v] of [['data-parallel', dp], ['pipeline-model-parallel', pp], ['tensor-model-parallel', tp], ['virtual-pipeline-model-parallel', l.virtual]] as const) {
    if (!posInt(v)) throw new MeshError(`the ${k} size must be a positive integer, got ${v}`);
  }
  if (dp * pp * tp !== c.world) throw new MeshError(`dp ${dp} x pp ${pp} x tp ${tp} = ${dp * pp * tp}, but the world has ${c.world} processes; the product of the degrees must equal the world size`);
  if (c.nHead % tp !== 0) throw new MeshError(`${c.nHead} attention heads do not divide by tensor-model-parallel size ${tp} (${c.nHead} % ${tp} = ${c.nHead % tp}); every tensor-parallel rank must hold whole heads`);
  if (l.virtual > 1 && pp === 1) throw new MeshError(`virtual pipeline size ${l.virtual} needs pipeline-model-parallel size > 1`);
  if (l.sequenceParallel && tp === 1) throw new MeshError('--sequence-parallel needs tensor-model-parallel size > 1 (it splits the sequence across the tensor-parallel ranks)');
  const layers = stageLayers(c.nLayer, pp, l.virtual, l.split);
  if (pp > 1 && l.schedule !== 'gpipe' && c.microBatches < pp) {
    throw new MeshError(`${c.microBatches} micro-batch(es) per step is fewer than pp ${pp}: 1F1B needs at least one micro-batch per stage in flight; raise --grad-accum (gradient_accumulation_steps) to >= ${pp}`);
  }
  if (l.virtual > 1 && c.microBatches % pp !== 0) {
    throw new MeshError(`interleaved 1F1B runs micro-batches in groups of pp: ${c.microBatches} micro-batches % pp ${pp} = ${c.microBatches % pp}; use a multiple of ${pp}`);
  }
  return layers;
}
