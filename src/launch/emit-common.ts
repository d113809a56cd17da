// What `--emit slurm` and `--emit kubernetes` share: the run they describe, and the
// `atscale launch` flags every node runs with.
import { TopologyError } from './topology.js';

export interface EmitOptions {
  jobName: string;
  nnodes: number;
  nprocPerNode: number;
  masterPort?: number;
  timeoutMs?: number;
  /** A path on every node holding the job secret; otherwise the job makes or references one. */
  secretFile?: string;
  /** Kubernetes only: a container image with atscale and the training code. */
  image?: string;
  /** The worker command, as given after `--`. */
  command: string[];
}

/** A DNS label short enough that `<name>-<index>` still is one (Kubernetes pod host names). */
export function checkJobName(name: string): void {
  if (!/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/.test(name) || name.length > 50) {
    throw new TopologyError(
      `--job-name '${name}' must be lowercase letters, digits and '-', start and end with a letter or digit, and be at most 50 characters`,
    );
  }
}

/** The flags each node's launcher gets; node rank and master address come from the scheduler. */
export function perNodeLaunchFlags(o: EmitOptions): string[] {
  const flags = ['--nproc-per-node', String(o.nprocPerNode)];
  if (o.masterPort !== undefined) flags.push('--master-port', String(o.masterPort));
  if (o.timeoutMs !== undefined) flags.push('--timeout-ms', String(o.timeoutMs));
  if (o.secretFile !== undefined) flags.push('--secret-file', o.secretFile);
  return flags;
}

export function describeRun(o: EmitOptions): string {
  const nodes = `${o.nnodes} node${o.nnodes === 1 ? '' : 's'}`;
  return `${nodes} x ${o.nprocPerNode} worker${o.nprocPerNode === 1 ? '' : 's'} = ${o.nnodes * o.nprocPerNode} ranks`;
}
