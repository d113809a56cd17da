// Runs one rank's schedule (schedule.ts) for one optimizer step: forwards and backwards through
// the StageRunner, activations and gradients over point-to-point links of the pipeline group.
// A send waits until its bytes are in the kernel; a receive blocks, and when it
// fails or times out the error names the peer rank and the micro-batch it waited for. Each
// message carries its (micro-batch, stage) tag, so a mismatched order is an error, not a
// silent mix-up.
import type { FloatArray } from '../../ir/dtype.js';
import type { HostValue } from '../../ir/value.js';
import type { ProcessGroup } from '../../dist/index.js';
import type { Instr } from './schedule.js';
import type { StageRunner } from './stage.js';
import { recvHandoff, sendHandoff } from './handoff.js';

export interface StepIO {
  /** Tokens and targets of micro-batch k (every rank gets them; stage 0 and the last use them). */
  batch(mb: number): { x: Int32Array; y: Int32Array };
  key(mb: number): HostValue | undefined;
  /** Scale of the loss gradient (1 / (micro-batches x data-parallel ranks)). */
  seed: number;
  /** Called with each instruction other than compute, send and receive (reduce, step). */
  onInstr?(i: Instr, lossSum: number): Promise<void>;
}

export interface Links {
  /** Activations and gradients travel on separate groups (channels) of the same ranks. */
  act: ProcessGroup;
  grad: ProcessGroup;
  /** Global rank of pipeline rank r, for messages. */
  globalRank(r: number): number;
}

export interface StepRecord {
  /** Sum of the last stage's micro-batch losses (0 elsewhere). */
  lossSum: number;
  /** Wall time of the schedule (compute + waiting), ms. */
  wallMs: number;
  /** Wall time from the start to the end of this rank's last forward or backward, ms: the
   * pipeline part of the step, whose idle share is the bubble. */
  computeSpanMs: number;
  /** Time in forward/backward programs, ms. */
  busyMs: number;
}

export async function runSchedule(instrs: Instr[], runner: StageRunner, links: Links, io: StepIO, me: number): Promise<StepRecord> {
  const t0 = performance.now();
  runner.busyMs = 0;
  const outbox = new Map<string, FloatArray>();
  const inbox = new Map<string, FloatArray>();
  let lossSum = 0;
  let computeEnd = t0;
  const key = (kind: string, mb: number, stage: number) => `${kind}:${mb}:${stage}`;
  const what = (i: { op: string; kind: string; mb: number; stage: number; peer: number }) =>
    `pipeline rank ${me} (stage ${i.stage}): ${i.op === 'send' ? 'sending' : 'receiving'} the ${i.kind === 'act' ? 'activation' : 'gradient'} of micro-batch ${i.mb} ${i.op === 'send' ? 'to' : 'from'} pipeline rank ${i.peer} (global rank ${links.globalRank(i.peer)})`;

  for (const i of instrs) {
    switch (i.op) {
      case 'forward': {
        const b = io.batch(i.mb);
        const x = i.stage === 0 ? undefined : takeInput(inbox, key('act', i.mb, i.stage), i.stage, i.mb);
        const y = await runner.forward(i.mb, i.stage, { idx: b.x, x }, io.key(i.mb));
        computeEnd = performance.now();
        if (i.stage === runner.lastStage) break;
        // The next stage on this rank (p = 1 inside an interleaved rank never happens; p >= 2
        // puts adjacent stages on different ranks), or a send below.
        outbox.set(key('act', i.mb, i.stage + 1), y);
        break;
      }
      case 'backward': {
        const b = io.batch(i.mb);
        const dy = i.stage === runner.lastStage ? undefined : takeInput(inbox, key('grad', i.mb, i.stage), i.stage, i.mb);
        const r = await runner.backward(i.mb, i.stage, { dy, targets: b.y, seed: io.seed }, io.key(i.mb));
        computeEnd = performance.now();
        if (r.loss !== undefined) lossSum += r.loss;
        if (r.dx) outbox.set(key('grad', i.mb, i.stage - 1), r.dx);
        break;
      }
      case 'send': {
        const next = i.kind === 'act' ? i.stage + 1 : i.stage - 1;
        const k = key(i.kind, i.mb, next);
        const data = outbox.get(k);
        if (!data) throw new Error(`${what(i)}: nothing to send (schedule sends before computing)`);
        outbox.delete(k);
        const g = i.kind === 'act' ? links.act : links.grad;
        // Awaited until its bytes are in the kernel (not until the peer reads them: the transport
        // reads every socket eagerly, so this cannot deadlock). ONNX Runtime's session.run holds
        // the event loop, so the part of a message beyond the socket buffer (212,992 bytes here)
        // would otherwise wait for this rank's next computation to end while its peer idles.
        try {
          await sendHandoff(g, data, i.mb, next, i.peer);
        } catch (e) {
          throw new Error(`${what(i)}: send failed: ${(e as Error).message}`);
        }
        break;
      }
      case 'recv': {
        const n = runner.act.reduce((a, b) => a * b, 1);
        const g = i.kind === 'act' ? links.act : links.grad;
        let got: Awaited<ReturnType<typeof recvHandoff>>;
        try {
          got = await recvHandoff(g, runner.dtype, n, i.peer);
        } catch (e) {
          throw new Error(`${what(i)}: ${(e as Error).message}`);
        }
        if (got.mb !== i.mb || got.stage !== i.stage) throw new Error(`${what(i)}: received micro-batch ${got.mb} for stage ${got.stage} instead; the ranks run different schedules`);
        inbox.set(key(i.kind, i.mb, i.stage), got.data);
        break;
      }
      default:
        try {
          await io.onInstr?.(i, lossSum);
        } catch (e) {
          // A peer lost after the last exchange shows up in the step's collectives: say so.
          const phase = i.op === 'reduce' ? 'reducing the gradients' : 'applying the update';
          throw new Error(`pipeline rank ${me}: ${phase} after the last micro-batch: ${(e as Error).message}`);
        }
    }
  }
  // Anything left in the outbox went to a stage on this rank that never ran: a schedule bug.
  if (outbox.size || inbox.size || runner.inFlight) throw new Error(`pipeline rank ${me}: the schedule left ${outbox.size} unsent, ${inbox.size} unused and ${runner.inFlight} unfinished micro-batch results`);
  return { lossSum, wallMs: performance.now() - t0, computeSpanMs: computeEnd - t0, busyMs: runner.busyMs };
}

function takeInput(inbox: Map<string, FloatArray>, k: string, stage: number, mb: number): FloatArray {
  const v = inbox.get(k);
  if (!v) throw new Error(`stage ${stage} of micro-batch ${mb} has no input (${k}); the schedule runs it before receiving`);
  inbox.delete(k);
  return v;
}
