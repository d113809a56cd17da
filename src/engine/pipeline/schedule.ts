// Pipeline schedules as data: a pure function of (pipeline ranks p, model chunks per rank v,
// micro-batches m) gives every rank its list of instructions, which one executor runs and a
// simulator checks (simulate.ts) without running a model. Virtual stage s (0 .. p*v-1) holds
// the s-th contiguous range of layers and lives on rank s % p (chunk floor(s / p)), as in
// Megatron-LM's interleaved schedule; v = 1 is the plain pipeline.
//
// Sends never block (the executor queues them); a receive blocks until its data arrived.
// Messages between two ranks are matched in order per kind (activation, gradient), so a
// schedule is correct when every rank receives each kind in the order its peer sent it.

export type MessageKind = 'act' | 'grad';

export type Instr =
  /** Wait for the activation (kind act) or its gradient (kind grad) that `stage` consumes. */
  | { op: 'recv'; kind: MessageKind; mb: number; stage: number; peer: number }
  | { op: 'forward'; mb: number; stage: number }
  | { op: 'backward'; mb: number; stage: number }
  /** Queue the output of `stage` (act: forward, grad: backward) to `peer`. */
  | { op: 'send'; kind: MessageKind; mb: number; stage: number; peer: number }
  /** Sum gradients over the data-parallel ranks and between tied embeddings. */
  | { op: 'reduce' }
  | { op: 'step' };

export interface PipelineSchedule {
  name: 'gpipe' | '1f1b' | 'interleaved';
  p: number;
  v: number;
  m: number;
  /** Instructions of each pipeline rank. */
  ranks: Instr[][];
}

type Compute = { op: 'forward' | 'backward'; mb: number; stage: number };

function check(p: number, v: number, m: number): void {
  for (const [k, x] of [['p', p], ['v', v], ['m', m]] as const) if (!Number.isInteger(x) || x < 1) throw new RangeError(`schedule: ${k} must be a positive integer, got ${x}`);
}

/** Inserts the receive before and the send after each computation, then reduce and step. */
function withMessages(compute: Compute[], rank: number, p: number, v: number): Instr[] {
  const last = p * v - 1;
  const out: Instr[] = [];
  for (const c of compute) {
    const fwd = c.op === 'forward';
    const from = fwd ? c.stage - 1 : c.stage + 1;
    const to = fwd ? c.stage + 1 : c.stage - 1;
    const kind: MessageKind = fwd ? 'act' : 'grad';
    if (from >= 0 && from <= last && from % p !== rank) out.push({ op: 'recv', kind, mb: c.mb, stage: c.stage, peer: from % p });
    out.push(c);
    if (to >= 0 && to <= last && to % p !== rank) out.push({ op: 'send', kind, mb: c.mb, stage: c.stage, peer: to % p });
  }
  out.push({ op: 'reduce' }, { op: 'step' });
  return out;
}

/** GPipe: every forward, then every backward (all m activations live at once). */
export function gpipe(p: number, m: number): PipelineSchedule {
  check(p, 1, m);
  const ranks = Array.from({ length: p }, (_, r) => {
    const c: Compute[] = [];
    for (let k = 0; k < m; k++) c.push({ op: 'forward', mb: k, stage: r });
    for (let k = 0; k < m; k++) c.push({ op: 'backward', mb: k, stage: r });
    return withMessages(c, r, p, 1);
  });
  return { name: 'gpipe', p, v: 1, m, ranks };
}

/** 1F1B (PipeDream-flush): p - r - 1 warm-up forwards, then one forward one backward, then
 * the remaining backwards; at most p micro-batches in flight on rank 0. */
export function oneFOneB(p: number, m: number): PipelineSchedule {
  check(p, 1, m);
  const ranks = Array.from({ length: p }, (_, r) => {
    const warm = Math.min(p - r - 1, m);
    const c: Compute[] = [];
    for (let k = 0; k < warm; k++) c.push({ op: 'forward', mb: k, stage: r });
    for (let k = 0; k < m - warm; k++) c.push({ op: 'forward', mb: warm + k, stage: r }, { op: 'backward', mb: k, stage: r });
    for (let k = m - warm; k < m; k++) c.push({ op: 'backward', mb: k, stage: r });
    return withMessages(c, r, p, 1);
  });
  return { name: '1f1b', p, v: 1, m, ranks };
}

/**
 * Interleaved 1F1B (Narayanan et al. 2021): micro-batches go through the v chunks of a rank
 * in groups of p, so the bubble shrinks to (p-1)/(v*m). Needs m % p == 0.
 */
export function interleaved(p: number, v: number, m: number): PipelineSchedule {
  check(p, v, m);
  if (v === 1) return { ...oneFOneB(p, m), name: 'interleaved' };
  if (m % p !== 0) throw new RangeError(`interleaved schedule: micro-batches ${m} must be a multiple of pp ${p}`);
  const total = m * v;
  // The k-th forward (backward) of a rank: which micro-batch, on which of its chunks.
  const at = (k: number, backward: boolean) => {
    const group = Math.floor(k / (p * v));
    const within = k % (p * v);
    const chunk = Math.floor(within / p);
    return { mb: group * p + (within % p), chunk: backward ? v - 1 - chunk : chunk };
  };
  const ranks = Array.from({ length: p }, (_, r) => {
    const warm = m === p ? total : Math.min((p - r - 1) * 2 + (v - 1) * p, total);
    const c: Compute[] = [];
    const f = (k: number): Compute => {
      const a = at(k, false);
      return { op: 'forward', mb: a.mb, stage: a.chunk * p + r };
    };
    const b = (k: number): Compute => {
      const a = at(k, true);
      return { op: 'backward', mb: a.mb, stage: a.chunk * p + r };
    };
    for (let k = 0; k < warm; k++) c.push(f(k));
    for (let k = 0; k < total - warm; k++) c.push(f(warm + k), b(k));
    for (let k = total - warm; k < total; k++) c.push(b(k));
    return withMessages(c, r, p, v);
  });
  return { name: 'interleaved', p, v, m, ranks };
}

/** The schedule a layout runs: GPipe when asked, interleaved with v > 1, 1F1B otherwise. */
export function buildSchedule(kind: 'gpipe' | '1f1b' | 'interleaved', p: number, v: number, m: number): PipelineSchedule {
  if (kind === 'gpipe') {
    if (v !== 1) throw new RangeError('the GPipe schedule has one chunk per rank (virtual size 1)');
    return gpipe(p, m);
  }
  return v > 1 ? interleaved(p, v, m) : oneFOneB(p, m);
}

/** One line per instruction, for printing a schedule. */
export function formatInstr(i: Instr): string {
  switch (i.op) {
    case 'forward':
    case 'backward':
      return `${i.op === 'forward' ? 'F' : 'B'} mb${i.mb} s${i.stage}`;
    case 'send':
    case 'recv':
      return `${i.op} ${i.kind} mb${i.mb} s${i.stage} ${i.op === 'send' ? 'to' : 'from'} r${i.peer}`;
    default:
      return i.op;
  }
}
