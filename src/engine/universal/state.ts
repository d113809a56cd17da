// The engine's side of universal checkpoints (checkpoint/universal-*.ts hold the format): which
// pieces a rank writes, the run and save identity every rank agrees on, the collective save
// (each rank writes its own shard, rank 0 the manifest last), a load that fails on every rank
// together, and the full training state read from any checkpoint a trainer can resume from.
import { allocFloat, type FloatArray, type TrainDType } from '../../ir/dtype.js';
import { randomInt } from 'node:crypto';
import type { ProcessGroup } from '../../dist/index.js';
import {
  finalizeUniversal,
  floatTensor,
  isShardedCheckpoint,
  isUniversalCheckpoint,
  loadCheckpoint,
  UniversalCheckpoint,
  writeUniversalShard,
  type OwnedPiece,
  type ShardInfo,
  type TensorInfo,
  type TpSplit,
  type UniversalLayout,
} from '../../checkpoint/index.js';
import type { LanguageModel } from '../../models/model.js';
import type { FlatLayout } from '../../nn/flat.js';
import { OPT_M, OPT_V } from '../optimizer-names.js';

/** Elements [lo, hi) of a rank's local flat buffer, with the three states (indexed from lo). */
export interface HeldRange {
  lo: number;
  hi: number;
  param: FloatArray;
  m: FloatArray;
  v: FloatArray;
}

/** A tensor's place in a rank's local flat buffer. */
export interface LocalSlot {
  name: string;
  offset: number;
  size: number;
}

/** The pieces of every slot that a held range covers (a contiguous range meets each slot once). */
export function piecesOf(slots: readonly LocalSlot[], ranges: readonly HeldRange[], tpRank: (name: string) => number): OwnedPiece[] {
  const out: OwnedPiece[] = [];
  for (const r of ranges) {
    for (const s of slots) {
      const lo = Math.max(r.lo, s.offset);
      const hi = Math.min(r.hi, s.offset + s.size);
      if (hi <= lo) continue;
      const at = (b: FloatArray) => b.subarray(lo - r.lo, hi - r.lo);
      out.push({ name: s.name, tpRank: tpRank(s.name), start: lo - s.offset, end: hi - s.offset, param: at(r.param), expAvg: at(r.m), expAvgSq: at(r.v) });
    }
  }
  return out;
}

/** Full shape, tp split and stage of each named tensor. */
export function tensorInfos(model: LanguageModel, layout: FlatLayout, names: Iterable<string>, stageOf: (name: string) => number): Record<string, TensorInfo> {
  const out: Record<string, TensorInfo> = {};
  for (const name of names) out[name] = { shape: [...layout.byName.get(name)!.shape], tp: model.tensorParallelSplit(name), stage: stageOf(name) };
  return out;
}

const newId = (prefix: string): string => `${prefix}${randomInt(2 ** 24).toString(36)}${randomInt(2 ** 24).toString(36)}`;

/** The run's identity: drawn at the first save (or adopted from the checkpoint a run resumed
 *  from) and the same on every rank; each save gets a fresh id as well. */
export class RunIdentity {
  run?: string;

  async next(pg: ProcessGroup): Promise<{ run: string; save: string }> {
    // Rank 0 draws; a broadcast shares three 24-bit integers (exact in float32).
    const ids = Float32Array.of(randomInt(2 ** 24), randomInt(2 ** 24), randomInt(2 ** 24));
    await pg.broadcast(ids, 0);
    this.run ??= `r${ids[0]!.toString(36)}${ids[1]!.toString(36)}`;
    return { run: this.run, save: `s${ids[1]!.toString(36)}${ids[2]!.toString(36)}` };
  }
}

export const offlineIds = (run?: string): { run: string; save: string } => ({ run: run ?? newId('r'), save: newId('s') });

export interface UniversalSave {
  dir: string;
  layout: UniversalLayout;
  coords: ShardInfo;
  ids: { run: string; save: string };
  pieces: OwnedPiece[];
  tensors: Record<string, TensorInfo>;
  /** Every tensor of the model in flat-layout order (used on rank 0). */
  order: string[];
  meta: object;
  files: Record<string, string>;
}

