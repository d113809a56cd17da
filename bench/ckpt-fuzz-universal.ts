// Mutations of a universal checkpoint (a manifest plus one shard file per rank) for the
// checkpoint fuzzer: shards missing, extra, swapped, renamed or from another run, and manifest
// or shard edits that also rewrite the checksums (reseal) so only the meaning is wrong: dtypes,
// shapes, ranges, layout, splits, stages, run ids. Every one must be refused naming the file.
import { Rng } from '../src/tensor/rng.js';
import { parseSafetensors, serializeSafetensors, type TensorEntry } from '../src/checkpoint/index.js';
import { MUTATIONS, reseal, type Files, type Mutation } from './ckpt-fuzz-mutations.js';

const pick = <T>(rng: Rng, xs: readonly T[]): T => xs[rng.int(xs.length)]!;
const shards = (f: Files): string[] => [...f.keys()].filter((n) => /^rank-\d{5}\.safetensors$/.test(n)).sort();

interface Manifest {
  run: string;
  layout: Record<string, number>;
  shards: Record<string, { rank: number }>;
  files: Record<string, unknown>;
  tensors: Record<string, { dtype: string; shape: number[]; tp: Record<string, unknown>; stage: number; pieces: { file: string; tpRank: number; start: number; end: number }[] }>;
}

function editManifest(f: Files, edit: (m: Manifest) => void): Files {
  const m = JSON.parse(f.get('manifest.json')!.toString()) as Manifest;
  edit(m);
  f.set('manifest.json', Buffer.from(JSON.stringify(m)));
  return reseal(f);
}

function editShard(f: Files, rng: Rng, edit: (t: Record<string, TensorEntry>, rng: Rng) => void): Files {
  const name = pick(rng, shards(f));
  const { tensors, metadata } = parseSafetensors(Buffer.from(f.get(name)!));
  const copy: Record<string, TensorEntry> = {};
  for (const [k, v] of Object.entries(tensors)) copy[k] = { ...v, shape: [...v.shape], data: v.data.slice() as TensorEntry['data'] };
  edit(copy, rng);
  f.set(name, serializeSafetensors(copy, metadata));
  return reseal(f);
}

const tensorOf = (m: Manifest, rng: Rng) => m.tensors[pick(rng, Object.keys(m.tensors))]!;

