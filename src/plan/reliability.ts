// Failures at scale: with N nodes the system fails N times as often as one node, so a long
// run must checkpoint. Young (1974) gives the interval that balances the time spent writing
// checkpoints against the work lost to a failure, sqrt(2 delta M); Daly (2006) refines it
// and gives the expected wall time of the whole run, hence its goodput.
import { PlanInputError } from './specs.js';

export interface ReliabilityInput {
  nodes: number;
  /** Mean time between failures of one node, hours. */
  nodeMtbfHours: number;
  /** Time to write one checkpoint, seconds (training pauses while it is written). */
  checkpointSeconds: number;
  /** Time from a failure to training again: detect, reschedule, reload, seconds. */
  restartSeconds: number;
  /** Failure-free compute time of the whole run, seconds. */
  computeSeconds: number;
}

export interface ReliabilityResult {
  systemMtbfHours: number;
  /** Young's first-order optimum, sqrt(2 delta M), seconds of compute between checkpoints. */
  youngIntervalS: number;
  /** Daly's higher-order optimum, seconds; the interval the goodput below assumes. */
  dalyIntervalS: number;
  expectedFailures: number;
  /** Expected wall-clock time of the whole run, seconds. */
  expectedWallSeconds: number;
  /** Useful compute / wall time. */
  goodput: number;
}

export function youngInterval(checkpointS: number, systemMtbfS: number): number {
  return Math.sqrt(2 * checkpointS * systemMtbfS);
}

/** Daly 2006: the optimum to higher order in delta/M; M itself once delta >= 2M. */
export function dalyInterval(checkpointS: number, systemMtbfS: number): number {
  const d = checkpointS, m = systemMtbfS;
  if (d >= 2 * m) return m;
  const x = Math.sqrt(d / (2 * m));
  return Math.sqrt(2 * d * m) * (1 + x / 3 + (x * x) / 9) - d;
}

/**
 * Daly 2006: expected wall time for Ts of work, checkpointing every tau (cost delta),
 * with exponential failures of mean M and restart cost R:
 * Tw = M e^(R/M) (e^((tau + delta)/M) - 1) Ts / tau.
 */
export function expectedWallSeconds(computeS: number, tauS: number, checkpointS: number, restartS: number, systemMtbfS: number): number {
  const m = systemMtbfS;
  return m * Math.exp(restartS / m) * Math.expm1((tauS + checkpointS) / m) * (computeS / tauS);
}

export function planReliability(r: ReliabilityInput): ReliabilityResult {
  for (const key of ['nodes', 'nodeMtbfHours', 'checkpointSeconds', 'computeSeconds'] as const) {
    if (!(r[key] > 0)) throw new PlanInputError(`reliability: ${key} must be positive, got ${r[key]}`);
  }
  if (!(r.restartSeconds >= 0)) throw new PlanInputError(`reliability: restartSeconds must be zero or more, got ${r.restartSeconds}`);
  const systemMtbfS = (r.nodeMtbfHours * 3600) / r.nodes;
  const tau = dalyInterval(r.checkpointSeconds, systemMtbfS);
  const wall = expectedWallSeconds(r.computeSeconds, tau, r.checkpointSeconds, r.restartSeconds, systemMtbfS);
  return {
    systemMtbfHours: systemMtbfS / 3600,
    youngIntervalS: youngInterval(r.checkpointSeconds, systemMtbfS),
    dalyIntervalS: tau,
    expectedFailures: wall / systemMtbfS,
    expectedWallSeconds: wall,
    goodput: r.computeSeconds / wall,
  };
}
