// Pipeline schedules whose point-to-point transfers are synchronous rendezvous, as the
// frameworks of the published 2021-22 runs ran them, simulated as an event timeline. In
// pipeline-sim.ts a stage's output leaves as soon as it is computed and arrives after the send
// time, whatever the receiver is doing. Here every transfer is one of the stage's own steps:
// it starts when both ends have reached it, the stage does nothing else until it is done, and
// which tensors travel together in one exchange is what the framework's code says:
// - Megatron-LM as of the SC21 artifact (examples/sc21, August 2021; megatron/schedules.py and
//   p2p_communication.py of that commit): every exchange is one batch_isend_irecv of the
//   tensors for that point, waited on and followed by torch.cuda.synchronize(); with
//   scatter-gather each received slice is then all-gathered across the tensor-parallel group.
//   The 1F1B schedule exchanges after each pass (send_forward_recv_backward after a forward,
//   send_backward_recv_forward after a backward). The interleaved schedule runs a forward and
//   a backward and only then exchanges both results at once
//   (send_forward_backward_recv_forward_backward): a forward's output waits for the backward
//   that follows it on the same GPU before it leaves.
// - DeepSpeed's PipelineEngine (deepspeed/runtime/pipe/schedule.py, TrainSchedule; engine.py):
//   2(m + p - 1) steps, each first exchanging with one neighbour through blocking send/recv
//   calls, one tensor at a time (SendActivation then RecvGrad, or RecvActivation then
//   SendGrad, as releases before March 2023 ordered them), then computing. With tensor parallelism a stage's output is sent as its
//   1/tp slice and all-gathered where it is used: once in the forward that receives it and,
//   in the backward, once to restore the stage's own partitioned output and once for the
//   received gradient (is_pipe_partitioned / is_grad_partitioned, both set when there is
//   model parallelism).
import type { PipelineResult } from './pipeline-sim.js';

export type ExchangeFramework = 'megatron-2021' | 'deepspeed';

export interface ExchangeInput {
  framework: ExchangeFramework;
  stages: number;
  /** Model chunks per stage (Megatron's interleaving); 1 for DeepSpeed. */
  chunks: number;
  microBatches: number;
  /** Per virtual stage (chunk x stages + stage): forward, and backward with recompute, seconds. */
  forward: number[];
  backward: number[];
  /** Seconds of one tensor's transfer between neighbouring stages once both ends are there. */
  wire: number;
  /** Seconds of the tensor-parallel all-gather of one received slice (0 when unsliced). */
  gather: number;
}

export interface ExchangeResult extends PipelineResult {
  /** Per stage: seconds spent transferring and gathering (not waiting for a partner). */
  comm: number[];
}

type Dir = 'sendNext' | 'recvPrev' | 'sendPrev' | 'recvNext';
/** Which op on the neighbour matches each op: the n-th send to the next stage is that stage's
 * n-th receive from its previous one (NCCL point-to-point between a pair is in order). */
const MATCH: Record<Dir, { peer: 1 | -1; dir: Dir }> = {
  sendNext: { peer: 1, dir: 'recvPrev' }, recvPrev: { peer: -1, dir: 'sendNext' },
  sendPrev: { peer: -1, dir: 'recvNext' }, recvNext: { peer: 1, dir: 'sendPrev' },
};

interface Op { dir: Dir; n: number; gathers: number }
type Item = { kind: 'C'; j: number; backward: boolean } | { kind: 'X'; ops: Op[] };

class Program {
  items: Item[] = [];
  private count: Record<Dir, number> = { sendNext: 0, recvPrev: 0, sendPrev: 0, recvNext: 0 };
  compute(j: number, backward: boolean) { this.items.push({ kind: 'C', j, backward }); }
  /** One exchange; `gathers` per received tensor. Empty exchanges are only a synchronize. */
  exchange(dirs: [Dir, boolean, number?][]) {
    const ops: Op[] = [];
    for (const [dir, on, gathers] of dirs) if (on) ops.push({ dir, n: this.count[dir]++, gathers: gathers ?? 0 });
    if (ops.length > 0) this.items.push({ kind: 'X', ops });
  }
}

