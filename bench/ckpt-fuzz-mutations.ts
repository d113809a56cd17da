// Mutations of a real checkpoint directory for the checkpoint fuzzer (bench/ckpt-fuzz.ts and
// test/engine/ckpt-fuzz.test.ts). Each is a pure function of (checkpoint files, rng) that
// returns the damaged files; "consistent" mutations also rewrite manifest.json's sizes and
// sha256s, so only the meaning is wrong. Every mutation here must be refused by the loaders.
import { createHash } from 'node:crypto';
import { Rng } from '../src/tensor/rng.js';
import { parseSafetensors, serializeSafetensors, type TensorEntry } from '../src/checkpoint/index.js';

export type Files = Map<string, Buffer>;

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

/** Rewrites the manifest so every listed file's size and sha256 match (a careful forger). */
export function reseal(files: Files): Files {
  const manifest = JSON.parse(files.get('manifest.json')!.toString()) as { files: Record<string, { bytes: number; sha256: string }> };
  for (const name of Object.keys(manifest.files)) {
    const b = files.get(name);
    if (b) manifest.files[name] = { bytes: b.length, sha256: sha(b) };
  }
  files.set('manifest.json', Buffer.from(JSON.stringify(manifest)));
  return files;
}

const pick = <T>(rng: Rng, xs: readonly T[]): T => xs[rng.int(xs.length)]!;
const FILES = ['model.safetensors', 'meta.json', 'tokenizer.json', 'manifest.json'];

function editMeta(files: Files, edit: (m: Record<string, unknown>) => void): Files {
  const m = JSON.parse(files.get('meta.json')!.toString()) as Record<string, unknown>;
  edit(m);
  files.set('meta.json', Buffer.from(JSON.stringify(m).replace(/"__NaN__"/g, 'NaN').replace(/"__INF__"/g, '1e400')));
  return reseal(files);
}

function editTensors(files: Files, edit: (t: Record<string, TensorEntry>) => void): Files {
  const { tensors } = parseSafetensors(Buffer.from(files.get('model.safetensors')!));
  const copy: Record<string, TensorEntry> = {};
  for (const [k, v] of Object.entries(tensors)) copy[k] = { ...v, shape: [...v.shape], data: v.data.slice() as TensorEntry['data'] };
  edit(copy);
  files.set('model.safetensors', serializeSafetensors(copy));
  return reseal(files);
}

function editHeader(files: Files, edit: (h: Record<string, { dtype: string; shape: number[]; data_offsets: number[] }>) => void): Files {
  const b = files.get('model.safetensors')!;
  const n = Number(b.readBigUInt64LE(0));
  const h = JSON.parse(b.subarray(8, 8 + n).toString());
  edit(h);
  const text = Buffer.from(JSON.stringify(h));
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(text.length));
  files.set('model.safetensors', Buffer.concat([len, text, b.subarray(8 + n)]));
  return reseal(files);
}

const BAD_VALUES: unknown[] = ['7', -1, -0.5, null, '__NaN__', '__INF__', 1e300, [], {}, true];
const META_FIELDS = ['iter', 'seed', 'world', 'trainRng', 'valRng', 'tokenizer', 'architecture.nLayer', 'architecture.nHead', 'architecture.nEmbd', 'architecture.blockSize', 'architecture.vocabSize', 'architecture.bias', 'architecture.dropout', 'architecture.family', 'hyper.lr', 'hyper.batchSize', 'hyper.maxIters', 'hyper.warmupIters', 'hyper.logInterval', 'hyper.beta2', 'hyper.weightDecay', 'hyper.gradAccum'];

export interface Mutation {
  kind: string;
  apply(files: Files, rng: Rng, other: Files): Files | null;
}

