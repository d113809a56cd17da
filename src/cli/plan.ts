// `atscale plan`: predict memory, step time and cost of a training run on a cluster, or search
// for the fastest layout; `--calibrate` measures this machine instead. Loads no runtime code
// except for --calibrate (GEMM probe, one calibration training step, a loopback all-reduce).
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { PRESETS as TRAIN_PRESETS } from '../models/presets.js';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import os from 'node:os';
import { type FlagSpec, type FlagValues, UsageError, formatHelp, parseArgs } from './args.js';
import { backgroundThreads, cpuSample } from './host-load.js';
import { measurePrograms, profiledShapeFrom } from './plan-programs.js';
import { type GptShape, type MachineSpec, CALIBRATION_PROXY, CALIBRATION_PROXY_SMALL, checkMachine, elementwisePoint, forwardFractionFromSteps, machineFromMeasurements, predictCpuStepMs } from '../plan/calibrate.js';
import { type ElementwisePoint, lastLevelCacheBytes } from '../plan/working-set.js';
import { predictLocalStepMs } from '../plan/local-layout.js';
import { buildSchedule } from '../engine/pipeline/schedule.js';
import { evaluate, type PlanResult, toJson } from '../plan/evaluate.js';
import { formatPlan, formatReliability, formatSearch } from '../plan/format.js';
import { resolveLayout } from '../plan/layout.js';
import { CLUSTER_PRESETS, MODEL_PRESETS, loadCluster, modelPreset, scaleCluster } from '../plan/presets.js';
import { planReliability } from '../plan/reliability.js';
import { describeLayout, explain, largestUsableGpus, overlapsFor, searchLayouts } from '../plan/search.js';
import { ATTENTIONS, type Attention, type ClusterSpec, DTYPES, type Dtype, type ModelSpec, PlanInputError, type Recompute, SCHEDULES, type Schedule, type TrainingSpec, checkModel, clusterGpus } from '../plan/specs.js';

export const summary = 'predict memory, step time and cost of a training run on a cluster, or search for the best layout';

