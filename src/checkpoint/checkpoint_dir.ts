// A training checkpoint as one directory:
//   model.safetensors  every tensor (weights, optimizer moments, ...), names chosen by the caller
//   meta.json          the caller's JSON (step, RNG states, config, ...)
//   <files>            extra text files, e.g. tokenizer.json
//   manifest.json      size and sha256 of each file above, written last
// Saving is atomic (see atomic_dir.ts) and loading verifies every checksum before parsing.

import { existsSync, mkdirSync, readdirSync, rmSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { basename, dirname, join, resolve } from 'node:path';
import { checkFileName, commitDirectory, committedDir, readVerified, writeFileSynced, type FileDigest } from './atomic_dir.js';
import { parseSafetensors, writeSafetensorsFile, type TensorEntry } from './safetensors.js';

export const CHECKPOINT_FORMAT = 'atscale-checkpoint';
const TENSORS_FILE = 'model.safetensors';
const META_FILE = 'meta.json';
const RESERVED = new Set([TENSORS_FILE, META_FILE, 'manifest.json']);

export interface CheckpointContents {
  tensors: Record<string, TensorEntry>;
  /** Any JSON-serializable object. */
  meta: object;
  /** Extra text files by plain file name. */
  files?: Record<string, string>;
}

export interface LoadedCheckpoint {
  tensors: Record<string, TensorEntry>;
  meta: Record<string, unknown>;
  files: Record<string, string>;
  /** The directory actually read: DIR, or DIR.prev when a save crashed mid-rotation. */
  dir: string;
}

/** Removes staging directories that a crashed save of `dir` left behind. */
function removeStaleStaging(dir: string): void {
  const parent = dirname(dir);
  const prefix = `${basename(dir)}.tmp-`;
  if (!existsSync(parent)) return;
  for (const name of readdirSync(parent)) if (name.startsWith(prefix)) rmSync(join(parent, name), { recursive: true, force: true });
}

/** Saves atomically; the previous checkpoint in `dir`, if any, is kept as `dir`.prev. */
export function saveCheckpoint(dir: string, contents: CheckpointContents): void {
  dir = resolve(dir);
  const files = contents.files ?? {};
  for (const name of Object.keys(files)) {
    checkFileName(name, 'checkpoint file name');
    if (RESERVED.has(name)) throw new Error(`checkpoint file name ${JSON.stringify(name)} is reserved; choose another name`);
  }
  const metaText = JSON.stringify(contents.meta, null, 1);
  if (typeof metaText !== 'string' || !metaText.startsWith('{')) throw new Error('checkpoint meta must be a JSON object');
  mkdirSync(dirname(dir), { recursive: true });
  removeStaleStaging(dir);
  const staging = `${dir}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
  mkdirSync(staging);
  try {
    const digests: Record<string, FileDigest> = {};
    digests[TENSORS_FILE] = writeSafetensorsFile(join(staging, TENSORS_FILE), contents.tensors);
    digests[META_FILE] = writeFileSynced(join(staging, META_FILE), metaText + '\n');
    for (const [name, text] of Object.entries(files)) digests[name] = writeFileSynced(join(staging, name), text);
    commitDirectory(staging, dir, { format: CHECKPOINT_FORMAT, version: 1, files: digests });
  } catch (e) {
    rmSync(staging, { recursive: true, force: true });
    throw e;
  }
}

/** Loads and verifies a checkpoint; a missing, truncated or modified file refuses the whole load. */
export function loadCheckpoint(dir: string): LoadedCheckpoint {
  dir = resolve(dir);
  dir = committedDir(dir);
  const { contents } = readVerified(dir, 'checkpoint', CHECKPOINT_FORMAT);
  for (const required of [TENSORS_FILE, META_FILE]) {
    if (!contents.has(required)) throw new Error(`checkpoint ${dir}: manifest.json does not list ${required}; not a complete checkpoint`);
  }
  const { tensors } = parseSafetensors(contents.get(TENSORS_FILE)!, join(dir, TENSORS_FILE));
  let meta: Record<string, unknown>;
  try {
    meta = JSON.parse(contents.get(META_FILE)!.toString('utf8')) as Record<string, unknown>;
  } catch (e) {
    throw new Error(`checkpoint ${dir}: ${META_FILE} is not valid JSON (${(e as Error).message})`);
  }
  const files: Record<string, string> = {};
  for (const [name, data] of contents) if (!RESERVED.has(name)) files[name] = data.toString('utf8');
  return { tensors, meta, files, dir };
}
