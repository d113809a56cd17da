// `atscale ckpt convert`: a checkpoint of any layout rewritten as the universal checkpoint that
// a run of another layout (dp x tp x pp, ZeRO stage) would have saved, rank by rank, or as the
// plain single-process checkpoint (dp=1,tp=1,pp=1,zero=0), or as one safetensors state dict.
// The layout is checked against the model first, with the arithmetic in the message.
import type { FloatArray } from '../../ir/dtype.js';
import { safetensorsDType } from '../train-dtype.js';
import { mkdirSync, renameSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { chunkRange } from '../../dist/index.js';
import { elementCount, finalizeUniversal, isUniversalCheckpoint, loadCheckpoint, saveCheckpoint, tpShardShape, tpSplitTensor, UniversalCheckpoint, writeSafetensorsFile, writeUniversalShard, type OwnedPiece, type TensorEntry, type UniversalLayout } from '../../checkpoint/index.js';
import { createModel } from '../../models/registry.js';
import type { LanguageModel } from '../../models/model.js';
import { FlatLayout } from '../../nn/flat.js';
import { checkArchitecture } from '../validate-meta.js';
import { modelUnits } from '../segments.js';
import { stageLayers, stageStarts, rankOf } from '../mesh/layout.js';
import { OPT_M, OPT_V } from '../optimizer-names.js';
import { offlineIds, readFullState, type FullState, type LocalSlot } from './state.js';

export type TargetLayout = Omit<UniversalLayout, 'world'>;
const KEYS = ['dp', 'tp', 'pp', 'zero'] as const;

/** "dp=2,tp=1,pp=2,zero=1" (missing degrees are 1, a missing zero is 0). */
export function parseLayout(text: string): TargetLayout {
  const out: TargetLayout = { dp: 1, tp: 1, pp: 1, zero: 0 };
  for (const part of text.split(',').map((s) => s.trim()).filter(Boolean)) {
    const [k, v, more] = part.split('=');
    if (!(KEYS as readonly string[]).includes(k!) || v === undefined || more !== undefined) throw new Error(`--layout: '${part}' is not one of ${KEYS.map((x) => `${x}=N`).join(', ')} (e.g. --layout dp=2,tp=1,pp=2,zero=1)`);
    const n = Number(v);
    const ok = Number.isInteger(n) && (k === 'zero' ? n >= 0 && n <= 3 : n >= 1);
    if (!ok) throw new Error(`--layout: ${k}=${v} must be ${k === 'zero' ? 'a ZeRO stage 0, 1, 2 or 3' : 'a positive integer'}`);
    out[k as (typeof KEYS)[number]] = n;
  }
  return out;
}

/** The layout's arithmetic against the model (what a run of that layout would refuse). */
export function checkTarget(model: LanguageModel, layout: FlatLayout, t: TargetLayout): number[] {
  const d = model.dims;
  if (d.nHead % t.tp !== 0) throw new Error(`--layout tp=${t.tp}: ${d.nHead} attention heads do not divide by tp ${t.tp} (${d.nHead} % ${t.tp} = ${d.nHead % t.tp}); every tensor-parallel rank must hold whole heads`);
  if (t.zero > 1 && t.pp > 1) throw new Error(`--layout zero=${t.zero} with pp=${t.pp}: ZeRO stages 2 and 3 are refused with pipeline parallelism (as DeepSpeed does); use zero=0 or zero=1`);
  if (t.zero > 0 && t.dp === 1 && t.pp * t.tp > 1) throw new Error(`--layout zero=${t.zero} with dp=1: ZeRO partitions over the data-parallel ranks, of which there is one; use zero=0`);
  for (const s of layout.slots) tpShardShape(s.name, s.shape, model.tensorParallelSplit(s.name), t.tp);
  return stageLayers(d.nLayer, t.pp, 1);
}

/** Which pipeline stage holds each unit; a tied unit (embedding and head) is on the first and last. */
function unitStages(model: LanguageModel, layout: FlatLayout, pp: number, layers: number[]): Map<string, number[]> {
  const named = model.units();
  const starts = stageStarts(layers);
  const out = new Map<string, number[]>();
  for (const u of modelUnits(model, layout)) {
    const b = named.blocks.indexOf(u.name);
    const stages: number[] = [];
    if (named.embed.includes(u.name)) stages.push(0);
    if (b >= 0) stages.push(starts.findIndex((s, i) => b >= s && b < starts[i + 1]!));
    if (named.head.includes(u.name) && !stages.includes(pp - 1)) stages.push(pp - 1);
    out.set(u.name, stages);
  }
  return out;
}

/** Writes the universal checkpoint that the ranks of layout `t` would write from `st`. */
function writeLayout(dst: string, model: LanguageModel, layout: FlatLayout, st: FullState, t: TargetLayout, layers: number[]): UniversalLayout {
  const world = t.dp * t.tp * t.pp;
  const target: UniversalLayout = { ...t, world };
  const ids = offlineIds(st.run);
  const units = modelUnits(model, layout);
  const stagesOf = unitStages(model, layout, t.pp, layers);
  const unitOf = (name: string) => units.find((u) => name.startsWith(`${u.name}.`))!;
  const split = new Map<string, FloatArray[][]>();
  // A tensor's tp shards of each state, cut once and shared by the ranks that write them.
  const shards = (name: string): FloatArray[][] => {
    let s = split.get(name);
    if (!s) {
      const slot = layout.byName.get(name)!;
      const sp = model.tensorParallelSplit(name);
      s = [st.params, st.m, st.v].map((buf) => Array.from({ length: t.tp }, (_, r) => tpSplitTensor<FloatArray>(name, buf.subarray(slot.offset, slot.offset + slot.size), slot.shape, sp, t.tp, r)));
      split.set(name, s);
    }
    return s;
  };
  for (let pp = 0; pp < t.pp; pp++) {
    for (let tp = 0; tp < t.tp; tp++) {
      // This stage's owned buffer (tp-local sizes), in layout order, as a run of the layout packs it.
      const slots: (LocalSlot & { write: boolean })[] = [];
      let at = 0;
      for (const s of layout.slots) {
        const stages = stagesOf.get(unitOf(s.name).name)!;
        if (!stages.includes(pp)) continue;
        const sp = model.tensorParallelSplit(s.name);
        const size = elementCount(tpShardShape(s.name, s.shape, sp, t.tp));
        slots.push({ name: s.name, offset: at, size, write: stages[0] === pp && (tp === 0 || sp.kind !== 'replicated') });
        at += size;
      }
      for (let dp = 0; dp < t.dp; dp++) {
        const [lo, hi] = chunkRange(at, t.dp, dp);
        const pieces: OwnedPiece[] = [];
        for (const s of slots) {
          const a = Math.max(0, lo - s.offset);
          const b = Math.min(s.size, hi - s.offset);
          if (!s.write || b <= a) continue;
          const [p, m, v] = shards(s.name).map((x) => x[tp]!.subarray(a, b));
          pieces.push({ name: s.name, tpRank: tp, start: a, end: b, param: p!, expAvg: m!, expAvgSq: v! });
        }
        const tensors = Object.fromEntries(pieces.map((x) => [x.name, { shape: [...layout.byName.get(x.name)!.shape], tp: model.tensorParallelSplit(x.name), stage: pp }]));
        const rank = rankOf(t, { dp, pp, tp });
        writeUniversalShard(dst, { run: ids.run, save: ids.save, coords: { rank, dp, tp, pp }, pieces, tensors });
      }
    }
  }
  const { mesh: _mesh, ...meta } = st.meta;
  finalizeUniversal(dst, { layout: target, run: ids.run, save: ids.save, order: layout.slots.map((s) => s.name), meta: { ...meta, mesh: { dp: t.dp, pp: t.pp, tp: t.tp } }, files: st.files });
  return target;
}

/** The model a checkpoint's meta.json describes. */
export function modelOfCheckpoint(src: string): { model: LanguageModel; layout: FlatLayout } {
  const meta = isUniversalCheckpoint(src) ? new UniversalCheckpoint(src).meta : loadCheckpoint(src).meta;
  if (typeof meta !== 'object' || meta === null) throw new Error(`checkpoint ${src}: meta.json must be a JSON object`);
  const arch = checkArchitecture(meta.architecture ?? meta.config, `checkpoint ${src}`);
  const model = createModel(arch);
  return { model, layout: new FlatLayout(model) };
}

export interface ConvertResult {
  kind: 'universal' | 'plain' | 'safetensors';
  layout: UniversalLayout;
  tensors: number;
}

/** Converts SRC (universal or plain) into DST in layout `t`; with `stateDict`, DST is one
 *  safetensors file of the named parameters (meta JSON under "atscale.meta"). */
export function convertCheckpoint(src: string, dst: string, t: TargetLayout, opts: { stateDict?: boolean } = {}): ConvertResult {
  if (resolve(src) === resolve(dst)) throw new Error(`ckpt convert: the destination ${dst} is the source; write the conversion elsewhere (the source is never overwritten)`);
  const { model, layout } = modelOfCheckpoint(src);
  const layers = checkTarget(model, layout, t);
  const st = readFullState(src, layout, model);
  const plain = t.dp === 1 && t.tp === 1 && t.pp === 1 && t.zero === 0;
  const one: UniversalLayout = { dp: 1, tp: 1, pp: 1, zero: 0, world: 1 };
  if (opts.stateDict) {
    if (!plain) throw new Error('ckpt convert --state-dict writes the whole model to one file: use it with --layout dp=1,tp=1,pp=1,zero=0 (the default)');
    const tensors: Record<string, TensorEntry> = {};
    for (const [name, e] of Object.entries(layout.stateDict(st.params))) tensors[name] = { dtype: safetensorsDType(st.dtype), shape: e.shape, data: e.data };
    mkdirSync(dirname(resolve(dst)), { recursive: true });
    const tmp = `${resolve(dst)}.tmp-${process.pid}`;
    writeSafetensorsFile(tmp, tensors, { format: 'pt', 'atscale.meta': JSON.stringify(st.meta) });
    renameSync(tmp, dst); // never a half-written file under the final name
    return { kind: 'safetensors', layout: one, tensors: layout.slots.length };
  }
  if (plain) {
    // The state keeps its dtype (a float64 run's checkpoint converts to F64 tensors).
    const dtype = safetensorsDType(st.dtype);
    const tensors: Record<string, TensorEntry> = {};
    for (const [name, e] of Object.entries(layout.stateDict(st.params))) tensors[name] = { dtype, shape: e.shape, data: e.data };
    tensors[OPT_M] = { dtype, shape: [layout.size], data: st.m };
    tensors[OPT_V] = { dtype, shape: [layout.size], data: st.v };
    const { mesh: _mesh, ...meta } = st.meta;
    saveCheckpoint(dst, { tensors, meta, files: st.files });
    return { kind: 'plain', layout: one, tensors: layout.slots.length };
  }
  return { kind: 'universal', layout: writeLayout(dst, model, layout, st, t, layers), tensors: layout.slots.length };
}
