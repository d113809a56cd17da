// Writing a universal checkpoint. Every rank calls writeUniversalShard with the pieces it owns
// (nothing is gathered); after a barrier, rank 0 calls finalizeUniversal, which reads the
// ranks' small part records, builds and checks the manifest (universal-manifest.ts), writes
// meta.json and the extra files, and commits the directory atomically (atomic_dir.ts: staging
// directory, fsync, DIR -> DIR.prev, staging -> DIR), so the last good checkpoint survives a
// crash at any point. Ranks must share the file system holding `dir`.
import type { FloatArray } from '../ir/dtype.js';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { checkFileName, commitDirectory, writeFileSynced, type FileDigest, type Manifest } from './atomic_dir.js';
import { writeSafetensorsFile, type TensorEntry } from './safetensors.js';
import type { TpSplit } from './tp-split.js';
import { checkManifest, shardFileName, stateKey, STATES, UNIVERSAL_FORMAT, type ShardInfo, type TensorPiece, type UniversalLayout, type UniversalManifest, type UniversalTensor } from './universal-manifest.js';

export const UNIVERSAL_META = 'meta.json';

/** One contiguous range of one tp shard of a tensor, with its three fp32 states. */
export interface OwnedPiece {
  name: string;
  tpRank: number;
  start: number;
  end: number;
  param: FloatArray;
  expAvg: FloatArray;
  expAvgSq: FloatArray;
}

export interface TensorInfo {
  shape: number[];
  tp: TpSplit;
  stage: number;
}

export interface ShardPart {
  run: string;
  save: string;
  coords: ShardInfo;
  pieces: OwnedPiece[];
  /** Full shape, split and stage of every tensor this rank writes a piece of. */
  tensors: Record<string, TensorInfo>;
}

interface PartRecord {
  coords: ShardInfo;
  run: string;
  save: string;
  digest: FileDigest;
  pieces: TensorPiece[];
  tensors: Record<string, TensorInfo>;
}

const stagingDir = (dir: string, save: string): string => `${resolve(dir)}.staging-${save}`;
const recordName = (rank: number): string => shardFileName(rank).replace('.safetensors', '.json');

/** This rank's shard file and part record, in the staging directory of save `part.save`. */
export function writeUniversalShard(dir: string, part: ShardPart): void {
  checkFileName(part.save, 'save id');
  const staging = stagingDir(dir, part.save);
  mkdirSync(staging, { recursive: true });
  const file = shardFileName(part.coords.rank);
  const entries: Record<string, TensorEntry> = {};
  const pieces: TensorPiece[] = [];
  for (const p of part.pieces) {
    const n = p.end - p.start;
    for (const [state, data] of [['param', p.param], ['exp_avg', p.expAvg], ['exp_avg_sq', p.expAvgSq]] as const) {
      if (data.length !== n) throw new Error(`universal shard of rank ${part.coords.rank}: ${state} of "${p.name}" has ${data.length} values for range [${p.start}, ${p.end})`);
      const key = stateKey(state, p.name);
      if (entries[key]) throw new Error(`universal shard of rank ${part.coords.rank}: two pieces of "${p.name}"; a rank saves one contiguous range per tensor`);
      entries[key] = { dtype: data instanceof Float64Array ? 'F64' : 'F32', shape: [n], data };
    }
    if (!part.tensors[p.name]) throw new Error(`universal shard of rank ${part.coords.rank}: no shape and split given for "${p.name}"`);
    pieces.push({ file, tpRank: p.tpRank, start: p.start, end: p.end });
  }
  const metadata = { format: 'pt', 'atscale.run': part.run, 'atscale.save': part.save, 'atscale.rank': String(part.coords.rank) };
  const digest = writeSafetensorsFile(join(staging, file), entries, metadata);
  const names = part.pieces.map((p) => p.name);
  const dtypes = part.pieces.map((p) => (p.param instanceof Float64Array ? 'F64' : 'F32') as 'F32' | 'F64');
  const record: PartRecord & { names: string[]; dtypes: ('F32' | 'F64')[] } = { coords: part.coords, run: part.run, save: part.save, digest, pieces, tensors: part.tensors, names, dtypes };
  // The record goes last: its presence means this rank's shard file is complete.
  writeFileSynced(join(staging, recordName(part.coords.rank)), JSON.stringify(record));
}

export interface FinalizeOptions {
  layout: UniversalLayout;
  run: string;
  save: string;
  /** Every tensor name, in flat-layout order. */
  order: string[];
  meta: object;
  files?: Record<string, string>;
}

