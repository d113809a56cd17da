// Checks that a parallel layout is possible for a model and a cluster. Every error shows the
// arithmetic that failed and what would make it work.
import { type ClusterSpec, type ModelSpec, PlanInputError, RECOMPUTES, SCHEDULES, type TrainingSpec, clusterGpus, deepspeedEngine, defaultDtype, divisorList } from './specs.js';

/** What a user gives: anything left out is derived (dp from gpus) or defaulted. */
export type LayoutInput = Partial<TrainingSpec>;

function divisors(n: number): number[] {
  const out: number[] = [];
  for (let i = 1; i <= n; i++) if (n % i === 0) out.push(i);
  return out;
}

function near(n: number, options: number[]): string {
  const sorted = [...options].sort((x, y) => Math.abs(x - n) - Math.abs(y - n));
  return sorted.slice(0, 4).sort((x, y) => x - y).join(', ');
}

/** Fills in defaults and derived degrees, then checks every constraint. */
export function resolveLayout(m: ModelSpec, c: ClusterSpec, l: LayoutInput): TrainingSpec {
  const tp = l.tp ?? 1;
  const pp = l.pp ?? 1;
  const cp = l.cp ?? 1;
  const mp = tp * cp * pp;
  const named = cp > 1 ? `tp x cp x pp = ${tp} x ${cp} x ${pp}` : `tp x pp = ${tp} x ${pp}`;
  let gpus = l.gpus;
  let dp = l.dp;
  if (gpus === undefined) gpus = dp !== undefined ? mp * dp : clusterGpus(c);
  if (dp === undefined) {
    if (gpus % mp !== 0) {
      throw new PlanInputError(
        `--gpus ${gpus} is not divisible by ${named} = ${mp} (${gpus} / ${mp} = ${(gpus / mp).toFixed(2)}); ` +
          `use a GPU count that is a multiple of ${mp}, e.g. ${Math.max(1, Math.floor(gpus / mp)) * mp}`,
      );
    }
    dp = gpus / mp;
  }
  const seqLen = l.seqLen ?? m.seqLen;
  const globalBatch = l.globalBatch ?? m.globalBatch ?? dp;
  const t: TrainingSpec = {
    gpus,
    globalBatch,
    microBatch: l.microBatch ?? 1,
    seqLen,
    dtype: l.dtype ?? defaultDtype(c.node.gpu),
    tp,
    pp,
    dp,
    interleave: l.interleave ?? 1,
    zero: l.zero ?? 0,
    recompute: l.recompute ?? 'full',
    sequenceParallel: l.sequenceParallel ?? false,
    tokens: l.tokens ?? 300e9,
    cp,
    ep: l.ep ?? 1,
    schedule: l.schedule ?? ((l.interleave ?? 1) > 1 ? 'interleaved' : '1f1b'),
    attention: l.attention ?? 'flash',
  };
  if (l.gatherDtype !== undefined) t.gatherDtype = l.gatherDtype;
  if (l.stageLayers !== undefined) t.stageLayers = l.stageLayers;
  if (l.overlapGradReduce !== undefined) t.overlapGradReduce = l.overlapGradReduce;
  if (l.pipelineP2p !== undefined) t.pipelineP2p = l.pipelineP2p;
  if (l.tpCommOverlap !== undefined) t.tpCommOverlap = l.tpCommOverlap;
  if (l.crossEntropy !== undefined) t.crossEntropy = l.crossEntropy;
  if (l.overlapParamGather !== undefined) t.overlapParamGather = l.overlapParamGather;
  if (l.cpComm !== undefined) t.cpComm = l.cpComm;
  checkLayout(m, c, t);
  t.stageLayers = stageLayers(m, t);
  return t;
}

/**
 * Layers on each virtual pipeline stage (pp x interleave of them, in pipeline order). Layers
 * that divide evenly are split evenly, as Megatron does. Otherwise the embedding and the
 * output layer each count as one layer on the first and last stage (DeepSpeed's
 * 'type:transformer|embedding' partition, and how Llama 3 put 126 layers on 16 stages: one
 * layer fewer on the first and the last); a remainder goes to the middle stages.
 */