export const UNIVERSAL_MUTATIONS: Mutation[] = [
  { kind: 'universal: shard missing', apply: (f, rng) => { f.delete(pick(rng, shards(f))); return f; } },
  { kind: 'universal: shard missing, manifest resealed', apply: (f, rng) => { const s = pick(rng, shards(f)); f.delete(s); return editManifest(f, (m) => { delete m.shards[s]; delete m.files[s]; }); } },
  { kind: 'universal: extra shard', apply: (f, rng) => { f.set('rank-00099.safetensors', f.get(pick(rng, shards(f)))!); return f; } },
  { kind: 'universal: extra shard in manifest', apply: (f, rng) => { const n = shards(f).length; const name = `rank-${String(n).padStart(5, '0')}.safetensors`; f.set(name, f.get(pick(rng, shards(f)))!); return editManifest(f, (m) => { m.shards[name] = { ...m.shards['rank-00000.safetensors']!, rank: n }; m.files[name] = {}; }); } },
  { kind: 'universal: swapped shards', apply: (f, rng) => { const s = shards(f); const a = pick(rng, s); const b = pick(rng, s.filter((x) => x !== a)); const t = f.get(a)!; f.set(a, f.get(b)!); f.set(b, t); return rng.int(2) ? reseal(f) : f; } },
  { kind: 'universal: renamed shard', apply: (f, rng) => { const a = pick(rng, shards(f)); const t = f.get(a)!; f.delete(a); f.set(a.replace(/\d{5}/, '00042'), t); return f; } },
  { kind: 'universal: shard from another run', apply: (f, rng, other) => { const a = pick(rng, shards(f)); f.set(a, other.get(a)!); return rng.int(2) ? reseal(f) : f; } },
  { kind: 'universal: manifest from another run', apply: (f, _rng, other) => { f.set('manifest.json', other.get('manifest.json')!); return f; } },
  { kind: 'universal: run id edited, resealed', apply: (f) => editManifest(f, (m) => { m.run = `${m.run}x`; }) },
  { kind: 'universal: manifest dtype edit, resealed', apply: (f, rng) => editManifest(f, (m) => { tensorOf(m, rng).dtype = pick(rng, ['F16', 'BF16', 'I32', 'U8', 'F64']); }) },
  { kind: 'universal: manifest shape edit, resealed', apply: (f, rng) => editManifest(f, (m) => { const t = tensorOf(m, rng); const e = rng.int(3); if (e === 0 && t.shape.length === 2 && t.shape[0] !== t.shape[1]) t.shape = [...t.shape].reverse(); else if (e === 0) t.shape = [...t.shape, 1]; else if (e === 1) t.shape = [...t.shape, 2]; else t.shape[0] = t.shape[0]! + 1; }) },
  { kind: 'universal: manifest range edit, resealed', apply: (f, rng) => editManifest(f, (m) => { const t = tensorOf(m, rng); const p = pick(rng, t.pieces); const e = rng.int(3); if (e === 0) p.end += 1; else if (e === 1) p.start += 1; else { p.start += 2; p.end += 2; } }) },
  { kind: 'universal: manifest layout edit, resealed', apply: (f, rng) => editManifest(f, (m) => { const k = pick(rng, ['dp', 'tp', 'pp', 'world']); m.layout[k] = pick(rng, [m.layout[k]! * 2, m.layout[k]! + 1, 0, -1]); }) },
  { kind: 'universal: manifest tp split edit, resealed', apply: (f, rng) => editManifest(f, (m) => { const t = tensorOf(m, rng); t.tp = t.tp.kind === 'replicated' ? { kind: 'column', axis: 0 } : t.tp.kind === 'row' ? { kind: 'column', axis: 1 - (t.tp.axis as number) } : { kind: 'replicated' }; }) },
  { kind: 'universal: manifest stage edit, resealed', apply: (f, rng) => editManifest(f, (m) => { tensorOf(m, rng).stage = pick(rng, [m.layout.pp!, -1, 1.5]); }) },
  { kind: 'universal: piece moved to another shard, resealed', apply: (f, rng) => editManifest(f, (m) => { const t = tensorOf(m, rng); const p = pick(rng, t.pieces); p.file = pick(rng, Object.keys(m.shards).filter((s) => s !== p.file)); }) },
  { kind: 'universal: shard dtype change, resealed', apply: (f, rng) => editShard(f, rng, (t, r) => { const k = pick(r, Object.keys(t)); const src = t[k]!.data as Float32Array; t[k] = { dtype: 'F16', shape: t[k]!.shape, data: Uint16Array.from(src, () => 0x3c00) }; }) },
  { kind: 'universal: shard entry shape change, resealed', apply: (f, rng) => editShard(f, rng, (t, r) => { const k = pick(r, Object.keys(t)); const d = t[k]!.data as Float32Array; t[k] = { dtype: 'F32', shape: [d.length + 1], data: Float32Array.from([...d, 0]) }; }) },
  { kind: 'universal: shard entry missing or extra, resealed', apply: (f, rng) => editShard(f, rng, (t, r) => { const k = pick(r, Object.keys(t)); if (r.int(2)) delete t[k]; else t[`${k}.extra`] = t[k]!; }) },
  { kind: 'universal: shard bit flip or truncation', apply: (f, rng) => { const a = pick(rng, shards(f)); const b = Buffer.from(f.get(a)!); if (rng.int(2)) { b[rng.int(b.length)]! ^= 1 << rng.int(8); f.set(a, b); } else f.set(a, b.subarray(0, rng.int(b.length))); return f; } },
];

/** Every kind the fuzzer draws from, plain checkpoints' first. */
export const ALL_MUTATIONS: Mutation[] = [...MUTATIONS, ...UNIVERSAL_MUTATIONS];
export const isUniversalMutation = (m: Mutation): boolean => UNIVERSAL_MUTATIONS.includes(m);