/** Every kind of damage the fuzzer draws from. `other` is a checkpoint of another run. */
export const MUTATIONS: Mutation[] = [
  { kind: 'bit flip', apply: (f, rng) => { const name = pick(rng, FILES); const b = Buffer.from(f.get(name)!); const i = rng.int(b.length); b[i]! ^= 1 << rng.int(8); f.set(name, b); return f; } },
  { kind: 'truncation', apply: (f, rng) => { const name = pick(rng, FILES); const b = f.get(name)!; const regions = name === 'model.safetensors' ? [rng.int(8), 8 + rng.int(Number(b.readBigUInt64LE(0))), rng.int(b.length)] : [rng.int(b.length)]; f.set(name, b.subarray(0, pick(rng, regions))); return f; } },
  { kind: 'truncation, resealed', apply: (f, rng) => { const name = pick(rng, ['model.safetensors', 'meta.json', 'tokenizer.json']); const b = f.get(name)!; f.set(name, b.subarray(0, rng.int(b.toString('latin1').trimEnd().length))); return reseal(f); } }, // (cutting only trailing whitespace would change nothing)
  { kind: 'missing file', apply: (f, rng) => { f.delete(pick(rng, FILES)); return f; } },
  // (tokenizer.json is the same bytes in both runs: swapping it would change nothing.)
  { kind: 'file from another run', apply: (f, rng, other) => { const name = pick(rng, ['model.safetensors', 'meta.json']); f.set(name, other.get(name)!); return f; } },
  { kind: 'swapped files', apply: (f) => { const a = f.get('meta.json')!; f.set('meta.json', f.get('tokenizer.json')!); f.set('tokenizer.json', a); return f; } },
  { kind: 'manifest edit', apply: (f, rng) => { const m = JSON.parse(f.get('manifest.json')!.toString()) as Record<string, unknown> & { files: Record<string, unknown> }; const e = rng.int(4); if (e === 0) m.format = 'other'; else if (e === 1) m.version = 2; else if (e === 2) delete m.files[pick(rng, ['model.safetensors', 'meta.json'])]; else m.files = null as never; f.set('manifest.json', Buffer.from(JSON.stringify(m))); return f; } },
  { kind: 'header edit', apply: (f, rng) => editHeader(f, (h) => { const names = Object.keys(h).filter((k) => k !== '__metadata__'); const t = h[pick(rng, names)]!; const e = rng.int(3); if (e === 0) t.dtype = pick(rng, ['F16', 'I32', 'U8', 'F64', 'BOOL', 'X9']); else if (e === 1) t.shape = [...t.shape, 2]; else t.data_offsets = [t.data_offsets[0]! + 4, t.data_offsets[1]! + 4]; }) },
  { kind: 'dtype change (data converted)', apply: (f, rng) => editTensors(f, (t) => { const name = pick(rng, Object.keys(t)); const src = t[name]!.data as Float32Array; const dtype = pick(rng, ['I32', 'U32', 'U8', 'I64'] as const); const data = dtype === 'I32' ? Int32Array.from(src, (x) => Math.round(x * 1000)) : dtype === 'U32' ? Uint32Array.from(src, (x) => Math.abs(Math.round(x * 1000))) : dtype === 'U8' ? Uint8Array.from(src, (x) => Math.abs(Math.round(x * 100)) & 255) : BigInt64Array.from(src, (x) => BigInt(Math.round(x * 1000))); t[name] = { dtype, shape: t[name]!.shape, data }; }) },
  { kind: 'shape change', apply: (f, rng) => editTensors(f, (t) => { const name = pick(rng, Object.keys(t).filter((k) => t[k]!.shape.length === 2 && t[k]!.shape[0] !== t[k]!.shape[1])); t[name]!.shape = [...t[name]!.shape].reverse(); }) },
  { kind: 'extra tensor', apply: (f, rng) => editTensors(f, (t) => { const name = pick(rng, Object.keys(t)); t[`${name.replace(/\.\d+\./, '.99.')}.extra${rng.int(9)}`] = { ...t[name]! }; }) },
  { kind: 'missing tensor', apply: (f, rng) => editTensors(f, (t) => { delete t[pick(rng, Object.keys(t))]; }) },
  { kind: 'meta field wrong type or range', apply: (f, rng) => editMeta(f, (m) => { const path = pick(rng, META_FIELDS).split('.'); let o = m; for (const k of path.slice(0, -1)) o = o[k] as Record<string, unknown>; let v = pick(rng, BAD_VALUES); if (path.at(-1) === 'config.bias' || (path.at(-1) === 'bias' && typeof v === 'boolean')) v = 'yes'; o[path.at(-1)!] = v; }) },
  { kind: 'meta replaced', apply: (f, rng) => { f.set('meta.json', Buffer.from(pick(rng, ['null', '[]', '"x"', '7', '{}', '{"iter":1}']))); return reseal(f); } },
  { kind: 'meta config changed (layers)', apply: (f, rng) => editMeta(f, (m) => { const c = m.architecture as Record<string, number>; c.nLayer = c.nLayer! + pick(rng, [-1, 1, 2]); }) },
  { kind: 'tokenizer edit', apply: (f, rng) => { const t = JSON.parse(f.get('tokenizer.json')!.toString()) as { kind: string; chars: string[] }; const e = rng.int(3); if (e === 0) [t.chars[0], t.chars[1]] = [t.chars[1]!, t.chars[0]!]; else if (e === 1) t.chars.pop(); else t.kind = 'bpe'; f.set('tokenizer.json', Buffer.from(JSON.stringify(t))); return reseal(f); } },
];