const FLAGS: Record<string, FlagSpec> = {
  model: { type: 'string', help: `model preset (${Object.keys(MODEL_PRESETS).join(', ')}) or leave out and give --layers, --hidden, --heads, --vocab` },
  cluster: { type: 'string', help: `cluster preset (${Object.keys(CLUSTER_PRESETS).join(', ')}) or a JSON file`, default: 'selene' },
  layers: { type: 'number', help: 'custom model: transformer layers' },
  hidden: { type: 'number', help: 'custom model: hidden size' },
  heads: { type: 'number', help: 'custom model: attention heads' },
  vocab: { type: 'number', help: 'custom model: vocabulary size' },
  ffn: { type: 'number', help: 'custom model: feed-forward width (default 4 x hidden)' },
  'kv-heads': { type: 'number', help: 'key/value heads: grouped-query attention (default = heads; 1 = multi-query)' },
  swiglu: { type: 'boolean', help: 'gated (SwiGLU) MLP: three h x ffn matrices instead of two' },
  untied: { type: 'boolean', help: 'output layer separate from the embedding' },
  llama: { type: 'boolean', help: 'custom model in the Llama shape: SwiGLU, RMSNorm, RoPE, no biases' },
  experts: { type: 'number', help: 'mixture of experts: experts per MLP' },
  'top-k': { type: 'number', help: 'experts each token is routed to (default 2 with --experts)' },
  'capacity-factor': { type: 'number', help: 'tokens an expert takes, as a multiple of its fair share (default 1)' },
  cp: { type: 'number', help: 'context-parallel degree (splits each sequence; default 1)' },
  ep: { type: 'number', help: 'expert-parallel degree, taken from dp x cp (default 1)' },
  schedule: { type: 'string', help: 'pipeline schedule: gpipe|1f1b|interleaved|zero-bubble (default 1f1b, interleaved with --interleave)' },
  attention: { type: 'string', help: 'flash|flash-v1|materialized (default flash: FlashAttention-2)' },
  nodes: { type: 'number', help: 'nodes of the cluster\'s kind to plan on (grows or shrinks a preset, same topology)' },
  'seq-len': { type: 'number', help: 'sequence length (default: the model context)' },
  gpus: { type: 'number', help: 'GPUs to use (default: all of the cluster, or tp x pp x dp)' },
  tp: { type: 'number', help: 'tensor-parallel degree (giving tp, pp or dp evaluates one layout)' },
  pp: { type: 'number', help: 'pipeline-parallel degree' },
  dp: { type: 'number', help: 'data-parallel degree (default gpus / (tp x pp))' },
  'global-batch': { type: 'number', help: 'sequences per optimizer step (default: the preset\'s published batch)' },
  'micro-batch': { type: 'number', help: 'sequences per micro-batch (default 1)' },
  zero: { type: 'number', help: 'ZeRO stage 0-3 (default 0)' },
  recompute: { type: 'string', help: 'activation recomputation: none|selective|full (default full)' },
  'sequence-parallel': { type: 'boolean', help: 'Megatron sequence parallelism (needs tp > 1)' },
  'tp-comm-overlap': { type: 'boolean', help: 'overlap tensor-parallel collectives with GEMMs as Transformer Engine\'s userbuffers do (Megatron-Core --tp-comm-overlap; needs --sequence-parallel)' },
  'cross-entropy': { type: 'string', help: 'loss kernels: unfused (Megatron\'s fp32 vocab-parallel cross-entropy) or fused (one kernel each way, flash-attn\'s) (default unfused)' },
  'overlap-param-gather': { type: 'boolean', help: 'gather updated weights behind the next forward (Megatron-Core --overlap-param-gather; needs --zero 1 or more)' },
  interleave: { type: 'number', help: 'virtual pipeline stages per GPU (default 1)' },
  dtype: { type: 'string', help: `training precision: ${DTYPES.join('|')} (default bf16, or fp16 where the GPU has no bf16)` },
  tokens: { type: 'number', help: 'tokens to train on (default 300e9)' },
  top: { type: 'number', help: 'layouts to show when searching', default: 5 },
  versus: { type: 'string', help: 'when searching, explain the best against this layout, TPxPP (e.g. 8x16)' },
  'node-mtbf-hours': { type: 'number', help: 'mean time between failures of one node', default: 6000 },
  'checkpoint-s': { type: 'number', help: 'seconds to write one checkpoint', default: 60 },
  'restart-s': { type: 'number', help: 'seconds from a failure to training again', default: 600 },
  json: { type: 'boolean', help: 'print one JSON object' },
  calibrate: { type: 'boolean', help: 'measure this machine and write a machine spec (see --out); with --layers --heads --hidden --vocab --seq-len --micro-batch, also time that model\'s programs, from which --machine then predicts its local layouts' },
  out: { type: 'string', help: 'where --calibrate writes the machine spec (under the output directory out/, as train writes its runs)', default: 'out/atscale-machine.json' },
  threads: { type: 'number', help: 'threads for --calibrate GEMMs (default: all cores)' },
  'background-load': { type: 'number', help: 'with --machine and a local layout: other programs\' runnable threads while it runs (default: the load its calibration saw)' },
  machine: { type: 'string', help: 'a machine spec from --calibrate: predict the CPU training step of --model on this machine (with --dp/--pp/--interleave/--micro-batch/--recompute: of that layout under atscale launch, one thread per rank)' },
};

function modelFrom(f: FlagValues): ModelSpec {
  const custom = ['layers', 'hidden', 'heads', 'vocab', 'kv-heads', 'experts'].filter((k) => f[k.replace(/-(.)/g, (_, c: string) => c.toUpperCase())] !== undefined);
  if (f.model !== undefined) {
    if (custom.length > 0) throw new PlanInputError(`give either --model or --layers/--hidden/--heads/--vocab, not both (got --model and --${custom.join(', --')})`);
    return modelPreset(String(f.model));
  }
  if (custom.length === 0) throw new PlanInputError('no model: give --model PRESET, or --layers, --hidden, --heads, --vocab and --seq-len');
  const json: Record<string, unknown> = { name: 'custom', layers: f.layers, hidden: f.hidden, heads: f.heads, vocab: f.vocab, seqLen: f.seqLen ?? 2048 };
  if (f.ffn !== undefined) json.ffn = f.ffn;
  if (f.kvHeads !== undefined) json.kvHeads = f.kvHeads;
  if (f.llama) Object.assign(json, { gatedMlp: true, bias: 'none', norm: 'rmsnorm', positions: 'rope' });
  if (f.swiglu) json.gatedMlp = true;
  if (f.untied) json.tiedEmbeddings = false;
  if (f.experts !== undefined) json.moe = { experts: f.experts, topK: f.topK ?? 2, capacityFactor: f.capacityFactor ?? 1 };
  else if (f.topK !== undefined || f.capacityFactor !== undefined) throw new PlanInputError('--top-k and --capacity-factor describe a mixture of experts: give --experts too');
  if (f.globalBatch !== undefined) json.globalBatch = f.globalBatch;
  try {
    return checkModel(json, 'custom model (flags)');
  } catch (e) {
    // Name the flag, not the JSON key it fills.
    const flag: Record<string, string> = { kvHeads: '--kv-heads', topK: '--top-k', capacityFactor: '--capacity-factor', experts: '--experts', seqLen: '--seq-len' };
    if (e instanceof PlanInputError) throw new PlanInputError(e.message.replace(/key '(\w+)'/g, (m, k: string) => (flag[k] ? `${flag[k]} ('${k}')` : `--${k.replace(/[A-Z]/g, (c) => '-' + c.toLowerCase())}`)));
    throw e;
  }
}

