// The manifest of a universal checkpoint: one JSON file that says how every tensor of a run
// was partitioned when it was saved, so any layout can load it. Each rank wrote one shard file
// (rank-RRRRR.safetensors) holding, for every tensor piece it owned, the three fp32 states
// (param, exp_avg, exp_avg_sq) under "<state>/<tensor name>". The manifest records:
//   - the run and save identity (every shard file carries both in its header metadata, so a
//     shard of another run or save is refused even when someone rewrote the checksums);
//   - the layout (dp, tp, pp, ZeRO stage, world size) and each shard file's rank and coordinates;
//   - per tensor: full shape, dtype, tp split (kind, axis, parts), pipeline stage, and the
//     pieces: which file holds which element range [start, end) of which tp rank's shard
//     (the dp / ZeRO flat partition is these ranges);
//   - size and sha256 of every file (atomic_dir.ts's manifest fields).
// checkManifest validates all of it before a byte of tensor data is read.
import { elementCount } from './safetensors.js';
import type { FileDigest } from './atomic_dir.js';
import { parseTpSplit, tpShardShape, type TpSplit } from './tp-split.js';

export const UNIVERSAL_FORMAT = 'atscale-universal-checkpoint';
export const STATES = ['param', 'exp_avg', 'exp_avg_sq'] as const;
export type StateName = (typeof STATES)[number];

export interface UniversalLayout {
  dp: number;
  tp: number;
  pp: number;
  zero: number;
  world: number;
}

export interface ShardInfo {
  rank: number;
  dp: number;
  tp: number;
  pp: number;
}

export interface TensorPiece {
  file: string;
  /** Which tp rank's shard the range is of (0 for replicated tensors). */
  tpRank: number;
  /** Elements [start, end) of that tp shard, flattened row-major. */
  start: number;
  end: number;
}

export interface UniversalTensor {
  shape: number[];
  /** The training dtype's: F32, or F64 for a run trained in float64. */
  dtype: 'F32' | 'F64';
  tp: TpSplit;
  /** Pipeline stage (pp coordinate) that held it; a tied tensor is saved by the first. */
  stage: number;
  pieces: TensorPiece[];
}

export interface UniversalManifest {
  format: typeof UNIVERSAL_FORMAT;
  version: 1;
  run: string;
  save: string;
  layout: UniversalLayout;
  states: StateName[];
  shards: Record<string, ShardInfo>;
  /** In flat-layout order. */
  tensors: Record<string, UniversalTensor>;
  files: Record<string, FileDigest>;
}

const pad = (n: number): string => String(n).padStart(5, '0');
export const shardFileName = (rank: number): string => `rank-${pad(rank)}.safetensors`;
export const SHARD_FILE_RE = /^rank-\d{5}\.safetensors$/;
export const stateKey = (state: StateName, name: string): string => `${state}/${name}`;

/** Global rank of mesh coordinates: tp innermost, then dp, then pp (engine/mesh/layout.ts's order). */
export function meshRank(l: { dp: number; tp: number }, c: { dp: number; tp: number; pp: number }): number {
  return (c.pp * l.dp + c.dp) * l.tp + c.tp;
}

const posInt = (x: unknown): x is number => Number.isInteger(x) && (x as number) >= 1;
const natural = (x: unknown): x is number => Number.isInteger(x) && (x as number) >= 0;

/** The layout arithmetic, with the numbers in the message. */
export function checkLayoutNumbers(l: UniversalLayout, where: string): void {
  for (const k of ['dp', 'tp', 'pp', 'world'] as const) if (!posInt(l[k])) throw new Error(`${where}: layout ${k} must be a positive integer, got ${JSON.stringify(l[k])}`);
  if (!(natural(l.zero) && l.zero <= 3)) throw new Error(`${where}: layout zero must be a ZeRO stage 0-3, got ${JSON.stringify(l.zero)}`);
  if (l.dp * l.tp * l.pp !== l.world) throw new Error(`${where}: layout dp ${l.dp} x tp ${l.tp} x pp ${l.pp} = ${l.dp * l.tp * l.pp}, but world is ${l.world}`);
}

/** Validates a parsed manifest (structure, layout arithmetic, every piece's range and that
 *  the pieces of each tp shard cover it exactly once). Throws naming `where` and the field. */
