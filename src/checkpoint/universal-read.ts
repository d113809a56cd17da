// Reading a universal checkpoint. Opening one checks the manifest (universal-manifest.ts),
// that every listed file is present with its size, that no stray shard file lies beside them,
// and the small files (meta.json, tokenizer.json) byte for byte. A shard file is read only when
// a tensor piece in it is asked for, and then verified in full before any value is used: size
// and sha256, the run, save and rank in its header, and exactly the entries the manifest gives
// it (F32, one per state and piece, of the piece's length). So a rank reads only the files
// holding what its layout needs, and a bad file is refused before anything is loaded.
import { allocFloat, type FloatArray } from '../ir/dtype.js';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { committedDir, sha256, MANIFEST } from './atomic_dir.js';
import { parseSafetensors, type TensorEntry } from './safetensors.js';
import { tpJoinTensor, tpShardShape, tpSplitTensor } from './tp-split.js';
import { checkManifest, SHARD_FILE_RE, stateKey, STATES, UNIVERSAL_FORMAT, type StateName, type TensorPiece, type UniversalManifest } from './universal-manifest.js';
import { UNIVERSAL_META } from './universal-write.js';

/** Whether DIR (or its committed DIR.prev) holds a universal checkpoint (even a damaged one:
 *  its manifest names the format, or shard files lie in it). */
export function isUniversalCheckpoint(dir: string): boolean {
  const d = committedDir(resolve(dir));
  if (!existsSync(d)) return false;
  const m = join(d, MANIFEST);
  if (existsSync(m) && readFileSync(m, 'utf8').includes(UNIVERSAL_FORMAT)) return true;
  return readdirSync(d).some((n) => SHARD_FILE_RE.test(n));
}

export class UniversalCheckpoint {
  readonly dir: string;
  readonly manifest: UniversalManifest;
  readonly meta: Record<string, unknown>;
  readonly files: Record<string, string> = {};
  /** Shard files read so far (each once). */
  readonly opened = new Map<string, Record<string, TensorEntry>>();
  private readonly piecesOf = new Map<string, { name: string; piece: TensorPiece }[]>();

  constructor(dir: string) {
    this.dir = dir = committedDir(resolve(dir));
    if (!existsSync(dir)) throw new Error(`universal checkpoint ${dir} not found`);
    const mpath = join(dir, MANIFEST);
    if (!existsSync(mpath)) throw new Error(`universal checkpoint ${dir} is incomplete: ${MANIFEST} is missing (it is written last, so the save did not finish)`);
    let raw: unknown;
    try {
      raw = JSON.parse(readFileSync(mpath, 'utf8'));
    } catch (e) {
      throw new Error(`${mpath} is not valid JSON (${(e as Error).message}); the checkpoint is damaged`);
    }
    this.manifest = checkManifest(raw, mpath);
    const m = this.manifest;
    for (const [file, d] of Object.entries(m.files)) {
      if (!/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(file)) throw new Error(`${mpath}: file name ${JSON.stringify(file)} must be a plain file name`);
      const path = join(dir, file);
      if (!existsSync(path)) throw new Error(`universal checkpoint ${dir}: ${file} is listed in ${MANIFEST} but missing; refusing to load`);
      const size = statSync(path).size;
      if (size !== d.bytes) throw new Error(`universal checkpoint ${dir}: ${file} has ${size} bytes but ${MANIFEST} says ${d.bytes}; the file is ${size < d.bytes ? 'truncated' : 'damaged'}, refusing to load`);
    }
    for (const name of readdirSync(dir)) {
      if (SHARD_FILE_RE.test(name) && !m.shards[name]) throw new Error(`universal checkpoint ${dir}: ${name} lies in the directory but is not a shard in ${MANIFEST} (a shard of another save or layout?); refusing to load`);
    }
    for (const name of Object.keys(m.files)) {
      if (m.shards[name]) continue;
      this.files[name] = this.verified(name).toString('utf8');
    }
    if (this.files[UNIVERSAL_META] === undefined) throw new Error(`universal checkpoint ${dir}: ${MANIFEST} does not list ${UNIVERSAL_META}; not a complete checkpoint`);
    let meta: unknown;
    try {
      meta = JSON.parse(this.files[UNIVERSAL_META]!);
    } catch (e) {
      throw new Error(`universal checkpoint ${dir}: ${UNIVERSAL_META} is not valid JSON (${(e as Error).message})`);
    }
    delete this.files[UNIVERSAL_META];
    this.meta = meta as Record<string, unknown>;
    for (const [name, t] of Object.entries(m.tensors)) {
      for (const piece of t.pieces) {
        const list = this.piecesOf.get(piece.file) ?? [];
        list.push({ name, piece });
        this.piecesOf.set(piece.file, list);
      }
    }
  }