function layoutFrom(f: FlagValues): Partial<TrainingSpec> {
  const l: Partial<TrainingSpec> = {};
  const n = (k: string) => (f[k] === undefined ? undefined : Number(f[k]));
  for (const [flag, key] of [['gpus', 'gpus'], ['tp', 'tp'], ['pp', 'pp'], ['dp', 'dp'], ['cp', 'cp'], ['ep', 'ep'], ['globalBatch', 'globalBatch'], ['microBatch', 'microBatch'], ['seqLen', 'seqLen'], ['interleave', 'interleave'], ['tokens', 'tokens']] as const) {
    const v = n(flag);
    if (v !== undefined) l[key] = v;
  }
  if (f.zero !== undefined) {
    if (![0, 1, 2, 3].includes(Number(f.zero))) throw new PlanInputError(`--zero must be 0, 1, 2 or 3, got ${f.zero}`);
    l.zero = Number(f.zero) as 0 | 1 | 2 | 3;
  }
  if (f.recompute !== undefined) {
    if (!['none', 'selective', 'full'].includes(String(f.recompute))) throw new PlanInputError(`--recompute must be none, selective or full, got '${f.recompute}'`);
    l.recompute = f.recompute as Recompute;
  }
  if (f.dtype !== undefined) {
    if (!DTYPES.includes(f.dtype as Dtype)) throw new PlanInputError(`--dtype must be one of ${DTYPES.join(', ')}, got '${f.dtype}'`);
    l.dtype = f.dtype as Dtype;
  }
  if (f.sequenceParallel !== undefined) l.sequenceParallel = Boolean(f.sequenceParallel);
  if (f.tpCommOverlap !== undefined) l.tpCommOverlap = Boolean(f.tpCommOverlap);
  if (f.overlapParamGather !== undefined) l.overlapParamGather = Boolean(f.overlapParamGather);
  if (f.crossEntropy !== undefined) {
    if (f.crossEntropy !== 'unfused' && f.crossEntropy !== 'fused') throw new PlanInputError(`--cross-entropy must be unfused or fused, got '${f.crossEntropy}'`);
    l.crossEntropy = f.crossEntropy;
  }
  if (f.schedule !== undefined) {
    if (!SCHEDULES.includes(f.schedule as Schedule)) throw new PlanInputError(`--schedule must be one of ${SCHEDULES.join(', ')}, got '${f.schedule}'`);
    l.schedule = f.schedule as Schedule;
  }
  if (f.attention !== undefined) {
    if (!ATTENTIONS.includes(f.attention as Attention)) throw new PlanInputError(`--attention must be one of ${ATTENTIONS.join(', ')}, got '${f.attention}'`);
    l.attention = f.attention as Attention;
  }
  return l;
}

/** The cluster to plan on: a preset or file, grown to --nodes, or to --gpus beyond its size. */
function clusterFrom(f: FlagValues): ClusterSpec {
  const c = loadCluster(String(f.cluster));
  if (f.nodes !== undefined) {
    const nodes = Number(f.nodes);
    if (f.gpus !== undefined && Number(f.gpus) > nodes * c.node.gpusPerNode) {
      throw new PlanInputError(`--gpus ${f.gpus} is more than --nodes ${nodes} x ${c.node.gpusPerNode} GPUs per node = ${nodes * c.node.gpusPerNode}`);
    }
    return scaleCluster(c, nodes);
  }
  if (f.gpus !== undefined && Number(f.gpus) > clusterGpus(c)) return scaleCluster(c, Math.ceil(Number(f.gpus) / c.node.gpusPerNode));
  return c;
}

