// Crash safety for checkpoint directories. A checkpoint is built in a staging directory beside
// its destination, every file and the directory are fsynced, and only then is it renamed into
// place; the checkpoint it replaces is renamed to DIR.prev first, so at every instant either
// DIR or DIR.prev is a complete checkpoint. A manifest with each file's size and sha256 is
// written last, so a reader can tell a finished checkpoint from a damaged one.

import { closeSync, existsSync, fsyncSync, openSync, readFileSync, renameSync, rmSync, writeSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { dirname, join } from 'node:path';

export const MANIFEST = 'manifest.json';

export interface FileDigest {
  bytes: number;
  sha256: string;
}

export interface Manifest {
  format: string;
  version: 1;
  files: Record<string, FileDigest>;
}

export function sha256(data: Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

/** Writes and fsyncs a file; returns its digest. */
export function writeFileSynced(path: string, data: Uint8Array | string): FileDigest {
  const bytes = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
  const fd = openSync(path, 'w');
  try {
    let done = 0;
    while (done < bytes.length) done += writeSync(fd, bytes, done, bytes.length - done);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  return { bytes: bytes.length, sha256: sha256(bytes) };
}

/** fsync on a directory makes the names of the files inside it durable. */
export function fsyncDir(path: string): void {
  const fd = openSync(path, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** File names a checkpoint may hold: plain names, no paths. */
export function checkFileName(name: string, what: string): void {
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(name)) throw new Error(`${what} ${JSON.stringify(name)} must be a plain file name (letters, digits, . _ -)`);
}

/** The committed copy of `dir`: DIR, or DIR.prev when a save crashed between its two renames
 * (then DIR is absent and DIR.prev is whole). Every loader goes through this. */
export function committedDir(dir: string): string {
  return !existsSync(dir) && existsSync(`${dir}.prev`) ? `${dir}.prev` : dir;
}

/** Writes the manifest into `staging`, fsyncs it, and moves `staging` to `dir` (DIR -> DIR.prev first). */
export function commitDirectory(staging: string, dir: string, manifest: Manifest): void {
  writeFileSynced(join(staging, MANIFEST), JSON.stringify(manifest, null, 1) + '\n');
  fsyncDir(staging);
  const prev = `${dir}.prev`;
  if (existsSync(dir)) {
    rmSync(prev, { recursive: true, force: true });
    renameSync(dir, prev);
  }
  renameSync(staging, dir);
  fsyncDir(dirname(dir));
}

/** Reads `dir`'s manifest and every file it lists, checking sizes and sha256 before anything is
 *  parsed, so a damaged checkpoint is refused as a whole. Returns the verified bytes by name. */
export function readVerified(dir: string, what: string, expectedFormat: string): { manifest: Manifest; contents: Map<string, Buffer> } {
  const manifestPath = join(dir, MANIFEST);
  if (!existsSync(dir)) throw new Error(`${what} ${dir} not found`);
  if (!existsSync(manifestPath)) throw new Error(`${what} ${dir} is incomplete or not a checkpoint: ${MANIFEST} is missing`);
  let manifest: Manifest;
  try {
    manifest = JSON.parse(readFileSync(manifestPath, 'utf8')) as Manifest;
  } catch (e) {
    throw new Error(`${what} ${dir}: ${MANIFEST} is not valid JSON (${(e as Error).message}); the checkpoint is damaged`);
  }
  if (manifest?.format !== expectedFormat || manifest.version !== 1 || typeof manifest.files !== 'object' || manifest.files === null) {
    throw new Error(`${what} ${dir}: ${MANIFEST} is not an ${expectedFormat} version 1 manifest`);
  }
  const contents = new Map<string, Buffer>();
  for (const [name, digest] of Object.entries(manifest.files)) {
    checkFileName(name, `${MANIFEST} entry`);
    const path = join(dir, name);
    if (!existsSync(path)) throw new Error(`${what} ${dir}: ${name} is listed in ${MANIFEST} but missing; refusing to load`);
    const data = readFileSync(path);
    if (data.length !== digest.bytes) {
      throw new Error(`${what} ${dir}: ${name} has ${data.length} bytes but ${MANIFEST} says ${digest.bytes}; the file is ${data.length < digest.bytes ? 'truncated' : 'damaged'}, refusing to load`);
    }
    if (sha256(data) !== digest.sha256) throw new Error(`${what} ${dir}: ${name} does not match its sha256 in ${MANIFEST}; the file was modified or damaged, refusing to load`);
    contents.set(name, data);
  }
  return { manifest, contents };
}
