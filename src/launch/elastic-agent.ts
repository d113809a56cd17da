// One node's launcher under `--nnodes MIN:MAX` (torchrun's elastic agent): join the rendezvous,
// run this node's workers for the round it is given, report how they ended, and on "stop" stop
// them and join again. The rendezvous decides when the job is over and with what status.
import type { JobOutcome } from './supervisor.js';
import type { RendezvousClient } from './rendezvous-client.js';
import type { RoundAssignment, ToLauncher } from './rendezvous-messages.js';

export interface RunningGroup {
  done: Promise<JobOutcome>;
  stop(signal: NodeJS.Signals): void;
}

export interface AgentOptions {
  client: RendezvousClient;
  nproc: number;
  /** Orders nodes in a round (its --node-rank; absent: after those that gave one). */
  prefer: number;
  host: string;
  start(round: RoundAssignment): RunningGroup;
  log(line: string): void;
}

export interface AgentEnd {
  exitCode: number;
  summary: string;
}

/** Runs rounds until the rendezvous ends the job; rejects when the rendezvous is lost. */
export async function runElasticAgent(o: AgentOptions): Promise<AgentEnd> {
  const join = () => o.client.send({ t: 'join', nproc: o.nproc, prefer: o.prefer, host: o.host });
  join();
  let pending: Promise<ToLauncher> | null = null;
  const nextMessage = () => (pending ??= o.client.next().finally(() => (pending = null)));
  for (;;) {
    const m = await nextMessage();
    if (m.t === 'end') return { exitCode: m.exitCode, summary: m.summary };
    if (m.t === 'stop') {
      join(); // nothing of ours runs
      continue;
    }
    if (m.t !== 'round') continue;
    const group = o.start(m);
    let outcome: JobOutcome | undefined;
    const raced = await Promise.race([group.done.then((r) => ({ r })), nextMessage().then((msg) => ({ msg }), (e: Error) => ({ lost: e }))]);
    if ('r' in raced) {
      outcome = raced.r;
      const f = outcome.failure;
      o.client.send({ t: 'result', round: m.round, exitCode: Math.min(255, outcome.exitCode), message: outcome.message ?? `exit status ${outcome.exitCode}`, bySignal: !!f && (f.signal !== null || !!f.hung) });
      continue; // then wait for "stop" (join again) or "end"
    }
    // The round ended elsewhere, or the rendezvous is gone: stop ours first.
    group.stop('SIGTERM');
    await group.done;
    if ('lost' in raced) throw raced.lost;
    const msg = raced.msg;
    if (msg.t === 'end') return { exitCode: msg.exitCode, summary: msg.summary };
    if (msg.t === 'stop') {
      o.log(`round ${m.round} stopped: ${msg.reason}; stopped this node's workers, joining the next round`);
      join();
    }
  }
}
