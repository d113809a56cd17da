// ZeRO checkpoints. Stage 0 (everything replicated): rank 0 writes one ordinary checkpoint.
// Stages 1-3: every rank writes its chunk of each piece of params, exp_avg and exp_avg_sq as
// flat buffers (one file per rank plus an index); the index maps each model parameter name to
// its place, so consolidateCheckpoint() yields one safetensors file with the model's names.
// Loading rebuilds the full buffers from either format and takes this rank's shard, so a run
// may resume with another stage or number of ranks.
import { floatTensor, finalizeShardedCheckpoint, isShardedCheckpoint, loadCheckpoint, saveCheckpoint, saveShardedCheckpoint, ShardedCheckpoint, type FlatSlot, type TensorEntry } from '../../checkpoint/index.js';
import type { ZeroTrainerBase } from './base.js';
import type { SharedSnapshot } from '../trainer.js';
import { OPT_M, OPT_V } from '../local-trainer.js';

const META_KEY = 'atscale_zero';

interface ZeroMeta {
  stage: number;
  world: number;
  /** [offset, size] of every piece (the flats params.K, exp_avg.K, exp_avg_sq.K). */
  pieces: [number, number][];
}

/** A save id that every rank agrees on: rank 0 draws it, a broadcast shares it. */
async function agreedSaveId(t: ZeroTrainerBase): Promise<string> {
  const id = Float32Array.of(Math.floor(Math.random() * 2 ** 24), Math.floor(Math.random() * 2 ** 24));
  await t.pg.broadcast(id, 0);
  return `zero-${id[0]!.toString(36)}-${id[1]!.toString(36)}`;
}

export async function saveZeroCheckpoint(t: ZeroTrainerBase, dir: string, meta: Record<string, unknown>, files: Record<string, string>): Promise<void> {
  const { plan, m, v } = t.state();
  const layout = t.layout;
  const zmeta: ZeroMeta = { stage: t.stage, world: t.world, pieces: plan.pieces.map((p) => [p.offset, p.size]) };
  const fullMeta = { ...meta, [META_KEY]: zmeta };
  if (t.stage === 0) {
    if (t.rank === 0) {
      const params = await t.fullParams();
      const tensors: Record<string, TensorEntry> = {};
      for (const [name, e] of Object.entries(layout.stateDict(params))) tensors[name] = { dtype: 'F32', shape: e.shape, data: e.data };
      tensors[OPT_M] = { dtype: 'F32', shape: [m.length], data: m };
      tensors[OPT_V] = { dtype: 'F32', shape: [v.length], data: v };
      saveCheckpoint(dir, { tensors, meta: fullMeta, files });
    }
    await t.pg.barrier();
    return;
  }
  const saveId = await agreedSaveId(t);
  const { flats, slots } = shardFlats(t, false);
  saveShardedCheckpoint(dir, t.rank, t.world, saveId, { flats, layout: slots, ...(t.rank === 0 ? { meta: fullMeta, files } : {}) });
  await t.pg.barrier();
  if (t.rank === 0) finalizeShardedCheckpoint(dir, t.world, saveId);
  await t.pg.barrier();
}

/** This rank's flats of params, exp_avg and exp_avg_sq (copies when `copy`: a snapshot the
 * training step may not touch), and where each model parameter lies in them. */
function shardFlats(t: ZeroTrainerBase, copy: boolean): { flats: Record<string, { dtype: 'F32'; totalLength: number; start: number; data: Float32Array }>; slots: Record<string, FlatSlot> } {
  const { plan, m, v, paramChunk } = t.state();
  const own = (a: Float32Array) => (copy ? a.slice() : a);
  const flats: Record<string, { dtype: 'F32'; totalLength: number; start: number; data: Float32Array }> = {};
  const slots: Record<string, FlatSlot> = {};
  plan.pieces.forEach((p, k) => {
    const start = p.chunkStart - p.offset;
    const at = (b: Float32Array) => own(b.subarray(p.shardOffset, p.shardOffset + p.chunkSize));
    flats[`params.${k}`] = { dtype: 'F32', totalLength: p.size, start, data: own(paramChunk(p)) };
    flats[`exp_avg.${k}`] = { dtype: 'F32', totalLength: p.size, start, data: at(m) };
    flats[`exp_avg_sq.${k}`] = { dtype: 'F32', totalLength: p.size, start, data: at(v) };
    for (const s of t.layout.slots) if (s.offset >= p.offset && s.offset < p.offset + p.size) slots[s.name] = { flat: `params.${k}`, offset: s.offset - p.offset, shape: [...s.shape] };
  });
  return { flats, slots };
}

/**
 * saveZeroCheckpoint in two halves for the background writer: now, copies of this rank's state
 * (stage 0: rank 0's whole checkpoint; stages 1-3: every rank's part); later, once every rank
 * has written its part, rank 0 finalizes the sharded checkpoint (publish).
 */