  /** A file's bytes, checked against its size and sha256 in the manifest. */
  private verified(file: string): Buffer {
    const d = this.manifest.files[file]!;
    const data = readFileSync(join(this.dir, file));
    if (data.length !== d.bytes) throw new Error(`universal checkpoint ${this.dir}: ${file} has ${data.length} bytes but ${MANIFEST} says ${d.bytes}; refusing to load`);
    if (sha256(data) !== d.sha256) throw new Error(`universal checkpoint ${this.dir}: ${file} does not match its sha256 in ${MANIFEST}; the file was modified or damaged, refusing to load`);
    return data;
  }

  /** A shard file's entries, verified on first use. */
  private shard(file: string): Record<string, TensorEntry> {
    const done = this.opened.get(file);
    if (done) return done;
    const path = join(this.dir, file);
    const { tensors, metadata } = parseSafetensors(this.verified(file), path);
    const m = this.manifest;
    const rank = String(m.shards[file]!.rank);
    const who = { run: metadata['atscale.run'], save: metadata['atscale.save'], rank: metadata['atscale.rank'] };
    if (who.run !== m.run) throw new Error(`${path}: shard of run ${JSON.stringify(who.run)}, but ${MANIFEST} is of run ${JSON.stringify(m.run)}; shards of another run are refused`);
    if (who.save !== m.save) throw new Error(`${path}: shard of save ${JSON.stringify(who.save)}, but ${MANIFEST} is of save ${JSON.stringify(m.save)} of the same run; shards of different saves are never mixed`);
    if (who.rank !== rank) throw new Error(`${path}: shard written by rank ${JSON.stringify(who.rank)}, but ${MANIFEST} gives this file to rank ${rank} (swapped or renamed shard files?)`);
    const expected = new Set<string>();
    for (const { name, piece } of this.piecesOf.get(file) ?? []) {
      for (const s of STATES) {
        const key = stateKey(s, name);
        expected.add(key);
        const t = tensors[key];
        if (!t) throw new Error(`${path}: has no "${key}", which ${MANIFEST} places in it`);
        const want = m.tensors[name]!.dtype;
        if (t.dtype !== want) throw new Error(`${path}: "${key}" has dtype ${t.dtype}, but ${MANIFEST} says ${want}; refusing to reinterpret it`);
        const n = piece.end - piece.start;
        if (t.shape.length !== 1 || t.shape[0] !== n) throw new Error(`${path}: "${key}" has shape [${t.shape.join(', ')}], but ${MANIFEST} gives it range [${piece.start}, ${piece.end}) = [${n}] values`);
      }
    }
    const extra = Object.keys(tensors).filter((k) => !expected.has(k));
    if (extra.length) throw new Error(`${path}: holds ${extra.map((k) => `"${k}"`).join(', ')}, which ${MANIFEST} does not place in it`);
    this.opened.set(file, tensors);
    return tensors;
  }

  private tensor(name: string) {
    const t = this.manifest.tensors[name];
    if (!t) throw new Error(`universal checkpoint ${this.dir}: no tensor "${name}" in ${MANIFEST}`);
    return t;
  }

  /** Tp shard r (of the saved tp degree) of a tensor's state, assembled from its pieces. */
  readTpShard(name: string, state: StateName, r: number): FloatArray {
    const t = this.tensor(name);
    const shape = tpShardShape(name, t.shape, t.tp, this.manifest.layout.tp);
    const out = allocFloat(t.dtype === 'F64' ? 'float64' : 'float32', shape.reduce((a, b) => a * b, 1));
    for (const p of t.pieces) if (p.tpRank === r) out.set(this.shard(p.file)[stateKey(state, name)]!.data as FloatArray, p.start);
    return out;
  }

  /** The whole tensor (tp shards joined). */
  readFull(name: string, state: StateName): FloatArray {
    const t = this.tensor(name);
    const n = t.tp.kind === 'replicated' ? 1 : this.manifest.layout.tp;
    return tpJoinTensor(name, Array.from({ length: n }, (_, r) => this.readTpShard(name, state, r)), t.shape, t.tp);
  }

  /** The tensor as tp rank `rank` of a `tp`-way layout holds it: straight from the pieces when
   *  the saved layout has the same tp degree, else joined and split again. */
  readFor(name: string, state: StateName, tp: number, rank: number): FloatArray {
    const t = this.tensor(name);
    if (t.tp.kind === 'replicated') return this.readTpShard(name, state, 0);
    if (tp === this.manifest.layout.tp) return this.readTpShard(name, state, rank);
    return tpSplitTensor(name, this.readFull(name, state), t.shape, t.tp, tp, rank);
  }
}
