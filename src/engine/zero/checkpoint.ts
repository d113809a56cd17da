// ZeRO checkpoints are universal checkpoints (checkpoint/universal-*.ts): every rank writes the
// params, exp_avg and exp_avg_sq of the flat ranges it owns (its chunk of every piece; with
// stage 0, where every rank holds everything, an equal share of the buffer so the writing is
// spread), and rank 0 commits the manifest. Nothing is gathered. An asynchronous save writes the
// same pieces, snapshotted (engine/universal/async-save.ts). Loading reads the full state
// from a universal checkpoint of any layout or a plain one, and takes this rank's shard, so a
// run resumes with another stage or number of ranks; older sharded checkpoints still load.
import { chunkRange } from '../../dist/index.js';
import { floatTensor, isShardedCheckpoint, ShardedCheckpoint } from '../../checkpoint/index.js';
import type { ZeroStep } from '../step/zero-base.js';
import { piecesOf, readFullState, tensorInfos, together, type FullState, type HeldRange, type UniversalSave } from '../universal/state.js';

const LEGACY_META_KEY = 'atscale_zero';

/** What this rank writes of a universal save (views of its live shard buffers; collective: the
 *  save's ids are agreed on). save() writes it at once, an asynchronous save snapshots it. */
export async function zeroUniversalSave(t: ZeroStep, dir: string, meta: Record<string, unknown>, files: Record<string, string>): Promise<UniversalSave> {
  const { plan, m, v, paramChunk } = t.state();
  const layout = t.layout;
  const ranges: HeldRange[] = [];
  if (t.stage === 0) {
    const [lo, hi] = chunkRange(layout.size, t.world, t.rank);
    const params = paramChunk({ offset: 0, size: layout.size, chunkStart: 0, chunkSize: layout.size, shardOffset: 0 });
    ranges.push({ lo, hi, param: params.subarray(lo, hi), m: m.subarray(lo, hi), v: v.subarray(lo, hi) });
  } else {
    for (const p of plan.pieces) {
      if (p.chunkSize === 0) continue;
      const at = (b: Float32Array) => b.subarray(p.shardOffset, p.shardOffset + p.chunkSize);
      ranges.push({ lo: p.chunkStart, hi: p.chunkStart + p.chunkSize, param: paramChunk(p), m: at(m), v: at(v) });
    }
  }
  const pieces = piecesOf(layout.slots, ranges, () => 0);
  return {
    dir,
    layout: { dp: t.world, tp: 1, pp: 1, zero: t.stage, world: t.world },
    coords: { rank: t.rank, dp: t.rank, tp: 0, pp: 0 },
    ids: await t.identity.next(t.pg),
    pieces,
    tensors: tensorInfos(t.model, layout, new Set(pieces.map((p) => p.name)), () => 0),
    order: layout.slots.map((s) => s.name),
    meta,
    files,
  };
}

/** The full state of an older sharded ZeRO checkpoint (flat buffers by piece). */
function readLegacySharded(t: ZeroStep, dir: string): FullState {
  const n = t.layout.size;
  const [params, m, v] = [new Float32Array(n), new Float32Array(n), new Float32Array(n)];
  const ck = new ShardedCheckpoint(dir);
  const z = ck.meta[LEGACY_META_KEY] as { pieces: [number, number][] } | undefined;
  if (!z) throw new Error(`checkpoint ${dir} has no ${LEGACY_META_KEY} entry in its meta: it was not written by a ZeRO trainer`);
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
  const { [LEGACY_META_KEY]: _zero, ...loopMeta } = ck.meta;
  return { dtype: 'float32', params, m, v, meta: loopMeta, files: ck.files };
}

export async function loadZeroCheckpoint(t: ZeroStep, dir: string): Promise<{ meta: Record<string, unknown>; files: Record<string, string> }> {
  // Read and checked on every rank before any buffer changes; if one rank fails, all do.
  const st = await together(t.pg, 'read the checkpoint', () => (isShardedCheckpoint(dir) ? readLegacySharded(t, dir) : readFullState(dir, t.layout, t.model)));
  // ZeRO over dp alone trains in float32 only (train refuses --dtype float64 with it).
  if (st.dtype !== 'float32') throw new Error(`checkpoint ${dir} holds float64 state (trained with --dtype float64); ZeRO over the data-parallel axis alone trains in float32 only: resume it with --dtype float64 on one process or a tp/pp layout`);
  const { plan, m: mShard, v: vShard, setParams } = t.state();
  setParams(st.params as Float32Array);
  plan.gatherShard(st.m as Float32Array, mShard);
  plan.gatherShard(st.v as Float32Array, vShard);
  if (st.run) t.identity.run = st.run;
  return { meta: st.meta, files: st.files };
}