export function stageLayers(m: ModelSpec, t: TrainingSpec): number[] {
  const S = t.pp * t.interleave;
  if (t.stageLayers !== undefined) return [...t.stageLayers];
  if (m.layers % S === 0) return new Array<number>(S).fill(m.layers / S);
  const units = m.layers + 2;
  const base = Math.floor(units / S);
  const out = new Array<number>(S).fill(base);
  let extra = units - base * S;
  // Extras to the middle stages first (the ends already carry the embedding and output).
  for (let i = 1; i < S - 1 && extra > 0; i++, extra--) out[i]!++;
  for (let i = 0; extra > 0; i = S - 1, extra--) out[i]!++;
  out[0]!--;
  out[S - 1]!--;
  return out;
}

export function checkLayout(m: ModelSpec, c: ClusterSpec, t: TrainingSpec): void {
  const cp = t.cp ?? 1, ep = t.ep ?? 1;
  for (const key of ['gpus', 'tp', 'pp', 'dp', 'globalBatch', 'microBatch', 'seqLen', 'interleave', 'cp', 'ep'] as const) {
    const v = t[key] ?? 1;
    if (!Number.isInteger(v) || v < 1) throw new PlanInputError(`${key} must be a whole number of at least 1, got ${v}`);
  }
  if (t.tp * cp * t.pp * t.dp !== t.gpus) {
    const named = cp > 1 ? `tp x cp x pp x dp = ${t.tp} x ${cp} x ${t.pp} x ${t.dp}` : `tp x pp x dp = ${t.tp} x ${t.pp} x ${t.dp}`;
    throw new PlanInputError(
      `${named} = ${t.tp * cp * t.pp * t.dp}, but --gpus is ${t.gpus}: the degrees must multiply to the GPU count ` +
        `(leave --dp out to derive it: ${t.gpus} / (${t.tp} x ${cp > 1 ? `${cp} x ` : ''}${t.pp}) = ${t.gpus / (t.tp * cp * t.pp)})`,
    );
  }
  const have = clusterGpus(c);
  if (t.gpus > have) {
    throw new PlanInputError(
      `--gpus ${t.gpus} is more than cluster ${c.name} has: ${c.nodes} nodes x ${c.node.gpusPerNode} GPUs = ${have}; ` +
        `give --nodes ${Math.ceil(t.gpus / c.node.gpusPerNode)} (or let --gpus scale a preset) to grow it with the same node and topology`,
    );
  }
  const kv = m.kvHeads ?? m.heads;
  if (kv % t.tp !== 0) {
    throw new PlanInputError(
      `kv-heads ${kv} are not divisible by tp ${t.tp} (${kv} / ${t.tp} = ${(kv / t.tp).toFixed(2)}): each tensor-parallel rank needs whole key/value heads; use tp in {${divisorList(kv)}}`,
    );
  }
  if (cp > 1 && t.seqLen % (2 * cp) !== 0) {
    throw new PlanInputError(
      `seq-len ${t.seqLen} is not divisible by 2 x cp = ${2 * cp} (${t.seqLen} / ${2 * cp} = ${(t.seqLen / (2 * cp)).toFixed(2)}): context parallelism splits each sequence into 2 x cp chunks to balance the causal mask`,
    );
  }
  if (ep > 1) {
    if (!m.moe) throw new PlanInputError(`--ep ${ep} needs a mixture-of-experts model (--experts); this model has a dense MLP`);
    if (m.moe.experts % ep !== 0) throw new PlanInputError(`experts ${m.moe.experts} are not divisible by ep ${ep} (${m.moe.experts} / ${ep} = ${(m.moe.experts / ep).toFixed(2)}); use ep in {${divisorList(m.moe.experts)}}`);
    if ((t.dp * cp) % ep !== 0) throw new PlanInputError(`ep ${ep} must divide dp x cp = ${t.dp} x ${cp} = ${t.dp * cp}: expert-parallel ranks are taken from the data-parallel ones`);
  }
  const schedule = t.schedule ?? '1f1b';
  if (!SCHEDULES.includes(schedule)) throw new PlanInputError(`schedule must be one of ${SCHEDULES.join(', ')}, got '${schedule}'`);
  if (schedule === 'interleaved' && t.interleave < 2) throw new PlanInputError(`the interleaved schedule needs --interleave 2 or more (model chunks per GPU), got ${t.interleave}`);
  if (t.interleave > 1 && schedule !== 'interleaved') throw new PlanInputError(`--interleave ${t.interleave} runs the interleaved schedule; --schedule ${schedule} takes --interleave 1`);
  const p2pModes = ['scatter-gather', 'synchronous', 'blocking', 'blocking-full'];
  if (t.pipelineP2p !== undefined && !p2pModes.includes(t.pipelineP2p)) {
    throw new PlanInputError(`pipeline p2p must be one of ${p2pModes.join(', ')} (Megatron's scatter-gather, Megatron 2021's synchronous exchanges, DeepSpeed's engine with partitioned or full activations), got '${String(t.pipelineP2p)}'`);
  }
  if (t.pipelineP2p !== undefined && t.pipelineP2p !== 'scatter-gather' && schedule !== '1f1b' && schedule !== 'interleaved') {
    throw new PlanInputError(`pipeline p2p '${t.pipelineP2p}' models a framework's own 1F1B (or Megatron's interleaved) schedule; --schedule ${schedule} runs with the default scatter-gather p2p`);
  }
  if ((t.pipelineP2p === 'blocking' || t.pipelineP2p === 'blocking-full') && t.interleave > 1) {
    throw new PlanInputError(`pipeline p2p '${t.pipelineP2p}' is DeepSpeed's pipeline engine, whose TrainSchedule has no interleaving; give --interleave 1, got ${t.interleave}`);
  }
  if (t.tpCommOverlap && t.tp > 1 && !t.sequenceParallel) {
    throw new PlanInputError(`--tp-comm-overlap overlaps the all-gathers and reduce-scatters of sequence parallelism with the GEMMs; add --sequence-parallel (tp is ${t.tp})`);
  }
  if (t.tpCommOverlap && t.tp > 1 && c.node.intraNodeLink === 'pcie') {
    throw new PlanInputError(`--tp-comm-overlap runs Transformer Engine's userbuffers over NVLink; ${c.name}'s GPUs are joined by PCIe: leave it out`);
  }
  if (t.tpCommOverlap && t.tp > c.node.gpusPerNode) {
    throw new PlanInputError(`--tp-comm-overlap runs over NVLink inside one node: tp ${t.tp} is more than the ${c.node.gpusPerNode} GPUs of a ${c.name} node; use tp <= ${c.node.gpusPerNode}`);
  }
  if (t.crossEntropy !== undefined && t.crossEntropy !== 'unfused' && t.crossEntropy !== 'fused') {
    throw new PlanInputError(`cross-entropy must be 'unfused' (Megatron's fp32 vocab-parallel loss) or 'fused' (one kernel each way), got '${String(t.crossEntropy)}'`);
  }
  if (t.overlapParamGather && t.zero !== 1) {
    throw new PlanInputError(`--overlap-param-gather overlaps Megatron-Core's distributed optimizer's weight all-gather; it needs --zero 1 (the distributed optimizer), got --zero ${t.zero}`);
  }
  if (deepspeedEngine(t) && (t.tpCommOverlap || t.overlapParamGather)) {
    throw new PlanInputError(`--tp-comm-overlap and --overlap-param-gather are Megatron-Core's; pipeline p2p '${t.pipelineP2p}' is DeepSpeed's pipeline engine, which has neither`);
  }
  if (t.gatherDtype !== undefined && t.zero !== 3) throw new PlanInputError(`gather dtype applies to ZeRO-3 / FSDP weight gathers; it needs --zero 3, got --zero ${t.zero}`);
  if (m.heads % t.tp !== 0) {
    throw new PlanInputError(
      `heads ${m.heads} are not divisible by tp ${t.tp} (${m.heads} / ${t.tp} = ${(m.heads / t.tp).toFixed(2)}): each tensor-parallel rank needs whole heads; ` +
        `use tp in {${divisors(m.heads).filter((d) => d <= 64).join(', ')}}`,
    );
  }
  if (m.ffn % t.tp !== 0) throw new PlanInputError(`ffn ${m.ffn} is not divisible by tp ${t.tp} (${m.ffn} / ${t.tp} = ${(m.ffn / t.tp).toFixed(2)})`);
  // A vocabulary not divisible by tp is padded by Megatron; the planner just splits it evenly.
  const S = t.pp * t.interleave;
  if (t.stageLayers !== undefined) {
    const sum = t.stageLayers.reduce((a, b) => a + b, 0);
    // The first and last stage may hold only the embedding or only the output layer (Llama 3,
    // section 3.3.2); every other stage needs a layer.
    const bad = t.stageLayers.some((x, j) => !Number.isInteger(x) || x < (j === 0 || j === S - 1 ? 0 : 1));
    if (t.stageLayers.length !== S || sum !== m.layers || bad) {
      throw new PlanInputError(
        `stage layers [${t.stageLayers.join(', ')}] must be ${S} whole numbers (pp x interleave = ${t.pp} x ${t.interleave}), at least 1 except on the first and last stage, adding up to the ${m.layers} layers; they add up to ${sum}`,
      );
    }
  } else if (m.layers % S !== 0 && Math.floor((m.layers + 2) / S) < 1) {
    throw new PlanInputError(
      `layers ${m.layers} cannot fill pp x interleave = ${t.pp} x ${t.interleave} = ${S} stages unevenly: with the embedding and output counted as a layer each ` +
        `that is (${m.layers} + 2) / ${S} = ${((m.layers + 2) / S).toFixed(2)} per stage, and every stage needs at least one layer or the embedding or output; use pp in {${near(t.pp, divisors(m.layers))}}`,
    );
  }
  const per = t.microBatch * t.dp;
  if (t.globalBatch % per !== 0) {
    throw new PlanInputError(
      `global batch ${t.globalBatch} is not divisible by micro-batch x dp = ${t.microBatch} x ${t.dp} = ${per} ` +
        `(${t.globalBatch} / ${per} = ${(t.globalBatch / per).toFixed(2)}); use a global batch that is a multiple of ${per}, e.g. ${Math.max(1, Math.round(t.globalBatch / per)) * per}`,
    );
  }
  if (t.interleave > 1 && t.pp === 1) throw new PlanInputError(`interleave ${t.interleave} needs pipeline parallelism (pp > 1), got pp 1`);
  if (t.interleave > 1 && (t.globalBatch / per) % t.pp !== 0) {
    throw new PlanInputError(
      `the interleaved schedule needs the micro-batch count to be a multiple of pp: ${t.globalBatch} / (${t.microBatch} x ${t.dp}) = ${t.globalBatch / per} micro-batches, pp = ${t.pp}`,
    );
  }
  if (![0, 1, 2, 3].includes(t.zero)) throw new PlanInputError(`zero stage must be 0, 1, 2 or 3, got ${t.zero}`);
  if (!RECOMPUTES.includes(t.recompute)) throw new PlanInputError(`recompute must be one of ${RECOMPUTES.join(', ')}, got '${t.recompute}'`);
  if (t.sequenceParallel && t.tp === 1) throw new PlanInputError('sequence parallelism splits along tensor-parallel ranks: it needs tp > 1');
  if (t.seqLen > m.seqLen && (m.positions ?? 'learned') === 'learned') {
    throw new PlanInputError(`seq-len ${t.seqLen} is longer than the model's learned position table ${m.seqLen}`);
  }
  if (!(t.tokens > 0)) throw new PlanInputError(`tokens must be positive, got ${t.tokens}`);
}