/** Megatron-LM's 2021 1F1B and interleaved schedules, for rank r of p, v chunks, m micro-batches. */
function megatronProgram(p: number, v: number, m: number, r: number): Program {
  const P = new Program();
  const first = r === 0, last = r === p - 1;
  if (v === 1) {
    const warm = Math.min(p - r - 1, m), rest = m - warm;
    for (let k = 0; k < warm; k++) {
      P.exchange([['recvPrev', !first, 1]]);
      P.compute(r, false);
      P.exchange([['sendNext', !last]]);
    }
    if (rest > 0) P.exchange([['recvPrev', !first, 1]]);
    for (let k = 0; k < rest; k++) {
      P.compute(r, false);
      P.exchange([['sendNext', !last], ['recvNext', !last, 1]]);
      P.compute(r, true);
      P.exchange([['sendPrev', !first], ['recvPrev', !first && k < rest - 1, 1]]);
    }
    for (let k = 0; k < warm; k++) {
      P.exchange([['recvNext', !last, 1]]);
      P.compute(r, true);
      P.exchange([['sendPrev', !first]]);
    }
    return P;
  }
  const N = m * v;
  const allWarm = m === p;
  const warm = allWarm ? N : Math.min((p - r - 1) * 2 + (v - 1) * p, N);
  const rest = N - warm;
  const chunkOf = (k: number, forward: boolean) => {
    const c = Math.floor((((k % (p * v)) + p * v) % (p * v)) / p);
    return forward ? c : v - 1 - c;
  };
  const firstV = (c: number) => first && c === 0;
  const lastV = (c: number) => last && c === v - 1;
  const vj = (c: number) => c * p + r;
  P.exchange([['recvPrev', !first, 1]]);
  for (let k = 0; k < warm; k++) {
    const c = chunkOf(k, true);
    P.compute(vj(c), false);
    const recvPrev = !(first && chunkOf(k + 1, true) === 0) && k !== N - 1;
    // The last warm-up exchange also receives the first gradient.
    const recvNext = k === warm - 1 && !allWarm && !last;
    P.exchange([['sendNext', !lastV(c)], ['recvPrev', recvPrev, 1], ['recvNext', recvNext, 1]]);
  }
  for (let k = 0; k < rest; k++) {
    const fk = k + warm;
    const fc = chunkOf(fk, true), bc = chunkOf(k, false);
    P.compute(vj(fc), false);
    P.compute(vj(bc), true);
    let recvPrev = !(first && chunkOf(fk - (p - 1), true) === v - 1);
    const recvNext = !(last && chunkOf(k - (p - 1), false) === 0);
    if (k === rest - 1) recvPrev = false;
    P.exchange([['sendNext', !lastV(fc)], ['sendPrev', !firstV(bc)], ['recvPrev', recvPrev, 1], ['recvNext', recvNext, 1]]);
  }
  if (allWarm) P.exchange([['recvNext', !last, 1]]);
  for (let k = rest; k < N; k++) {
    const c = chunkOf(k, false);
    P.compute(vj(c), true);
    const recvNext = !(last && chunkOf(k + 1, false) === v - 1) && k !== N - 1;
    P.exchange([['sendPrev', !firstV(c)], ['recvNext', recvNext, 1]]);
  }
  return P;
}