/** Every rank writes its shard; rank 0 commits the manifest once all have; nobody returns
 *  before it is committed, and a failure on any rank fails the save on every rank. */
export async function saveUniversal(pg: ProcessGroup, s: UniversalSave): Promise<void> {
  await together(pg, 'write its checkpoint shard', () => writeUniversalShard(s.dir, { run: s.ids.run, save: s.ids.save, coords: s.coords, pieces: s.pieces, tensors: s.tensors }));
  await together(pg, 'commit the checkpoint manifest', () => {
    if (pg.rank === 0) finalizeUniversal(s.dir, { layout: s.layout, run: s.ids.run, save: s.ids.save, order: s.order, meta: s.meta, files: s.files });
  });
}

/** Runs fn on every rank; if it threw anywhere, every rank throws (the failing ones their own
 *  error), so no rank trains on while another could not load or save. */
export async function together<T>(pg: ProcessGroup, what: string, fn: () => T): Promise<T> {
  let result: T | undefined;
  let error: unknown;
  try {
    result = fn();
  } catch (e) {
    error = e;
  }
  const failed = new Float32Array(pg.worldSize);
  if (error !== undefined) failed[pg.rank] = 1;
  await pg.allReduce(failed);
  if (error !== undefined) throw error;
  const who = [...failed].flatMap((f, r) => (f ? [r] : []));
  if (who.length) throw new Error(`rank(s) ${who.join(', ')} could not ${what} (see their error); stopping every rank`);
  return result as T;
}

/** The whole training state, in the model's flat layout. */
export interface FullState {
  /** The dtype the checkpoint holds (F64 tensors: float64; everything else is read as float32). */
  dtype: TrainDType;
  params: FloatArray;
  m: FloatArray;
  v: FloatArray;
  meta: Record<string, unknown>;
  files: Record<string, string>;
  /** The run identity of a universal checkpoint. */
  run?: string;
}

/** Checks that a universal checkpoint holds exactly the model's tensors, with their shapes and
 *  the model's tp splits (a forged split would join the shards into permuted values). */
export function checkUniversalTensors(ck: UniversalCheckpoint, layout: FlatLayout, model: LanguageModel): void {
  const where = `${ck.dir}/manifest.json`;
  const have = ck.manifest.tensors;
  for (const s of layout.slots) {
    const t = have[s.name];
    if (!t) throw new Error(`${where}: has no tensor "${s.name}", which the model needs (was it written for another model config?)`);
    if (t.shape.length !== s.shape.length || t.shape.some((d, i) => d !== s.shape[i])) throw new Error(`${where}: tensor "${s.name}" has shape [${t.shape.join(', ')}] but the model needs [${s.shape.join(', ')}]`);
    const want = model.tensorParallelSplit(s.name);
    const key = (x: TpSplit) => (x.kind === 'replicated' ? 'replicated' : `${x.kind} axis ${x.axis}${(x.parts ?? 1) > 1 ? ` in ${x.parts} parts` : ''}`);
    if (key(t.tp) !== key(want)) throw new Error(`${where}: tensor "${s.name}" is split ${key(t.tp)}, but the model splits it ${key(want)}`);
  }
  const extra = Object.keys(have).filter((n) => !layout.byName.has(n));
  if (extra.length) throw new Error(`${where}: has tensors the model does not: ${extra.join(', ')}`);
}

/** The tensors one rank of a target layout holds: its tp rank of a tp-way split, and the names
 *  of its stage's tensors (default: all). */
export interface UniversalTarget {
  tp: number;
  tpRank: number;
  names?: readonly string[];
}

export interface LoadedUniversal {
  /** Per tensor, as the target rank holds it (its tp shard, or the whole tensor). */
  tensors: Map<string, { param: FloatArray; expAvg: FloatArray; expAvgSq: FloatArray }>;
  meta: Record<string, unknown>;
  files: Record<string, string>;
  run: string;
  layout: UniversalLayout;
  /** The shard files that were opened (only those holding the tensors asked for). */
  opened: string[];
}

