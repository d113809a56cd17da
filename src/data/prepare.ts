// Corpus preparation as in nanoGPT's prepare.py: split the text 90/10 into train and validation
// (by characters, at floor(n * trainFraction)), encode each part, and write the ids as raw
// little-endian uint16 (vocab <= 65536) or uint32 files, with a meta.json that records the
// tokenizer so the ids can be decoded and checked against a checkpoint later.

import { mkdirSync, readFileSync, writeFileSync, existsSync, renameSync } from 'node:fs';
import { endianness } from 'node:os';
import { join } from 'node:path';
import type { Tokenizer } from './tokenizer.js';
import { tokenizerFromJSON } from './tokenizer_json.js';

export type TokenDtype = 'uint16' | 'uint32';
export type TokenArray = Uint16Array | Uint32Array;

export interface CorpusMeta {
  format: 'atscale-corpus';
  version: 1;
  dtype: TokenDtype;
  vocabSize: number;
  trainTokens: number;
  valTokens: number;
  trainFraction: number;
  tokenizer: object;
  tokenizerFingerprint: string;
  /** Where the text came from, when the caller says (a path or URL). */
  source?: string;
}

export interface SplitCorpus {
  train: TokenArray;
  val: TokenArray;
  dtype: TokenDtype;
}

export function tokenDtypeFor(vocabSize: number): TokenDtype {
  return vocabSize <= 65536 ? 'uint16' : 'uint32';
}

function assertLittleEndianHost(): void {
  if (endianness() !== 'LE') throw new Error('token files are little-endian; this big-endian host is not supported');
}

/** UTF-16 index of the code point at position `cp` (so a split never cuts a surrogate pair). */
function codePointOffset(text: string, cp: number): number {
  let units = 0;
  for (let i = 0; i < cp; i++) units += text.codePointAt(units)! > 0xffff ? 2 : 1;
  return units;
}

function countCodePoints(text: string): number {
  let n = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c < 0xd800 || c > 0xdbff || i + 1 >= text.length) n++;
    else {
      const d = text.charCodeAt(i + 1);
      if (d >= 0xdc00 && d <= 0xdfff) i++;
      n++;
    }
  }
  return n;
}

/** Splits and encodes; trainFraction defaults to 0.9. `onProgress` hears characters encoded
 * so far out of the whole text (after the train part, then after the validation part). */
export function splitAndEncode(text: string, tokenizer: Tokenizer, trainFraction = 0.9, onProgress?: (done: number, total: number) => void): SplitCorpus {
  if (text.length === 0) throw new Error('corpus is empty; a corpus needs at least some text');
  if (!(trainFraction > 0 && trainFraction < 1)) throw new Error(`trainFraction must be in (0, 1), got ${trainFraction}`);
  const cut = codePointOffset(text, Math.floor(countCodePoints(text) * trainFraction));
  const dtype = tokenDtypeFor(tokenizer.vocabSize);
  const convert = (ids: Uint32Array): TokenArray => (dtype === 'uint16' ? Uint16Array.from(ids) : ids);
  onProgress?.(0, text.length);
  const train = convert(tokenizer.encode(text.slice(0, cut)));
  onProgress?.(cut, text.length);
  const val = convert(tokenizer.encode(text.slice(cut)));
  onProgress?.(text.length, text.length);
  return { train, val, dtype };
}

/** Writes train.bin, val.bin and meta.json into outDir (created if needed). */
export function prepareCorpus(text: string, tokenizer: Tokenizer, outDir: string, options: { trainFraction?: number; source?: string; onProgress?: (done: number, total: number) => void } = {}): CorpusMeta {
  assertLittleEndianHost();
  const trainFraction = options.trainFraction ?? 0.9;
  const { train, val, dtype } = splitAndEncode(text, tokenizer, trainFraction, options.onProgress);
  mkdirSync(outDir, { recursive: true });
  writeAtomic(join(outDir, 'train.bin'), new Uint8Array(train.buffer, train.byteOffset, train.byteLength));
  writeAtomic(join(outDir, 'val.bin'), new Uint8Array(val.buffer, val.byteOffset, val.byteLength));
  const meta: CorpusMeta = {
    format: 'atscale-corpus',
    version: 1,
    dtype,
    vocabSize: tokenizer.vocabSize,
    trainTokens: train.length,
    valTokens: val.length,
    trainFraction,
    tokenizer: tokenizer.toJSON(),
    tokenizerFingerprint: tokenizer.fingerprint(),
    ...(options.source !== undefined ? { source: options.source } : {}),
  };
  writeAtomic(join(outDir, 'meta.json'), JSON.stringify(meta) + '\n');
  return meta;
}

/** Temp name + rename: ranks of one job preparing the same corpus into the same directory
 * never see each other's half-written files (each writes identical bytes). */
function writeAtomic(path: string, data: Uint8Array | string): void {
  const tmp = `${path}.${process.pid}.tmp`;
  writeFileSync(tmp, data);
  renameSync(tmp, path);
}

/** Reads a raw token file written by prepareCorpus. */
export function readTokenFile(path: string, dtype: TokenDtype): TokenArray {
  assertLittleEndianHost();
  if (!existsSync(path)) throw new Error(`token file ${path} not found; prepare the corpus first`);
  const bytes = readFileSync(path);
  const size = dtype === 'uint16' ? 2 : 4;
  if (bytes.byteLength % size !== 0) throw new Error(`token file ${path} has ${bytes.byteLength} bytes, not a multiple of ${size} (${dtype}); it is truncated or of another dtype`);
  // Copy into a fresh buffer: Node's pooled Buffers may not be aligned for a typed view.
  const copy = new Uint8Array(bytes.byteLength);
  copy.set(bytes);
  return dtype === 'uint16' ? new Uint16Array(copy.buffer) : new Uint32Array(copy.buffer);
}

export interface PreparedCorpus {
  meta: CorpusMeta;
  tokenizer: Tokenizer;
  train: TokenArray;
  val: TokenArray;
}

/** Loads a directory written by prepareCorpus and checks the files against meta.json. */
export function loadPreparedCorpus(dir: string): PreparedCorpus {
  const metaPath = join(dir, 'meta.json');
  if (!existsSync(metaPath)) throw new Error(`${metaPath} not found; ${dir} is not a prepared corpus`);
  const meta = JSON.parse(readFileSync(metaPath, 'utf8')) as CorpusMeta;
  if (meta.format !== 'atscale-corpus' || meta.version !== 1) throw new Error(`${metaPath}: not an atscale corpus (format ${JSON.stringify(meta.format)}, version ${meta.version})`);
  if (meta.dtype !== 'uint16' && meta.dtype !== 'uint32') throw new Error(`${metaPath}: dtype must be "uint16" or "uint32", got ${JSON.stringify(meta.dtype)}`);
  const tokenizer = tokenizerFromJSON(meta.tokenizer);
  if (tokenizer.fingerprint() !== meta.tokenizerFingerprint) throw new Error(`${metaPath}: the stored tokenizer does not match its fingerprint; the file was edited or damaged`);
  const train = readTokenFile(join(dir, 'train.bin'), meta.dtype);
  const val = readTokenFile(join(dir, 'val.bin'), meta.dtype);
  if (train.length !== meta.trainTokens || val.length !== meta.valTokens) {
    throw new Error(`${dir}: token files hold ${train.length}/${val.length} tokens but meta.json says ${meta.trainTokens}/${meta.valTokens}; prepare the corpus again`);
  }
  return { meta, tokenizer, train, val };
}