/** DeepSpeed's TrainSchedule for stage r of p over m micro-batches (one op per blocking call). */
function deepspeedProgram(p: number, m: number, r: number): Program {
  const P = new Program();
  const first = r === 0, last = r === p - 1;
  const even = (x: number) => x % 2 === 0;
  const valid = (x: number) => x >= 0 && x < m;
  const stepToMb = (s: number): [number, boolean] => {
    if (even(s) && even(r)) return [Math.floor(s / 2) - Math.floor(r / 2), true];
    if (!even(s) && !even(r)) return [Math.floor((s - 1) / 2) - Math.floor(r / 2), true];
    if (even(s) && !even(r)) return [Math.floor(s / 2) - p + Math.floor((r + 1) / 2), false];
    return [Math.floor((s - 1) / 2) - p + 1 + Math.floor(r / 2), false];
  };
  let prev = -1;
  for (let s = 0; s < 2 * (m + p - 1); s++) {
    const [mb, forward] = stepToMb(s);
    // The order of the 2021-22 releases the runs used (reversed in March 2023, PR #2862).
    if (forward) {
      // The received activation slice is gathered by the forward that uses it.
      P.exchange([['recvPrev', valid(mb) && !first, 1]]);
      P.exchange([['sendPrev', valid(prev) && !first]]);
    } else {
      P.exchange([['sendNext', valid(prev) && !last]]);
      // The backward gathers its own partitioned output back and the received gradient.
      P.exchange([['recvNext', valid(mb) && !last, 2]]);
    }
    if (valid(mb)) P.compute(r, !forward);
    prev = mb;
  }
  return P;
}

export function simulateExchanges(x: ExchangeInput): ExchangeResult {
  const p = x.stages, v = x.chunks, m = x.microBatches;
  if (x.framework === 'deepspeed' && v !== 1) throw new Error('DeepSpeed\'s TrainSchedule has no interleaving (chunks must be 1)');
  const programs = Array.from({ length: p }, (_, r) => (x.framework === 'deepspeed' ? deepspeedProgram(p, m, r) : megatronProgram(p, v, m, r)).items);
  // Where each stage's n-th op of each direction sits, and when that exchange was reached.
  const at = programs.map((items) => {
    const idx: Record<Dir, number[]> = { sendNext: [], recvPrev: [], sendPrev: [], recvNext: [] };
    items.forEach((it, i) => { if (it.kind === 'X') for (const o of it.ops) idx[o.dir][o.n] = i; });
    return idx;
  });
  const posted = programs.map((items) => new Float64Array(items.length).fill(NaN));
  const clock = new Array<number>(p).fill(0);
  const busy = new Array<number>(p).fill(0);
  const comm = new Array<number>(p).fill(0);
  const lastBackward = new Array<number>(p).fill(0);
  const next = new Array<number>(p).fill(0);
  let remaining = programs.reduce((a, q) => a + q.length, 0);
  while (remaining > 0) {
    let progress = false;
    for (let r = 0; r < p; r++) {
      const items = programs[r]!;
      while (next[r]! < items.length) {
        const it = items[next[r]!]!;
        if (it.kind === 'C') {
          const d = it.backward ? x.backward[it.j]! : x.forward[it.j]!;
          clock[r] = clock[r]! + d;
          busy[r] = busy[r]! + d;
          if (it.backward) lastBackward[r] = d;
        } else {
          posted[r]![next[r]!] = clock[r]!;
          let start = clock[r]!, gathers = 0, sends = 0, recvs = 0, ready = true;
          for (const o of it.ops) {
            const mt = MATCH[o.dir];
            const q = (r + mt.peer + p) % p;
            const i = at[q]![mt.dir][o.n];
            if (i === undefined) throw new Error(`pipeline exchange simulation: stage ${r}'s ${o.dir} #${o.n} has no partner on stage ${q} (${x.framework}, p ${p}, v ${v}, m ${m}): a schedule bug`);
            const t = posted[q]![i]!;
            if (Number.isNaN(t)) { ready = false; break; }
            start = Math.max(start, t);
            if (o.dir.startsWith('recv')) { recvs++; gathers += o.gathers; } else sends++;
          }
          if (!ready) break; // the partner has not reached this exchange yet
          // Tensors going out share the GPU's link out (its NIC rail, or its NVLink ports),
          // tensors coming in share the link in; the two directions run at once.
          const cost = Math.max(sends, recvs) * x.wire + gathers * x.gather;
          clock[r] = start + cost;
          comm[r] = comm[r]! + cost;
        }
        next[r]!++;
        remaining--;
        progress = true;
      }
    }
    if (!progress) throw new Error(`pipeline exchange simulation deadlocked (${x.framework}, p ${p}, v ${v}, m ${m}): a schedule bug`);
  }
  return { makespan: Math.max(...clock), finish: clock, busy, lastBackward, comm };
}
