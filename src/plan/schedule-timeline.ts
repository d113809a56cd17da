// The step time of a pipeline schedule as the trainer runs it: every rank executes its list of
// instructions (the engine's schedule, engine/pipeline/schedule.ts, handed in as data: plan/
// imports nothing above it) in order, and the step ends when the last rank is done. What each
// instruction costs is the layout model's (local-layout.ts):
// - forward / backward: CPU seconds of that virtual stage's programs for one micro-batch;
// - send: the message is queued (the executor never waits for a send) and reaches its peer
//   one handoff later (a latency plus bytes over the link, measured by --calibrate through the
//   engine's own transport: framing, socket write and read, the copies into and out of JS);
// - recv: waits until the message at the head of its queue has arrived;
// - reduce / step: collectives; every member waits for the last one to arrive, then each pays
//   the collective's latency (not CPU) and, for step, the update program (CPU).
// Ranks share the host's cores: while `a` ranks compute at once, each runs `slowdown(a)` times
// slower than alone (a rank waiting for a message or a collective takes no core), so a bubble
// on one rank speeds up the others on a machine with fewer cores than ranks.

/** The instructions the planner reads of the engine's schedule (a structural subset of its Instr). */
export type TimelineInstr =
  | { op: 'forward' | 'backward'; mb: number; stage: number }
  | { op: 'send'; kind: 'act' | 'grad'; mb: number; stage: number; peer: number }
  | { op: 'recv'; kind: 'act' | 'grad'; mb: number; stage: number; peer: number }
  | { op: 'reduce' }
  | { op: 'step' };

export interface TimelineCosts {
  /** Per virtual stage: CPU seconds of one micro-batch's forward and backward, alone on a core. */
  forward: number[];
  backward: number[];
  /** Seconds from a send until its peer can receive it (one handoff). */
  handoff: number;
  /** Pipeline ranks that take part in the reduce (the tied embedding's first and last stage). */
  reduceMembers: number[];
  /** Seconds of the reduce's collectives once its members are there (latency, not CPU). */
  reduce: number;
  /** Seconds of the step's collective (the world all-reduce of norm and loss), then CPU seconds of the update. */
  stepCollective: number;
  update: number;
  /** How much slower each computing rank runs while `active` ranks compute (>= 1). */
  slowdown: (active: number) => number;
}

export interface TimelineResult {
  /** Seconds until the last rank finished its last instruction. */
  makespan: number;
  /** Per rank: wall seconds spent computing forwards and backwards (slowed by sharing). */
  computing: number[];
  /** Messages sent in the step (each one handoff). */
  handoffs: number;
}

interface Msg { mb: number; stage: number; at: number }
type State = { kind: 'ready' } | { kind: 'cpu'; left: number; fb: boolean; then?: State } | { kind: 'until'; t: number; then?: State } | { kind: 'recv' } | { kind: 'collective'; op: 'reduce' | 'step' };

export function simulateTimeline(ranks: TimelineInstr[][], c: TimelineCosts): TimelineResult {
  const p = ranks.length;
  const queues = new Map<string, Msg[]>();
  const q = (src: number, dst: number, kind: string) => {
    const k = `${src}>${dst}:${kind}`;
    let a = queues.get(k);
    if (!a) queues.set(k, (a = []));
    return a;
  };
  const pc = new Array<number>(p).fill(0);
  const state: State[] = Array.from({ length: p }, () => ({ kind: 'ready' }));
  const computing = new Array<number>(p).fill(0);
  const arrived = { reduce: new Set<number>(), step: new Set<number>() };
  let t = 0;
  let handoffs = 0;
  const collectiveMembers = (op: 'reduce' | 'step') => (op === 'reduce' ? c.reduceMembers : ranks.map((_, r) => r));
  for (let guard = 0; ; guard++) {
    if (guard > 1e6) throw new Error('pipeline timeline: no progress (a schedule bug)');
    // Run every rank's zero-time instructions until it computes, waits or finishes.
    for (let r = 0; r < p; r++) {
      for (;;) {
        const s = state[r]!;
        if (s.kind === 'until' && s.t <= t) state[r] = s.then ?? { kind: 'ready' };
        if (state[r]!.kind === 'recv') {
          const i = ranks[r]![pc[r]!] as Extract<TimelineInstr, { op: 'recv' }>;
          const head = q(i.peer, r, i.kind)[0];
          if (!head || head.at > t) break;
          q(i.peer, r, i.kind).shift();
          pc[r]!++;
          state[r] = { kind: 'ready' };
        }
        if (state[r]!.kind !== 'ready') break;
        const i = ranks[r]![pc[r]!];
        if (!i) break;
        if (i.op === 'forward' || i.op === 'backward') {
          state[r] = { kind: 'cpu', left: (i.op === 'forward' ? c.forward : c.backward)[i.stage]!, fb: true };
          pc[r]!++;
        } else if (i.op === 'send') {
          q(r, i.peer, i.kind).push({ mb: i.mb, stage: i.stage, at: t + c.handoff });
          handoffs++;
          pc[r]!++;
        } else if (i.op === 'recv') {
          state[r] = { kind: 'recv' };
        } else {
          const op: 'reduce' | 'step' = i.op;
          const members = collectiveMembers(op);
          pc[r]!++;
          if (!members.includes(r)) continue;
          arrived[op].add(r);
          state[r] = { kind: 'collective', op };
          if (members.every((m) => arrived[op].has(m))) {
            // The last member is here: every member pays the collective from now on.
            for (const m of members) {
              state[m] = op === 'reduce' ? { kind: 'until', t: t + c.reduce } : { kind: 'until', t: t + c.stepCollective, then: { kind: 'cpu', left: c.update, fb: false } };
            }
            arrived[op].clear();
          }
        }
      }
    }
    const active = state.filter((s) => s.kind === 'cpu').length;
    // The next event: a computation ending, a latency elapsing, or a message arriving for a waiting receiver.
    const slow = active > 0 ? c.slowdown(active) : 1;
    let dt = Infinity;
    for (let r = 0; r < p; r++) {
      const s = state[r]!;
      if (s.kind === 'cpu') dt = Math.min(dt, s.left * slow);
      else if (s.kind === 'until') dt = Math.min(dt, s.t - t);
      else if (s.kind === 'recv') {
        const i = ranks[r]![pc[r]!] as Extract<TimelineInstr, { op: 'recv' }>;
        const head = q(i.peer, r, i.kind)[0];
        if (head) dt = Math.min(dt, head.at - t);
      }
    }
    if (dt === Infinity) {
      const stuck = state.map((s, r) => (pc[r]! < ranks[r]!.length || s.kind !== 'ready' ? `rank ${r} at instruction ${pc[r]} (${s.kind})` : null)).filter((x) => x !== null);
      if (stuck.length) throw new Error(`pipeline timeline deadlocked: ${stuck.join('; ')}`);
      break;
    }
    dt = Math.max(dt, 0);
    t += dt;
    for (let r = 0; r < p; r++) {
      const s = state[r]!;
      if (s.kind !== 'cpu') continue;
      if (s.fb) computing[r] = computing[r]! + dt;
      s.left -= dt / slow;
      if (s.left <= 1e-15) state[r] = s.then ?? { kind: 'ready' };
    }
  }
  return { makespan: t, computing, handoffs };
}
