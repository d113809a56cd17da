// Sharded checkpoints for data-parallel / ZeRO training. Each rank saves its own piece:
//   - chunks of flat buffers (ZeRO keeps each parameter/moment buffer as one flat array split
//     into contiguous, possibly uneven, per-rank ranges [start, end)), and
//   - whole tensors it owns (e.g. rank 0 saves the replicated ones).
// A tensor inside a flat buffer is described by the layout {flat, offset, shape}, so it can be
// cut back out of the reassembled buffer whatever the number of ranks that saved it.
//
// Protocol: every rank calls saveShardedCheckpoint(dir, rank, worldSize, saveId, part); after a
// barrier, exactly one rank calls finalizeShardedCheckpoint(dir, worldSize, saveId), which checks
// that the pieces fit together, writes index.json and the manifest, and commits the directory
// atomically. Ranks must share the file system holding `dir`.

import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { checkFileName, commitDirectory, readVerified, writeFileSynced, type FileDigest, committedDir } from './atomic_dir.js';
import { isUniversalCheckpoint, UniversalCheckpoint } from './universal-read.js';
import { DTYPES, elementCount, parseSafetensors, writeSafetensorsFile, type Dtype, type TensorEntry, type TypedArray } from './safetensors.js';

export const SHARDED_FORMAT = 'atscale-sharded-checkpoint';
const INDEX_FILE = 'index.json';
const META_FILE = 'meta.json';
const FLAT_PREFIX = 'flat:';

/** This rank's elements [start, start + data.length) of a flat buffer of totalLength elements. */
export interface FlatShard {
  dtype: Dtype;
  totalLength: number;
  start: number;
  data: TypedArray;
}

/** Where a tensor lives inside a flat buffer (offset and size in elements). */
export interface FlatSlot {
  flat: string;
  offset: number;
  shape: number[];
}

export interface ShardPart {
  flats?: Record<string, FlatShard>;
  /** Tensor name -> slot in a flat buffer. Every rank that passes one must pass the same. */
  layout?: Record<string, FlatSlot>;
  /** Whole tensors owned by this rank. */
  tensors?: Record<string, TensorEntry>;
  /** Checkpoint-wide JSON and text files; pass them on one rank only (usually 0). */
  meta?: object;
  files?: Record<string, string>;
}

export interface ShardedIndex {
  format: typeof SHARDED_FORMAT;
  version: 1;
  worldSize: number;
  /** rank -> safetensors file holding that rank's pieces. */
  files: Record<string, string>;
  flats: Record<string, { dtype: Dtype; totalLength: number; chunks: { rank: number; start: number; end: number }[] }>;
  tensors: Record<string, { dtype: Dtype; shape: number[] } & ({ flat: string; range: [number, number]; ranks: number[] } | { rank: number })>;
}

interface PartRecord {
  rank: number;
  worldSize: number;
  saveId: string;
  file: string;
  digest: FileDigest;
  flats: Record<string, { dtype: Dtype; totalLength: number; start: number; end: number }>;
  tensors: Record<string, { dtype: Dtype; shape: number[] }>;
  layout?: Record<string, FlatSlot>;
  meta?: object;
  files?: Record<string, string>;
}

const pad = (n: number): string => String(n).padStart(5, '0');
const stagingDir = (dir: string, saveId: string): string => `${resolve(dir)}.staging-${saveId}`;
const rankFile = (rank: number, world: number): string => `rank-${pad(rank)}-of-${pad(world)}.safetensors`;
const partFile = (rank: number, world: number): string => `rank-${pad(rank)}-of-${pad(world)}.json`;

function checkRank(rank: number, worldSize: number): void {
  if (!Number.isInteger(worldSize) || worldSize < 1) throw new Error(`world size must be a positive integer, got ${worldSize}`);
  if (!Number.isInteger(rank) || rank < 0 || rank >= worldSize) throw new Error(`rank must be an integer in [0, ${worldSize}), got ${rank}`);
}

/** Writes this rank's piece into the shared staging directory. `saveId` (e.g. the step) must be
 *  the same on every rank and unique per save, so pieces of different saves never mix. */
