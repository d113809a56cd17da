// The parallel layout of a run, from the DeepSpeed config's `pipeline`, `tensor_parallel` and
// `activation_checkpointing` sections and Megatron-style flags (a flag and a config key that
// disagree are refused), checked against the world size, the model and the batch before any
// process group exists.
import { checkLayout, MeshError, type ParallelLayout, type Recompute, type ScheduleKind } from './layout.js';

/** Megatron-LM's flags, as `atscale train` parses them (undefined: not given). */
export interface ParallelFlags {
  tensorModelParallelSize?: number;
  pipelineModelParallelSize?: number;
  virtualPipelineModelParallelSize?: number;
  sequenceParallel?: boolean;
  recomputeGranularity?: string;
  pipelineSchedule?: string;
}

export const PARALLEL_SECTIONS = ['pipeline', 'tensor_parallel', 'activation_checkpointing'];
const SECTION_KEYS: Record<string, string[]> = {
  pipeline: ['stages', 'partition', 'virtual_stages', 'schedule'],
  tensor_parallel: ['tp_size', 'autotp_size', 'sequence_parallel'],
  activation_checkpointing: ['granularity'],
};

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

/** The sections' settings in flag form; unknown keys and bad values name the key. */
export function parallelFromConfig(raw: unknown): ParallelFlags & { partition?: number[] } {
  const out: ParallelFlags & { partition?: number[] } = {};
  if (!isObj(raw)) return out;
  const section = (name: string): Obj | undefined => {
    const s = raw[name];
    if (s === undefined) return undefined;
    if (!isObj(s)) throw new MeshError(`${name} must be a JSON object, got ${JSON.stringify(s)}`);
    for (const k of Object.keys(s)) if (!SECTION_KEYS[name]!.includes(k)) throw new MeshError(`unknown key '${name}.${k}' in the DeepSpeed config; known keys here: ${SECTION_KEYS[name]!.join(', ')}`);
    return s;
  };
  const int = (s: Obj, where: string, k: string): number | undefined => {
    const v = s[k];
    if (v === undefined) return undefined;
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 1) throw new MeshError(`${where}.${k} must be a positive integer, got ${JSON.stringify(v)}`);
    return v;
  };
  const p = section('pipeline');
  if (p) {
    out.pipelineModelParallelSize = int(p, 'pipeline', 'stages');
    out.virtualPipelineModelParallelSize = int(p, 'pipeline', 'virtual_stages');
    if (p.schedule !== undefined) out.pipelineSchedule = String(p.schedule);
    const part = p.partition;
    if (part !== undefined && part !== 'uniform') {
      if (!Array.isArray(part) || !part.every((x) => typeof x === 'number' && Number.isInteger(x))) throw new MeshError(`pipeline.partition must be "uniform" or a list of layer counts, one per (virtual) stage, got ${JSON.stringify(part)}`);
      out.partition = part as number[];
    }
  }
  const t = section('tensor_parallel');
  if (t) {
    out.tensorModelParallelSize = int(t, 'tensor_parallel', 'tp_size') ?? int(t, 'tensor_parallel', 'autotp_size');
    if (t.sequence_parallel !== undefined) {
      if (typeof t.sequence_parallel !== 'boolean') throw new MeshError(`tensor_parallel.sequence_parallel must be true or false, got ${JSON.stringify(t.sequence_parallel)}`);
      out.sequenceParallel = t.sequence_parallel;
    }
  }
  const a = section('activation_checkpointing');
  if (a && a.granularity !== undefined) out.recomputeGranularity = String(a.granularity);
  return out;
}

export interface ResolvedLayout {
  layout: ParallelLayout;
  /** Layers of each virtual stage. */
  stageLayers: number[];
}

/**
 * Flags and config sections merged (equal values only), the data-parallel degree derived from
 * the world size, and every constraint checked. `microBatches`: gradient accumulation steps
 * for a data-parallel degree (a DeepSpeed config derives them from it).
 */
export function resolveLayout(flags: ParallelFlags, fromConfig: ParallelFlags & { partition?: number[] }, c: { world: number; nLayer: number; nHead: number; microBatches: (dp: number) => number }): ResolvedLayout {
  const pick = <K extends keyof ParallelFlags>(k: K, flag: string, key: string): ParallelFlags[K] => {
    const a = flags[k];
    const b = fromConfig[k];
    if (a !== undefined && b !== undefined && a !== b) throw new MeshError(`${flag} ${String(a)} conflicts with the DeepSpeed config's ${key} ${String(b)}; give it once`);
    return a ?? b;
  };
  const tp = pick('tensorModelParallelSize', '--tensor-model-parallel-size', 'tensor_parallel.tp_size') ?? 1;
  const pp = pick('pipelineModelParallelSize', '--pipeline-model-parallel-size', 'pipeline.stages') ?? 1;
  const virtual = pick('virtualPipelineModelParallelSize', '--virtual-pipeline-model-parallel-size', 'pipeline.virtual_stages') ?? 1;
  const recompute = pick('recomputeGranularity', '--recompute-granularity', 'activation_checkpointing.granularity') ?? (pp > 1 ? 'full' : 'none');
  if (!['none', 'selective', 'full'].includes(recompute)) throw new MeshError(`--recompute-granularity must be none, selective or full, got '${recompute}'`);
  const sched = pick('pipelineSchedule', '--pipeline-schedule', 'pipeline.schedule') ?? (virtual > 1 ? 'interleaved' : '1f1b');
  if (!['gpipe', '1f1b', 'interleaved'].includes(sched)) throw new MeshError(`the pipeline schedule must be gpipe, 1f1b or interleaved, got '${sched}'`);
  if (sched === 'gpipe' && virtual > 1) throw new MeshError(`the gpipe schedule has one model chunk per rank; --virtual-pipeline-model-parallel-size ${virtual} needs the interleaved schedule`);
  for (const [name, v] of [['--tensor-model-parallel-size', tp], ['--pipeline-model-parallel-size', pp]] as const) {
    if (!Number.isInteger(v) || v < 1) throw new MeshError(`${name} must be a positive integer, got ${v}`);
  }
  if (c.world % (tp * pp) !== 0) throw new MeshError(`world size ${c.world} is not divisible by tp ${tp} x pp ${pp} = ${tp * pp}: dp x pp x tp must equal the world size (dp = world / (tp x pp))`);
  const layout: ParallelLayout = {
    mesh: { dp: c.world / (tp * pp), pp, tp },
    virtual,
    split: fromConfig.partition,
    sequenceParallel: pick('sequenceParallel', '--sequence-parallel', 'tensor_parallel.sequence_parallel') ?? false,
    recompute: recompute as Recompute,
    schedule: sched as ScheduleKind,
  };
  return { layout, stageLayers: checkLayout(layout, { ...c, microBatches: c.microBatches(layout.mesh.dp) }) };
}
