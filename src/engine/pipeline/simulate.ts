// Runs a schedule without a model: each rank executes its instructions in order, sends are
// queued per (sender, receiver, kind), a receive blocks until its message is at the head of
// its queue. Finds a deadlock (no rank can move), a message received out of order or never
// received, and counts each rank's idle time with forward = 1/v and backward = 2/v units
// (a chunk holds 1/v of the rank's layers; backward costs twice the forward).
import type { Instr, PipelineSchedule } from './schedule.js';

export interface SimulationResult {
  /** Time when the last rank finished. */
  makespan: number;
  /** Per rank: compute time and idle time (makespan - compute). */
  busy: number[];
  idle: number[];
  /** Per rank idle / compute: the bubble, (p-1)/m for 1F1B, (p-1)/(v*m) interleaved. */
  bubble: number[];
}

export class ScheduleError extends Error {
  override name = 'ScheduleError';
}

interface Msg {
  mb: number;
  /** Virtual stage that produced it. */
  stage: number;
  time: number;
}

export function simulate(s: PipelineSchedule, cost = { forward: 1, backward: 2 }): SimulationResult {
  const { p, v, m } = s;
  const queues = new Map<string, Msg[]>();
  const q = (src: number, dst: number, kind: string) => {
    const key = `${src}>${dst}:${kind}`;
    let a = queues.get(key);
    if (!a) queues.set(key, (a = []));
    return a;
  };
  const pc = new Array<number>(p).fill(0);
  const clock = new Array<number>(p).fill(0);
  const busy = new Array<number>(p).fill(0);
  const done = new Set<string>();
  const where = (r: number, i: Instr) => `rank ${r} instruction ${pc[r]} (${JSON.stringify(i)})`;
  const stages = p * v;

  for (let moved = true; moved; ) {
    moved = false;
    for (let r = 0; r < p; r++) {
      for (;;) {
        const i = s.ranks[r]![pc[r]!];
        if (!i) break;
        if (i.op === 'recv') {
          if (i.peer === r) throw new ScheduleError(`${where(r, i)}: a rank waits on itself`);
          const head = q(i.peer, r, i.kind)[0];
          if (!head) break;
          const want = i.kind === 'act' ? i.stage - 1 : i.stage + 1;
          if (head.mb !== i.mb || head.stage !== want) throw new ScheduleError(`${where(r, i)}: the next ${i.kind} from rank ${i.peer} is micro-batch ${head.mb} of stage ${head.stage}, expected micro-batch ${i.mb} of stage ${want}`);
          q(i.peer, r, i.kind).shift();
          clock[r] = Math.max(clock[r]!, head.time);
        } else if (i.op === 'send') {
          if (!done.has(`${i.kind === 'act' ? 'F' : 'B'}${i.mb}:${i.stage}`)) throw new ScheduleError(`${where(r, i)}: sends before computing it`);
          q(r, i.peer, i.kind).push({ mb: i.mb, stage: i.stage, time: clock[r]! });
        } else if (i.op === 'forward' || i.op === 'backward') {
          if (i.stage % p !== r || i.stage < 0 || i.stage >= stages) throw new ScheduleError(`${where(r, i)}: stage ${i.stage} does not live on rank ${r}`);
          const tag = `${i.op === 'forward' ? 'F' : 'B'}${i.mb}:${i.stage}`;
          if (done.has(tag)) throw new ScheduleError(`${where(r, i)}: computed twice`);
          // Local dependencies (same rank, adjacent stages when p = 1, or backward after forward).
          if (i.op === 'backward' && !done.has(`F${i.mb}:${i.stage}`)) throw new ScheduleError(`${where(r, i)}: backward before its forward`);
          const dep = i.op === 'forward' ? (i.stage > 0 ? `F${i.mb}:${i.stage - 1}` : null) : i.stage < stages - 1 ? `B${i.mb}:${i.stage + 1}` : null;
          if (dep && (i.stage + (i.op === 'forward' ? -1 : 1)) % p === r && !done.has(dep)) throw new ScheduleError(`${where(r, i)}: needs ${dep} first`);
          done.add(tag);
          const t = (i.op === 'forward' ? cost.forward : cost.backward) / v;
          clock[r] = clock[r]! + t;
          busy[r] = busy[r]! + t;
        }
        pc[r]!++;
        moved = true;
      }
    }
  }
  const stuck = s.ranks.map((is, r) => (pc[r]! < is.length ? where(r, is[pc[r]!]!) : null)).filter((x) => x !== null);
  if (stuck.length) throw new ScheduleError(`deadlock: ${stuck.join('; ')} wait(s) forever`);
  for (const [key, a] of queues) if (a.length) throw new ScheduleError(`${a.length} message(s) ${key} never received (first: micro-batch ${a[0]!.mb} of stage ${a[0]!.stage})`);
  for (let mb = 0; mb < m; mb++) {
    for (let st = 0; st < stages; st++) for (const k of ['F', 'B']) if (!done.has(`${k}${mb}:${st}`)) throw new ScheduleError(`${k === 'F' ? 'forward' : 'backward'} of micro-batch ${mb} on stage ${st} never runs`);
  }
  const makespan = Math.max(...clock);
  const idle = busy.map((b) => makespan - b);
  return { makespan, busy, idle, bubble: idle.map((x, r) => x / busy[r]!) };
}