export function saveShardedCheckpoint(dir: string, rank: number, worldSize: number, saveId: string | number, part: ShardPart): void {
  checkRank(rank, worldSize);
  const id = String(saveId);
  checkFileName(id, 'saveId');
  const staging = stagingDir(dir, id);
  mkdirSync(staging, { recursive: true });
  const tensors: Record<string, TensorEntry> = {};
  const record: PartRecord = { rank, worldSize, saveId: id, file: rankFile(rank, worldSize), digest: { bytes: 0, sha256: '' }, flats: {}, tensors: {} };
  for (const [name, f] of Object.entries(part.flats ?? {})) {
    if (!DTYPES[f.dtype]) throw new Error(`flat buffer "${name}": unknown dtype ${JSON.stringify(f.dtype)}`);
    const end = f.start + f.data.length;
    if (!Number.isInteger(f.start) || f.start < 0 || end > f.totalLength) {
      throw new Error(`flat buffer "${name}" on rank ${rank}: range [${f.start}, ${end}) is outside [0, ${f.totalLength})`);
    }
    tensors[FLAT_PREFIX + name] = { dtype: f.dtype, shape: [f.data.length], data: f.data };
    record.flats[name] = { dtype: f.dtype, totalLength: f.totalLength, start: f.start, end };
  }
  for (const [name, t] of Object.entries(part.tensors ?? {})) {
    if (name.startsWith(FLAT_PREFIX)) throw new Error(`tensor name "${name}" may not start with "${FLAT_PREFIX}"`);
    tensors[name] = t;
    record.tensors[name] = { dtype: t.dtype, shape: t.shape };
  }
  if (part.layout) record.layout = part.layout;
  if (part.meta) record.meta = part.meta;
  if (part.files) record.files = part.files;
  record.digest = writeSafetensorsFile(join(staging, record.file), tensors);
  // The part record goes last: its presence means this rank's file is complete.
  writeFileSynced(join(staging, partFile(rank, worldSize)), JSON.stringify(record));
}

/** Checks that all ranks' pieces fit together, writes index.json, meta.json, files and the
 *  manifest, and commits the checkpoint to `dir` atomically. Call on one rank after a barrier. */