function reliabilityOf(r: PlanResult, c: ClusterSpec, f: FlagValues) {
  const nodes = Math.ceil(r.training.gpus / c.node.gpusPerNode);
  const input = { nodes, nodeMtbfHours: Number(f.nodeMtbfHours), checkpointSeconds: Number(f.checkpointS), restartSeconds: Number(f.restartS), computeSeconds: r.days * 86400 };
  return { input, result: planReliability(input) };
}

function evaluateOne(m: ModelSpec, c: ClusterSpec, f: FlagValues): number {
  const r = evaluate(m, c, resolveLayout(m, c, layoutFrom(f)));
  const rel = reliabilityOf(r, c, f);
  if (f.json) {
    console.log(JSON.stringify({ ...toJson(r), reliability: { ...rel.input, ...rel.result } }));
  } else {
    console.log(formatPlan(r));
    console.log('');
    console.log(formatReliability(rel.result, rel.input.nodeMtbfHours, rel.input.checkpointSeconds, rel.input.restartSeconds));
  }
  return r.fits ? 0 : 1;
}

function search(m: ModelSpec, c: ClusterSpec, f: FlagValues): number {
  const fixed = layoutFrom(f);
  const gpus = fixed.gpus ?? clusterGpus(c);
  const s = searchLayouts(m, c, gpus, fixed, Number(f.top));
  const best = s.best[0];
  let versus: PlanResult | undefined;
  if (f.versus !== undefined) {
    const match = /^(\d+)x(\d+)$/.exec(String(f.versus));
    if (!match) throw new PlanInputError(`--versus must look like TPxPP, e.g. 8x16; got '${f.versus}'`);
    // As in the search, the overlaps apply where the reference layout allows them.
    const tp = Number(match[1]);
    const reference: Partial<TrainingSpec> = { ...fixed, gpus, tp, pp: Number(match[2]), dp: undefined };
    delete reference.tpCommOverlap;
    delete reference.overlapParamGather;
    Object.assign(reference, overlapsFor(fixed, c, tp, fixed.sequenceParallel ?? false, fixed.zero ?? 0));
    versus = evaluate(m, c, resolveLayout(m, c, reference));
  } else if (s.best.length > 1) {
    // Without a reference, explain the best against the fastest layout with other degrees.
    versus = s.best.find((r) => r.training.tp !== best!.training.tp || r.training.pp !== best!.training.pp) ?? s.best[1];
  }
  if (f.json) {
    console.log(JSON.stringify({ best: s.best.map(toJson), evaluated: s.evaluated, rejected: s.rejected, versus: versus ? toJson(versus) : undefined }));
    return best ? 0 : 1;
  }
  console.log(`searching layouts of ${m.name} on ${gpus} GPUs of ${c.name} (global batch ${fixed.globalBatch ?? m.globalBatch})\n`);
  console.log(formatSearch(s));
  if (!best) {
    const batch = fixed.globalBatch ?? m.globalBatch!;
    if (s.evaluated === 0) {
      const usable = largestUsableGpus(m, c.node.gpusPerNode, gpus, batch);
      console.log(`\nno layout divides the work: tp x pp x dp must be ${gpus} with dp dividing the global batch ${batch}; the most GPUs this model and batch can use up to ${gpus} is ${usable} (try --gpus ${usable}, or a larger --global-batch)`);
    } else {
      console.log('\nno layout fits in memory: use more GPUs, or let the search use recomputation and ZeRO (drop --recompute / --zero)');
    }
    return 1;
  }
  if (versus) console.log(`\nwhy the best wins:\n${explain(best, versus).join('\n')}`);
  console.log(`\nthe best in full (${describeLayout(best.training)}):\n`);
  console.log(formatPlan(best));
  return 0;
}

/** Streaming copy bandwidth: bytes read + written per second, median of several passes, of
 * two arrays of `n` float64 (the default, 128 MB each, is far beyond any cache). */
function measureMemoryBandwidthGBs(n = 16 * 1024 * 1024): number {
  const a = new Float64Array(n).fill(1);
  const b = new Float64Array(n);
  const rates: number[] = [];
  const reps = Math.max(1, Math.round((16 * 1024 * 1024) / n));
  for (let i = 0; i < 7; i++) {
    const t0 = process.hrtime.bigint();
    for (let r = 0; r < reps; r++) b.set(a);
    const s = Number(process.hrtime.bigint() - t0) / 1e9;
    if (i > 0) rates.push((2 * 8 * n * reps) / s / 1e9);
  }
  rates.sort((x, y) => x - y);
  return rates[Math.floor(rates.length / 2)]!;
}