/** Loads what one rank of any layout needs from a universal checkpoint of any layout: the
 *  manifest is checked against the model, and only the shard files holding the asked tensors
 *  are read (each verified in full first). Nothing is returned unless everything checked. */
export function loadUniversal(dir: string, model: LanguageModel, layout: FlatLayout, target: UniversalTarget): LoadedUniversal {
  const ck = new UniversalCheckpoint(dir);
  checkUniversalTensors(ck, layout, model);
  const tensors: LoadedUniversal['tensors'] = new Map();
  for (const name of target.names ?? layout.slots.map((s) => s.name)) {
    const read = (state: 'param' | 'exp_avg' | 'exp_avg_sq') => ck.readFor(name, state, target.tp, target.tpRank);
    tensors.set(name, { param: read('param'), expAvg: read('exp_avg'), expAvgSq: read('exp_avg_sq') });
  }
  return { tensors, meta: ck.meta, files: ck.files, run: ck.manifest.run, layout: ck.manifest.layout, opened: [...ck.opened.keys()] };
}

/** Reads the full state from a universal or a plain checkpoint; nothing is returned (so
 *  nothing is loaded) unless every tensor was read and checked. */
export function readFullState(dir: string, layout: FlatLayout, model: LanguageModel): FullState {
  const n = layout.size;
  if (isUniversalCheckpoint(dir)) {
    const u = loadUniversal(dir, model, layout, { tp: 1, tpRank: 0 });
    const dtype: TrainDType = u.tensors.values().next().value?.param instanceof Float64Array ? 'float64' : 'float32';
    const [params, m, v] = [allocFloat(dtype, n), allocFloat(dtype, n), allocFloat(dtype, n)];
    for (const s of layout.slots) {
      const t = u.tensors.get(s.name)!;
      params.set(t.param, s.offset);
      m.set(t.expAvg, s.offset);
      v.set(t.expAvgSq, s.offset);
    }
    return { dtype, params, m, v, meta: u.meta, files: u.files, run: u.run };
  }
  if (isShardedCheckpoint(dir)) throw new Error(`checkpoint ${dir} is an older sharded ZeRO checkpoint; resume it with the same --deepspeed-config under atscale launch (which saves a universal one), or merge it with consolidateCheckpoint`);
  const ck = loadCheckpoint(dir);
  const file = `${ck.dir}/model.safetensors`;
  // A float64 run's checkpoint holds F64 state, kept exact; any other is read as float32.
  const dtype: TrainDType = ck.tensors[OPT_M]?.dtype === 'F64' ? 'float64' : 'float32';
  const [params, m, v] = [allocFloat(dtype, n), allocFloat(dtype, n), allocFloat(dtype, n)];
  const read = (t: (typeof ck.tensors)[string], name: string) => (dtype === 'float64' && t.dtype === 'F64' ? (t.data as Float64Array) : floatTensor(t, name, file));
  const dict: Record<string, { shape: readonly number[]; data: ArrayLike<number> }> = {};
  for (const [name, t] of Object.entries(ck.tensors)) if (name !== OPT_M && name !== OPT_V) dict[name] = { shape: t.shape, data: read(t, name) };
  try {
    layout.loadStateDict(params, dict);
  } catch (e) {
    throw new Error(`${file}: ${(e as Error).message} (was it written for another model config?)`);
  }
  for (const [buf, name] of [[m, OPT_M], [v, OPT_V]] as const) {
    const t = ck.tensors[name];
    if (!t) throw new Error(`checkpoint ${dir} has no optimizer state (${OPT_M}, ${OPT_V}); it cannot resume training`);
    const data = read(t, name);
    if (data.length !== n) throw new Error(`${file}: ${name} has ${data.length} values, the model needs ${n}`);
    buf.set(data);
  }
  return { dtype, params, m, v, meta: ck.meta, files: ck.files };
}