/** Builds, checks and commits the manifest once every rank's shard is written (rank 0). */
export function finalizeUniversal(dir: string, o: FinalizeOptions): UniversalManifest {
  const staging = stagingDir(dir, o.save);
  const tensors: Record<string, UniversalTensor> = {};
  for (const name of o.order) tensors[name] = undefined as unknown as UniversalTensor;
  const shards: Record<string, ShardInfo> = {};
  const digests: Record<string, FileDigest> = {};
  const missing: number[] = [];
  for (let r = 0; r < o.layout.world; r++) {
    const path = join(staging, recordName(r));
    if (!existsSync(path)) {
      missing.push(r);
      continue;
    }
    const rec = JSON.parse(readFileSync(path, 'utf8')) as PartRecord & { names: string[]; dtypes?: ('F32' | 'F64')[] };
    if (rec.run !== o.run || rec.save !== o.save) throw new Error(`universal checkpoint ${dir}: rank ${r}'s shard belongs to run ${rec.run} save ${rec.save}, not run ${o.run} save ${o.save}`);
    const file = shardFileName(r);
    // The record is written after its shard, but a shard written by another process (an
    // asynchronous save's writer) is checked to have landed whole before it is published.
    const bytes = existsSync(join(staging, file)) ? statSync(join(staging, file)).size : -1;
    if (bytes !== rec.digest.bytes) throw new Error(`universal checkpoint ${dir} (save ${o.save}): rank ${r}'s shard ${file} has ${bytes < 0 ? 'no file' : `${bytes} bytes`} but its record says ${rec.digest.bytes}; not publishing it`);
    shards[file] = rec.coords;
    digests[file] = rec.digest;
    rec.pieces.forEach((p, i) => {
      const name = rec.names[i]!;
      const info = rec.tensors[name]!;
      if (!(name in tensors)) throw new Error(`universal checkpoint ${dir}: rank ${r} saved "${name}", which is not one of the model's tensors`);
      const dtype = rec.dtypes?.[i] ?? 'F32';
      const t = (tensors[name] ??= { shape: info.shape, dtype, tp: info.tp, stage: info.stage, pieces: [] });
      if (t.dtype !== dtype) throw new Error(`universal checkpoint ${dir}: rank ${r} saved "${name}" as ${dtype}, another rank as ${t.dtype}; every rank must train in the same --dtype`);
      if (JSON.stringify([t.shape, t.tp]) !== JSON.stringify([info.shape, info.tp])) throw new Error(`universal checkpoint ${dir}: rank ${r} describes "${name}" as [${info.shape.join(', ')}] ${JSON.stringify(info.tp)}, another rank as [${t.shape.join(', ')}] ${JSON.stringify(t.tp)}`);
      t.pieces.push(p);
    });
  }
  if (missing.length) throw new Error(`universal checkpoint ${dir} (save ${o.save}): rank(s) ${missing.join(', ')} of ${o.layout.world} have not written their shard; finalize only after every rank's writeUniversalShard returned`);
  const lost = o.order.filter((n) => !tensors[n]);
  if (lost.length) throw new Error(`universal checkpoint ${dir}: no rank saved ${lost.map((n) => `"${n}"`).join(', ')}`);
  for (const [name, text] of Object.entries(o.files ?? {})) {
    checkFileName(name, 'checkpoint file name');
    if (name === UNIVERSAL_META || name === 'manifest.json' || name.startsWith('rank-')) throw new Error(`checkpoint file name ${JSON.stringify(name)} is reserved`);
    digests[name] = writeFileSynced(join(staging, name), text);
  }
  digests[UNIVERSAL_META] = writeFileSynced(join(staging, UNIVERSAL_META), JSON.stringify(o.meta, null, 1) + '\n');
  const manifest: UniversalManifest = { format: UNIVERSAL_FORMAT, version: 1, run: o.run, save: o.save, layout: o.layout, states: [...STATES], shards, tensors, files: digests };
  checkManifest(JSON.parse(JSON.stringify(manifest)), `universal checkpoint ${dir}: manifest being written`);
  for (let r = 0; r < o.layout.world; r++) rmSync(join(staging, recordName(r)));
  commitDirectory(staging, resolve(dir), manifest as unknown as Manifest);
  // Staging directories of abandoned saves of this checkpoint.
  const prefix = `${basename(resolve(dir))}.staging-`;
  for (const name of readdirSync(dirname(resolve(dir)))) if (name.startsWith(prefix)) rmSync(join(dirname(resolve(dir)), name), { recursive: true, force: true });
  return manifest;
}