export function finalizeShardedCheckpoint(dir: string, worldSize: number, saveId: string | number): ShardedIndex {
  checkRank(0, worldSize);
  const id = String(saveId);
  const staging = stagingDir(dir, id);
  const parts: PartRecord[] = [];
  const missing: number[] = [];
  for (let r = 0; r < worldSize; r++) {
    const p = join(staging, partFile(r, worldSize));
    if (!existsSync(p)) missing.push(r);
    else parts.push(JSON.parse(readFileSync(p, 'utf8')) as PartRecord);
  }
  if (missing.length) throw new Error(`sharded checkpoint ${dir} (save ${id}): rank(s) ${missing.join(', ')} of ${worldSize} have not written their shard; finalize only after every rank's saveShardedCheckpoint returned`);

  const index: ShardedIndex = { format: SHARDED_FORMAT, version: 1, worldSize, files: {}, flats: {}, tensors: {} };
  let layout: Record<string, FlatSlot> | undefined;
  let meta: object | undefined;
  let files: Record<string, string> = {};
  for (const p of parts) {
    index.files[String(p.rank)] = p.file;
    for (const [name, f] of Object.entries(p.flats)) {
      const flat = (index.flats[name] ??= { dtype: f.dtype, totalLength: f.totalLength, chunks: [] });
      if (flat.dtype !== f.dtype || flat.totalLength !== f.totalLength) throw new Error(`flat buffer "${name}": rank ${p.rank} says ${f.dtype}[${f.totalLength}] but another rank says ${flat.dtype}[${flat.totalLength}]`);
      flat.chunks.push({ rank: p.rank, start: f.start, end: f.end });
    }
    for (const [name, t] of Object.entries(p.tensors)) {
      if (index.tensors[name]) throw new Error(`tensor "${name}" is saved by more than one rank (${(index.tensors[name] as { rank: number }).rank} and ${p.rank})`);
      index.tensors[name] = { dtype: t.dtype, shape: t.shape, rank: p.rank };
    }
    if (p.layout) {
      if (layout && JSON.stringify(layout) !== JSON.stringify(p.layout)) throw new Error(`rank ${p.rank} passed a different flat layout from an earlier rank; every rank must describe the same layout`);
      layout = p.layout;
    }
    if (p.meta) {
      if (meta) throw new Error(`more than one rank passed meta (rank ${p.rank} again); pass meta and files on one rank`);
      meta = p.meta;
      files = p.files ?? {};
    }
  }
  for (const [name, flat] of Object.entries(index.flats)) {
    flat.chunks.sort((a, b) => a.start - b.start);
    let at = 0;
    for (const c of flat.chunks) {
      if (c.start !== at) throw new Error(`flat buffer "${name}": rank ${c.rank}'s chunk starts at ${c.start} but elements ${at < c.start ? `[${at}, ${c.start}) are saved by no rank` : `before ${at} are saved twice`}`);
      at = c.end;
    }
    if (at !== flat.totalLength) throw new Error(`flat buffer "${name}": ranks save [0, ${at}) of ${flat.totalLength} elements`);
  }
  for (const [name, slot] of Object.entries(layout ?? {})) {
    const flat = index.flats[slot.flat];
    if (!flat) throw new Error(`layout of "${name}" names flat buffer "${slot.flat}", which no rank saved`);
    if (index.tensors[name]) throw new Error(`tensor "${name}" is both a whole tensor and a slot in flat buffer "${slot.flat}"`);
    const end = slot.offset + elementCount(slot.shape);
    if (!Number.isInteger(slot.offset) || slot.offset < 0 || end > flat.totalLength) throw new Error(`layout of "${name}": [${slot.offset}, ${end}) is outside flat buffer "${slot.flat}" of ${flat.totalLength} elements`);
    const ranks = flat.chunks.filter((c) => c.start < end && c.end > slot.offset).map((c) => c.rank);
    index.tensors[name] = { dtype: flat.dtype, shape: slot.shape, flat: slot.flat, range: [slot.offset, end], ranks };
  }

  const digests: Record<string, FileDigest> = {};
  for (const p of parts) digests[p.file] = p.digest;
  for (const [name, text] of Object.entries(files)) {
    checkFileName(name, 'checkpoint file name');
    if (name === INDEX_FILE || name === META_FILE || name === 'manifest.json' || name.startsWith('rank-')) throw new Error(`checkpoint file name ${JSON.stringify(name)} is reserved`);
    digests[name] = writeFileSynced(join(staging, name), text);
  }
  digests[INDEX_FILE] = writeFileSynced(join(staging, INDEX_FILE), JSON.stringify(index, null, 1) + '\n');
  digests[META_FILE] = writeFileSynced(join(staging, META_FILE), JSON.stringify(meta ?? {}, null, 1) + '\n');
  for (let r = 0; r < worldSize; r++) rmSync(join(staging, partFile(r, worldSize)));
  commitDirectory(staging, resolve(dir), { format: SHARDED_FORMAT, version: 1, files: digests });
  // Staging directories of abandoned saves of this checkpoint.
  const prefix = `${basename(resolve(dir))}.staging-`;
  for (const name of readdirSync(dirname(resolve(dir)))) if (name.startsWith(prefix)) rmSync(join(dirname(resolve(dir)), name), { recursive: true, force: true });
  return index;
}

/** Whether the checkpoint at dir (or its committed .prev) is a sharded one. */
export function isShardedCheckpoint(dir: string): boolean {
  return existsSync(join(committedDir(resolve(dir)), INDEX_FILE));
}

/** A verified sharded checkpoint: every file's checksum is checked when it is opened. */
export class ShardedCheckpoint {
  readonly index: ShardedIndex;
  readonly meta: Record<string, unknown>;
  readonly files: Record<string, string> = {};
  private readonly shards = new Map<number, Record<string, TensorEntry>>();