/** All-reduce bus bandwidth between 2 worker processes on this host (the collectives benchmark,
 * run as a child so its worker processes are its own); undefined, with a warning, if it fails. */
function measureLoopbackBusbw(): number | undefined {
  const cli = fileURLToPath(new URL('./main.js', import.meta.url));
  const r = spawnSync(process.execPath, [cli, 'bench', 'collectives', '--ranks', '2', '--sizes', String(16 << 20), '--ops', 'all_reduce', '--gloo=false', '--json'], { encoding: 'utf8', timeout: 300_000 });
  const line = r.stdout?.split('\n').find((l) => l.includes('"impl":"atscale"') && l.includes('"op":"all_reduce"'));
  if (r.status !== 0 || !line) {
    console.error(`warning: loopback all-reduce not measured (atscale bench collectives exited ${r.status}): ${(r.stderr ?? '').slice(-300)}`);
    return undefined;
  }
  return (JSON.parse(line) as { busbw_gbps: number }).busbw_gbps;
}

/** The pipeline's handoff and small all-reduce between 2 processes (engine/pipeline/link-probe);
 * undefined, with a warning, if it fails. A message is copied at least once, so its per-byte
 * rate is at most the copy bandwidth. */
async function measurePipelineLinks(memBandwidthGBs: number) {
  try {
    const { measureLinks } = await import('../engine/pipeline/link-probe.js');
    return await measureLinks({ minSecondsPerByte: 1 / (memBandwidthGBs * 1e9) });
  } catch (e) {
    console.error(`warning: pipeline handoff not measured: ${(e as Error).message.slice(-300)}`);
    return undefined;
  }
}

