// torchrun-style restarts: when the worker group fails (a rank died, hung or exited non-zero),
// the launcher stops all of it and starts the whole group again, up to maxRestarts times. The
// workers are told which attempt they are (ATSCALE_RESTART_COUNT, torchrun's
// TORCHELASTIC_RESTART_COUNT), and `atscale train` then resumes from the newest complete
// checkpoint in its --out directory by itself, so the command line never changes.
import type { JobOutcome } from './supervisor.js';

export const RESTART_ENV = 'ATSCALE_RESTART_COUNT';

export interface ElasticResult {
  exitCode: number;
  restarts: number;
  /** One line: how many restarts and why, and how the job ended. */
  summary: string;
}

/**
 * Runs attempt 0, 1, ... until one succeeds, the launcher is interrupted, or maxRestarts
 * restarts have failed too. `start(attempt)` starts a group and resolves with its outcome.
 */
export async function runWithRestarts(maxRestarts: number, start: (attempt: number) => Promise<JobOutcome>, log: (line: string) => void): Promise<ElasticResult> {
  const causes: string[] = [];
  for (let attempt = 0; ; attempt++) {
    const outcome = await start(attempt);
    const why = outcome.message ?? `exit status ${outcome.exitCode}`;
    if (outcome.exitCode === 0 || outcome.interrupted || attempt >= maxRestarts) {
      const restarts = attempt;
      const history = causes.length ? ` (${causes.map((c, i) => `restart ${i + 1}: ${c}`).join('; ')})` : '';
      const end = outcome.exitCode === 0 ? 'succeeded' : outcome.interrupted ? `was interrupted: ${why}` : `failed: ${why}`;
      const summary = maxRestarts > 0 || restarts > 0 ? `job ${end} after ${restarts} of at most ${maxRestarts} restart${maxRestarts === 1 ? '' : 's'}${history}` : '';
      return { exitCode: outcome.exitCode, restarts, summary };
    }
    causes.push(why);
    log(`worker group failed (${why}); restarting it, attempt ${attempt + 2} of ${maxRestarts + 1}`);
  }
}