  constructor(readonly dir: string) {
    this.dir = dir = committedDir(resolve(dir));
    const { contents } = readVerified(dir, 'sharded checkpoint', SHARDED_FORMAT);
    const text = (name: string): string => {
      const data = contents.get(name);
      if (!data) throw new Error(`sharded checkpoint ${dir}: manifest.json does not list ${name}`);
      return data.toString('utf8');
    };
    const json = (name: string): unknown => {
      try {
        return JSON.parse(text(name));
      } catch (e) {
        throw new Error(`sharded checkpoint ${dir}: ${name} is not valid JSON (${(e as Error).message})`);
      }
    };
    this.index = json(INDEX_FILE) as ShardedIndex;
    this.meta = json(META_FILE) as Record<string, unknown>;
    for (let r = 0; r < this.index.worldSize; r++) {
      const file = this.index.files[String(r)];
      if (!file || !contents.has(file)) throw new Error(`sharded checkpoint ${dir}: the file of rank ${r} is not in manifest.json`);
      this.shards.set(r, parseSafetensors(contents.get(file)!, join(dir, file)).tensors);
    }
    for (const [name, data] of contents) if (name !== INDEX_FILE && name !== META_FILE && !name.startsWith('rank-')) this.files[name] = data.toString('utf8');
  }

  /** Elements [start, end) of a flat buffer, gathered from whichever ranks hold them
   *  (this is also how ZeRO resumes with a different number of ranks). */
  readFlatRange(flat: string, start: number, end: number): TypedArray {
    const f = this.index.flats[flat];
    if (!f) throw new Error(`sharded checkpoint ${this.dir}: no flat buffer "${flat}" (has ${Object.keys(this.index.flats).join(', ') || 'none'})`);
    if (!(Number.isInteger(start) && Number.isInteger(end) && 0 <= start && start <= end && end <= f.totalLength)) throw new Error(`flat buffer "${flat}": range [${start}, ${end}) is outside [0, ${f.totalLength})`);
    const out = new DTYPES[f.dtype].array(end - start);
    for (const c of f.chunks) {
      const lo = Math.max(start, c.start);
      const hi = Math.min(end, c.end);
      if (lo >= hi) continue;
      const stored = this.shards.get(c.rank)?.[FLAT_PREFIX + flat];
      // The index and the rank's file must agree, or the copy below would convert or misplace values.
      if (!stored || stored.dtype !== f.dtype || stored.data.length !== c.end - c.start) {
        throw new Error(`sharded checkpoint ${this.dir}: rank ${c.rank}'s file holds ${stored ? `${stored.dtype}[${stored.data.length}]` : 'nothing'} for flat buffer "${flat}", but index.json says ${f.dtype}[${c.end - c.start}]`);
      }
      const chunk = stored.data;
      (out as Float32Array).set((chunk as Float32Array).subarray(lo - c.start, hi - c.start), lo - start);
    }
    return out;
  }

  readTensor(name: string): TensorEntry {
    const t = this.index.tensors[name];
    if (!t) throw new Error(`sharded checkpoint ${this.dir}: no tensor "${name}"`);
    if ('flat' in t) return { dtype: t.dtype, shape: t.shape, data: this.readFlatRange(t.flat, t.range[0], t.range[1]) };
    return this.shards.get(t.rank)![name]!;
  }
}

/** Merges a sharded or universal checkpoint into one safetensors file holding every named tensor; the meta
 *  JSON goes into the header's __metadata__ under "atscale.meta". Returns the tensor count. */
export function consolidateCheckpoint(dir: string, outFile: string): number {
  // A universal checkpoint gives its parameters (tp shards joined), under the model's names.
  const ckpt = isUniversalCheckpoint(dir) ? new UniversalCheckpoint(dir) : new ShardedCheckpoint(dir);
  const tensors: Record<string, TensorEntry> = {};
  if (ckpt instanceof UniversalCheckpoint) {
    for (const [name, t] of Object.entries(ckpt.manifest.tensors)) tensors[name] = { dtype: 'F32', shape: t.shape, data: ckpt.readFull(name, 'param') };
  } else for (const name of Object.keys(ckpt.index.tensors)) tensors[name] = ckpt.readTensor(name);
  mkdirSync(dirname(resolve(outFile)), { recursive: true });
  const tmp = `${resolve(outFile)}.tmp-${process.pid}`;
  writeSafetensorsFile(tmp, tensors, { format: 'pt', 'atscale.meta': JSON.stringify(ckpt.meta) });
  renameSync(tmp, outFile); // never leave a half-written file under the final name
  return Object.keys(tensors).length;
}