async function calibrate(f: FlagValues): Promise<number> {
  const threads = f.threads !== undefined ? Number(f.threads) : os.availableParallelism();
  const probePath = '../runtime/gemm-probe.js';
  let probe: { measureGemmKernelSeconds(s: { batch: number; m: number; k: number; n: number }, threads: number): Promise<number>; measureBoundarySeconds(elements: number, threads: number): Promise<number>; measureOutputCopySecondsPerByte(threads: number): Promise<number> };
  try {
    probe = (await import(probePath)) as typeof probe;
  } catch (e) {
    console.error(`atscale plan --calibrate: the runtime is not built (cannot load src/runtime/gemm-probe: ${(e as Error).message.split('\n')[0]}); run npm run build once the runtime exists`);
    return 1;
  }
  // A model shape with --calibrate: its programs are timed too (checked before anything runs).
  const profiled = profiledShapeFrom(f);
  const load = os.loadavg()[0]!;
  const cpu0 = cpuSample();
  if (load > os.availableParallelism() / 2) {
    console.error(`warning: this machine is busy (load average ${load.toFixed(1)} on ${os.availableParallelism()} cores); measurements will understate it`);
  }
  const gemmGflopsByN: Record<number, number> = {};
  // In-graph kernel time (a graph with more products timed against one with fewer), so neither
  // the session run nor copying results out is counted: a training step keeps its tensors inside.
  for (const n of [64, 128, 256, 512, 1024, 2048]) {
    gemmGflopsByN[n] = (2 * n ** 3) / (await probe.measureGemmKernelSeconds({ batch: 1, m: n, k: n, n }, threads)) / 1e9;
    if (!f.json) console.log(`GEMM ${n}x${n}x${n}, ${threads} threads: ${gemmGflopsByN[n]!.toFixed(1)} GFLOP/s`);
  }
  const memBandwidthGBs = measureMemoryBandwidthGBs();
  if (!f.json) console.log(`memory bandwidth (copy): ${memBandwidthGBs.toFixed(1)} GB/s`);
  const cacheBytes = lastLevelCacheBytes();
  // Copy bandwidth within the L3 (two arrays of an eighth of it each): the bound on the small step's rate.
  const cacheCopyGBs = cacheBytes ? measureMemoryBandwidthGBs(Math.floor(cacheBytes / 8 / 8)) : memBandwidthGBs;
  if (!f.json) console.log(cacheBytes ? `last-level cache ${(cacheBytes / 2 ** 20).toFixed(0)} MiB, copy bandwidth within it ${cacheCopyGBs.toFixed(1)} GB/s` : 'last-level cache size unknown (no /sys/devices/system/cpu/cpu0/cache): one non-GEMM rate for every working set');
  const sessionRunSeconds = await probe.measureBoundarySeconds(1, threads);
  if (!f.json) console.log(`one session run (one-element graph): ${(sessionRunSeconds * 1e6).toFixed(0)} us`);
  const outputCopySecondsPerByte = await probe.measureOutputCopySecondsPerByte(threads);
  if (!f.json) console.log(`a session output into a reused JavaScript buffer: ${(1e-9 / outputCopySecondsPerByte).toFixed(2)} GB/s`);
  // Real training steps of a fixed calibration shape: how fast atscale's non-GEMM kernels move
  // data here (the GEMM part of their time is taken out with the table above), on many rows
  // (tensors out of the L3) and on few (within it).
  const { timeTrainingStepsTogether } = await import('../engine/step-timer.js');
  const partial = machineFromMeasurements({ gemmGflopsByN, memBandwidthGBs }, { name: os.hostname(), threads, memoryGB: os.totalmem() / 2 ** 30 });
  const arch = (px: GptShape) => ({ nLayer: px.nLayer, nHead: px.nHead, nEmbd: px.nEmbd, blockSize: px.blockSize, vocabSize: px.vocab, bias: false, dropout: px.dropout });
  // The two in alternating rounds (1 large step, 8 small ones each), so that load on a shared
  // host moves both: the rule between them (working-set.ts) amplifies their difference.
  const proxies = [[CALIBRATION_PROXY, 1, memBandwidthGBs], [CALIBRATION_PROXY_SMALL, 8, cacheCopyGBs]] as const;
  const proxyTimes = await timeTrainingStepsTogether(proxies.map(([px, reps]) => ({ arch: arch(px), batch: px.batch, reps })), { threads, rounds: 7 });
  const elementwiseAt: ElementwisePoint[] = proxies.map(([px, , copyGBs], i) => elementwisePoint(proxyTimes[i]!.msPerIter, partial, px, copyGBs));
  proxies.forEach(([px], i) => {
    if (!f.json) console.log(`calibration step (${px.nLayer} layer, ${px.nEmbd} wide, context ${px.blockSize}, batch ${px.batch}, tensors ${(elementwiseAt[i]!.workingSetBytes / 1e6).toFixed(0)} MB): ${proxyTimes[i]!.msPerIter.toFixed(1)} ms; non-GEMM kernels move ${elementwiseAt[i]!.GBs.toFixed(1)} GB/s`);
  });
  const elementwiseGBs = elementwiseAt[0]!.GBs;
  // The forward's share of forward + backward (what full recomputation runs again): the small
  // step's shape without dropout (a recomputed block draws no new masks) on 2 and on 8 rows,
  // step and forward pass, in alternating rounds; the differences leave out AdamW and every
  // fixed cost.
  const plain = { ...CALIBRATION_PROXY_SMALL, dropout: 0 };
  const timed = await timeTrainingStepsTogether([{ arch: arch(plain), batch: plain.batch, reps: 4 }, { arch: arch(plain), batch: 4 * plain.batch, reps: 1 }], { threads, rounds: 7, forward: true });
  const forwardFraction = forwardFractionFromSteps(timed[0]!, timed[1]!);
  if (!f.json) console.log(`forward pass on ${plain.batch} / ${4 * plain.batch} rows: ${timed.map((t) => `${t.forwardMs!.toFixed(1)} of ${t.msPerIter.toFixed(1)} ms`).join(' / ')}: ${forwardFraction === undefined ? 'the two contradict each other (not kept)' : `${(100 * forwardFraction).toFixed(0)}% of forward + backward`}`);
  const loopbackBusbwGBs = measureLoopbackBusbw();
  if (!f.json) console.log(loopbackBusbwGBs === undefined ? 'loopback all-reduce: not measured (see the warning above)' : `loopback all-reduce, 2 ranks, 16 MiB: ${loopbackBusbwGBs.toFixed(2)} GB/s bus bandwidth`);
  // What a pipeline pays to talk: a stage's handoff through the engine's transport between two
  // processes, and a small all-reduce's latency.
  const links = await measurePipelineLinks(memBandwidthGBs);
  if (!f.json && links) console.log(`pipeline handoff between 2 processes: ${(links.handoffSeconds * 1e6).toFixed(0)} us + ${(1e-9 / links.handoffSecondsPerByte).toFixed(2)} GB/s; all-reduce of 2 floats: ${(links.smallAllReduceSeconds * 1e6).toFixed(0)} us`);
  // Other programs beside the calibration (its one measuring thread), from CPU time; the load
  // average where /proc is not there.
  const programs = profiled ? await measurePrograms(profiled, threads, os.availableParallelism(), f.json === true) : undefined;
  const cpu1 = cpuSample();
  const backgroundLoad = cpu0 && cpu1 ? backgroundThreads(cpu0, cpu1, 1, os.availableParallelism()) : load;
  if (!f.json) console.log(`other programs' runnable threads meanwhile: ${backgroundLoad.toFixed(2)} (load average at the start ${load.toFixed(2)})`);
  const spec = machineFromMeasurements(
    { gemmGflopsByN, memBandwidthGBs, elementwiseGBs, elementwiseAt, sessionRunSeconds, outputCopySecondsPerByte, ...(forwardFraction === undefined ? {} : { forwardFraction }), ...(cacheBytes === undefined ? {} : { cacheBytes }), backgroundLoad: Math.round(backgroundLoad * 100) / 100, ...(loopbackBusbwGBs === undefined ? {} : { loopbackBusbwGBs }), ...(links ? { handoffSeconds: links.handoffSeconds, handoffSecondsPerByte: links.handoffSecondsPerByte, smallAllReduceSeconds: links.smallAllReduceSeconds } : {}), ...(programs ? { programs } : {}) },
    { name: os.hostname(), threads, memoryGB: os.totalmem() / 2 ** 30, cpuModel: os.cpus()[0]?.model ?? 'CPU' },
  );
  mkdirSync(dirname(String(f.out)), { recursive: true });
  writeFileSync(String(f.out), JSON.stringify(spec, null, 2) + '\n');
  const predictions = predictPresets(spec);
  if (f.json) console.log(JSON.stringify({ machine: spec, written: f.out, predicted_ms_per_iter: predictions }));
  else {
    console.log(`wrote ${f.out}`);
    for (const [k, v] of Object.entries(predictions)) console.log(`predicted ${k} training step: ${v.toFixed(1)} ms/iter`);
  }
  return 0;
}

