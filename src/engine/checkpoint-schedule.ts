// When the loop saves besides its evaluations: every N steps, or `auto`, the Young/Daly
// optimum (plan/reliability.ts) from the save stall the loop measured and the mean time
// between failures the user gives: tau = sqrt(2 delta M) to higher order (Daly 2006), in steps.
import { dalyInterval } from '../plan/reliability.js';

export type CheckpointInterval = number | 'auto';

export class CheckpointSchedule {
  /** Steps between saves; undefined: at evaluations only. */
  steps: number | undefined;
  /** The interval in seconds that `auto` chose last. */
  tauSeconds: number | undefined;

  constructor(private readonly interval: CheckpointInterval | undefined, private readonly mtbfHours?: number) {
    if (interval === 'auto' && !(mtbfHours !== undefined && mtbfHours > 0)) throw new Error('--checkpoint-interval auto needs --mtbf-hours H (the mean time between failures of the whole job)');
    // auto saves after the first step to measure its stall, then spaces saves by the optimum.
    this.steps = typeof interval === 'number' ? interval : interval === 'auto' ? 1 : undefined;
  }

  /** Whether a save is due after `done` steps when the last save was after `lastSaved` steps. */
  due(done: number, lastSaved: number): boolean {
    return this.steps !== undefined && done - lastSaved >= this.steps;
  }

  /** A save stalled training for stallS; steps take stepS. `auto` re-derives its interval. */
  record(stallS: number, stepS: number): void {
    if (this.interval !== 'auto' || !(stepS > 0)) return;
    this.tauSeconds = dalyInterval(Math.max(stallS, 1e-6), this.mtbfHours! * 3600);
    this.steps = Math.max(1, Math.round(this.tauSeconds / stepS));
  }
}