export async function snapshotZeroCheckpoint(t: ZeroTrainerBase, dir: string, meta: Record<string, unknown>, files: Record<string, string>): Promise<SharedSnapshot> {
  const { plan, m, v } = t.state();
  const fullMeta = { ...meta, [META_KEY]: { stage: t.stage, world: t.world, pieces: plan.pieces.map((p) => [p.offset, p.size]) } satisfies ZeroMeta };
  const allWritten = async (localDone: boolean) => {
    const notDone = Float32Array.of(localDone ? 0 : 1);
    await t.pg.allReduce(notDone);
    return notDone[0] === 0;
  };
  if (t.stage === 0) {
    if (t.rank !== 0) return { publish: allWritten };
    const tensors: Record<string, TensorEntry> = {};
    for (const [name, e] of Object.entries(t.layout.stateDict(await t.fullParams()))) tensors[name] = { dtype: 'F32', shape: e.shape, data: e.data.slice() };
    tensors[OPT_M] = { dtype: 'F32', shape: [m.length], data: m.slice() };
    tensors[OPT_V] = { dtype: 'F32', shape: [v.length], data: v.slice() };
    return { job: { writer: 'checkpoint', dir, contents: { tensors, meta: fullMeta, files } }, publish: allWritten };
  }
  const saveId = await agreedSaveId(t);
  const { flats, slots } = shardFlats(t, true);
  return {
    job: { writer: 'shard', dir, rank: t.rank, worldSize: t.world, saveId, part: { flats, layout: slots, ...(t.rank === 0 ? { meta: fullMeta, files } : {}) } },
    publish: async (localDone) => {
      const all = await allWritten(localDone);
      if (all && t.rank === 0) finalizeShardedCheckpoint(dir, t.world, saveId);
      return all;
    },
  };
}

export async function loadZeroCheckpoint(t: ZeroTrainerBase, dir: string): Promise<{ meta: Record<string, unknown>; files: Record<string, string> }> {
  const n = t.layout.size;
  const [params, m, v] = [new Float32Array(n), new Float32Array(n), new Float32Array(n)];
  let meta: Record<string, unknown>;
  let files: Record<string, string>;
  if (isShardedCheckpoint(dir)) {
    const ck = new ShardedCheckpoint(dir);
    const z = ck.meta[META_KEY] as ZeroMeta | undefined;
    if (!z) throw new Error(`checkpoint ${dir} has no ${META_KEY} entry in its meta: it was not written by a ZeRO trainer`);
    for (const s of t.layout.slots) {
      const e = ck.readTensor(s.name);
      if (e.shape.length !== s.shape.length || e.shape.some((d, i) => d !== s.shape[i])) throw new Error(`checkpoint ${dir}: parameter '${s.name}' has shape [${e.shape.join(', ')}] but the model needs [${s.shape.join(', ')}]`);
      params.set(floatTensor(e, s.name, dir), s.offset);
    }
    z.pieces.forEach(([offset, size], k) => {
      if (offset + size > n) throw new Error(`checkpoint ${dir}: piece ${k} [${offset}, ${offset + size}) lies outside this model's ${n} parameters`);
      const read = (flat: string) => floatTensor({ dtype: ck.index.flats[flat]?.dtype ?? 'F32', shape: [size], data: ck.readFlatRange(flat, 0, size) }, flat, dir);
      m.set(read(`exp_avg.${k}`), offset);
      v.set(read(`exp_avg_sq.${k}`), offset);
    });
    meta = ck.meta;
    files = ck.files;
  } else {
    const ck = loadCheckpoint(dir);
    const file = `${ck.dir}/model.safetensors`;
    const dict = Object.fromEntries(Object.entries(ck.tensors).filter(([name]) => name !== OPT_M && name !== OPT_V).map(([name, e]) => [name, { shape: e.shape, data: floatTensor(e, name, file) }]));
    try {
      t.layout.loadStateDict(params, dict);
    } catch (e) {
      throw new Error(`${file}: ${(e as Error).message}`);
    }
    for (const [buf, name] of [[m, OPT_M], [v, OPT_V]] as const) {
      const e = ck.tensors[name];
      if (!e || e.data.length !== n) throw new Error(`checkpoint ${dir}: '${name}' is missing or does not have ${n} values`);
      buf.set(floatTensor(e, name, file));
    }
    meta = ck.meta;
    files = ck.files;
  }
  const { plan, m: mShard, v: vShard, setParams } = t.state();
  setParams(params);
  plan.gatherShard(m, mShard);
  plan.gatherShard(v, vShard);
  const { [META_KEY]: _zero, ...loopMeta } = meta;
  return { meta: loopMeta, files };
}