function predictPresets(spec: MachineSpec): Record<string, number> {
  const out: Record<string, number> = {};
  for (const name of ['cpu-small', 'shakespeare-char']) {
    const m = MODEL_PRESETS[name]!;
    const dropout = TRAIN_PRESETS[name]?.model.dropout ?? 0;
    out[name] = predictCpuStepMs({ nLayer: m.layers, nHead: m.heads, nEmbd: m.hidden, blockSize: m.seqLen, vocab: m.vocab, batch: m.globalBatch!, dropout }, spec);
  }
  return out;
}

function predictOnMachine(m: ModelSpec, f: FlagValues): number {
  let spec: MachineSpec;
  try {
    spec = checkMachine(JSON.parse(readFileSync(String(f.machine), 'utf8')) as Record<string, unknown>, String(f.machine));
  } catch (e) {
    if (e instanceof PlanInputError) throw e;
    throw new PlanInputError(`cannot read machine spec ${f.machine}: ${(e as Error).message}`);
  }
  const batch = Number(f.globalBatch ?? m.globalBatch ?? 1);
  const shape = { nLayer: m.layers, nHead: m.heads, nEmbd: m.hidden, blockSize: Number(f.seqLen ?? m.seqLen), vocab: m.vocab };
  if (['dp', 'pp', 'interleave', 'microBatch', 'recompute'].some((k) => f[k] !== undefined)) return predictLocalLayout(shape, batch, spec, f);
  if (f.backgroundLoad !== undefined) throw new PlanInputError('--background-load applies to a local layout: give one of --dp, --pp, --interleave, --micro-batch or --recompute with it');
  const ms = predictCpuStepMs({ ...shape, batch }, spec);
  if (f.json) console.log(JSON.stringify({ model: m.name, machine: spec.name, batch, predicted_ms_per_iter: ms }));
  else console.log(`${m.name}, batch ${batch}, on ${spec.name} (${spec.threads} threads): predicted ${ms.toFixed(1)} ms/iter`);
  return 0;
}