export function checkManifest(raw: unknown, where: string): UniversalManifest {
  const m = raw as UniversalManifest;
  if (typeof m !== 'object' || m === null || Array.isArray(m)) throw new Error(`${where}: must be a JSON object`);
  if (m.format !== UNIVERSAL_FORMAT || m.version !== 1) throw new Error(`${where}: not an ${UNIVERSAL_FORMAT} version 1 manifest (format ${JSON.stringify(m.format)}, version ${JSON.stringify(m.version)})`);
  for (const k of ['run', 'save'] as const) if (typeof m[k] !== 'string' || !/^[0-9a-z-]{1,64}$/.test(m[k])) throw new Error(`${where}: ${k} id must be a short lowercase string, got ${JSON.stringify(m[k])}`);
  if (typeof m.layout !== 'object' || m.layout === null) throw new Error(`${where}: layout is missing`);
  checkLayoutNumbers(m.layout, where);
  const { layout } = m;
  if (JSON.stringify(m.states) !== JSON.stringify(STATES)) throw new Error(`${where}: states must be ${JSON.stringify(STATES)}, got ${JSON.stringify(m.states)}`);
  if (typeof m.files !== 'object' || m.files === null) throw new Error(`${where}: files (sizes and sha256) are missing`);
  for (const [f, d] of Object.entries(m.files)) {
    if (typeof d !== 'object' || d === null || !natural(d.bytes) || typeof d.sha256 !== 'string' || !/^[0-9a-f]{64}$/.test(d.sha256)) throw new Error(`${where}: files.${f} must be {bytes, sha256}, got ${JSON.stringify(d)}`);
  }
  if (typeof m.shards !== 'object' || m.shards === null) throw new Error(`${where}: shards are missing`);
  const files = Object.keys(m.shards);
  if (files.length !== layout.world) throw new Error(`${where}: lists ${files.length} shard file(s) but the layout's world is ${layout.world}`);
  const seen = new Set<number>();
  for (const [file, s] of Object.entries(m.shards)) {
    if (!SHARD_FILE_RE.test(file)) throw new Error(`${where}: shard file name ${JSON.stringify(file)} is not rank-RRRRR.safetensors`);
    if (!m.files[file]) throw new Error(`${where}: shard ${file} has no size and sha256 in files`);
    if (typeof s !== 'object' || s === null || !natural(s.rank) || s.rank >= layout.world) throw new Error(`${where}: shard ${file} has rank ${JSON.stringify(s?.rank)}, outside [0, ${layout.world})`);
    if (file !== shardFileName(s.rank)) throw new Error(`${where}: shard ${file} says rank ${s.rank}, whose file is ${shardFileName(s.rank)}`);
    if (seen.has(s.rank)) throw new Error(`${where}: rank ${s.rank} has two shard files`);
    seen.add(s.rank);
    const ok = natural(s.dp) && natural(s.tp) && natural(s.pp) && s.dp < layout.dp && s.tp < layout.tp && s.pp < layout.pp && meshRank(layout, s) === s.rank;
    if (!ok) throw new Error(`${where}: shard ${file}: coordinates dp ${s.dp}, tp ${s.tp}, pp ${s.pp} are not those of rank ${s.rank} in dp ${layout.dp} x tp ${layout.tp} x pp ${layout.pp}`);
  }
  if (typeof m.tensors !== 'object' || m.tensors === null || Object.keys(m.tensors).length === 0) throw new Error(`${where}: tensors are missing`);
  for (const [name, t] of Object.entries(m.tensors)) {
    const at = `${where}: tensor "${name}"`;
    if (typeof t !== 'object' || t === null) throw new Error(`${at} must be an object`);
    if (t.dtype !== 'F32' && t.dtype !== 'F64') throw new Error(`${at} has dtype ${JSON.stringify(t.dtype)}; universal checkpoints hold the training dtype's state (F32, or F64 for a float64 run) only, and a tensor is never reinterpreted`);
    if (!Array.isArray(t.shape) || t.shape.length === 0 || !t.shape.every(posInt)) throw new Error(`${at}: shape ${JSON.stringify(t.shape)} must be positive integers`);
    t.tp = parseTpSplit(t.tp, at);
    if (!(natural(t.stage) && t.stage < layout.pp)) throw new Error(`${at}: stage ${JSON.stringify(t.stage)} is outside [0, pp ${layout.pp})`);
    const tpRanks = t.tp.kind === 'replicated' ? 1 : layout.tp;
    let shardElems: number;
    try {
      shardElems = elementCount(tpShardShape(name, t.shape, t.tp, layout.tp));
    } catch (e) {
      throw new Error(`${where}: ${(e as Error).message}`);
    }
    if (!Array.isArray(t.pieces)) throw new Error(`${at}: pieces must be a list`);
    const byTp: TensorPiece[][] = Array.from({ length: tpRanks }, () => []);
    for (const p of t.pieces) {
      if (typeof p !== 'object' || p === null || !m.shards[p.file]) throw new Error(`${at}: a piece names file ${JSON.stringify(p?.file)}, which is not one of the shards`);
      if (!(natural(p.tpRank) && p.tpRank < tpRanks)) throw new Error(`${at}: piece in ${p.file} is of tp rank ${JSON.stringify(p.tpRank)}, outside [0, ${tpRanks})${tpRanks === 1 ? ' (the tensor is not tp-split)' : ''}`);
      if (t.tp.kind !== 'replicated' && m.shards[p.file]!.tp !== p.tpRank) throw new Error(`${at}: piece in ${p.file} is of tp rank ${p.tpRank}, but that file was written by tp rank ${m.shards[p.file]!.tp}`);
      if (!(natural(p.start) && natural(p.end) && p.start < p.end && p.end <= shardElems)) throw new Error(`${at}: piece in ${p.file} has range [${p.start}, ${p.end}), outside the ${shardElems} elements of one tp shard of [${t.shape.join(', ')}]`);
      byTp[p.tpRank]!.push(p);
    }
    byTp.forEach((ps, r) => {
      ps.sort((a, b) => a.start - b.start);
      let upTo = 0;
      for (const p of ps) {
        if (p.start !== upTo) throw new Error(`${at}: tp shard ${r}: ${p.start > upTo ? `elements [${upTo}, ${p.start}) are in no shard file` : `elements from ${p.start} are in two shard files (${p.file} and another)`}`);
        upTo = p.end;
      }
      if (upTo !== shardElems) throw new Error(`${at}: tp shard ${r}: the shard files hold [0, ${upTo}) of its ${shardElems} elements`);
    });
  }
  return m;
}