/** A layout run on this machine with atscale launch (one thread per rank): --dp, --pp,
 * --interleave, --micro-batch (rows per micro-batch on one replica) and --recompute. */
function predictLocalLayout(shape: Omit<GptShape, 'batch'>, batch: number, spec: MachineSpec, f: FlagValues): number {
  const dp = Number(f.dp ?? 1);
  const pp = Number(f.pp ?? 1);
  const v = Number(f.interleave ?? 1);
  const rows = Number(f.microBatch ?? batch / dp);
  const microBatches = batch / (dp * rows);
  if (!Number.isInteger(microBatches) || microBatches < 1) throw new PlanInputError(`--global-batch ${batch} is not a whole number of micro-batches of --micro-batch ${rows} rows on --dp ${dp} replicas (${batch} / (${dp} x ${rows}) = ${microBatches})`);
  const recompute = (f.recompute ?? (pp > 1 ? 'full' : 'none')) as Recompute;
  if (!['none', 'selective', 'full'].includes(recompute)) throw new PlanInputError(`--recompute must be none, selective or full, got '${recompute}'`);
  const layout = { dp, pp, v, microBatches, rows, recompute };
  const bg = f.backgroundLoad === undefined ? undefined : Number(f.backgroundLoad);
  // The instructions the trainer's pipeline ranks run (its schedule is data), timed one by one.
  const kind = f.schedule === undefined ? (v > 1 ? 'interleaved' : '1f1b') : String(f.schedule);
  if (!['gpipe', '1f1b', 'interleaved'].includes(kind)) throw new PlanInputError(`--schedule ${kind}: the engine runs gpipe, 1f1b or interleaved on a local layout`);
  let schedule;
  try {
    schedule = pp > 1 ? buildSchedule(kind as 'gpipe' | '1f1b' | 'interleaved', pp, v, microBatches) : undefined;
  } catch (e) {
    throw new PlanInputError(`--pp ${pp} --interleave ${v} with ${microBatches} micro-batches: ${(e as Error).message}`);
  }
  const r = predictLocalStepMs(shape, layout, spec, os.availableParallelism(), bg, schedule);
  if (f.json) console.log(JSON.stringify({ machine: spec.name, layout, predicted_ms_per_iter: r.ms, basis: r.basis, parts_ms: r.parts, handoffs: r.handoffs }));
  else console.log(`dp ${dp} x pp ${pp} (v ${v}), ${microBatches} micro-batches of ${rows} rows, recompute ${recompute}, on ${spec.name}: predicted ${r.ms.toFixed(1)} ms/iter (compute ${r.parts.compute.toFixed(1)}, bubble ${r.parts.bubble.toFixed(1)}, kept activations out of ONNX Runtime ${r.parts.stash.toFixed(1)}, point-to-point ${r.parts.pointToPoint.toFixed(1)} (${r.handoffs} handoffs), collectives ${r.parts.allReduce.toFixed(1)}, update ${r.parts.update.toFixed(1)}; costs from ${r.basis})`);
  return 0;
}

export async function run(argv: string[]): Promise<number> {
  const { flags, positional } = parseArgs(argv, { ...FLAGS, help: { type: 'boolean', help: 'show this help' } }, 'plan');
  if (flags.help) {
    console.log(formatHelp('plan', summary, FLAGS));
    return 0;
  }
  if (positional.length > 0) throw new UsageError(`atscale plan: unexpected argument '${positional[0]}' (flags start with --)`);
  try {
    if (flags.backgroundLoad !== undefined) {
      const bg = Number(flags.backgroundLoad);
      if (flags.machine === undefined) throw new PlanInputError('--background-load needs --machine (a spec from --calibrate) and a local layout: it is the load the local run shares the CPU with');
      if (!(bg >= 0 && bg <= 1024)) throw new PlanInputError(`--background-load must be between 0 and 1024 (runnable threads of other programs), got ${flags.backgroundLoad}`);
    }
    if (flags.calibrate) return await calibrate(flags);
    const model = modelFrom(flags);
    if (flags.machine !== undefined) return predictOnMachine(model, flags);
    const cluster = clusterFrom(flags);
    const oneLayout = ['tp', 'pp', 'dp', 'cp'].some((k) => flags[k] !== undefined);
    return oneLayout ? evaluateOne(model, cluster, flags) : search(model, cluster, flags);
  } catch (e) {
    if (e instanceof PlanInputError) throw new UsageError(`atscale plan: ${e.message}`);
    throw e;
  }
}
