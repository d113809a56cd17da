// Who is who in a job: which global ranks this launcher starts, and where node 0 is.
// A pure function of the environment and the flags, so every scheduler's conventions are
// unit-tested on example environments without a cluster.
//
// Precedence: an explicit --node-rank means plain flags (the way to ignore a scheduler); else
// JOB_COMPLETION_INDEX means a Kubernetes Indexed Job; else SLURM_PROCID means a Slurm step;
// else one node. --master-addr and --master-port override whatever a scheduler implies, and
// --nnodes, if given under a scheduler, must agree with it.
import { type Env, kubernetesMasterAddr } from './kubernetes.js';
import { expandNodelist, expandTasksPerNode, slurmMasterPort } from './slurm.js';

export interface LaunchFlags {
  nprocPerNode?: number;
  nnodes?: number;
  nodeRank?: number;
  masterAddr?: string;
  masterPort?: number;
}

export interface WorkerSlot {
  rank: number;
  localRank: number;
}

export interface Topology {
  source: 'flags' | 'slurm' | 'kubernetes';
  nnodes: number;
  nodeRank: number;
  worldSize: number;
  localWorldSize: number;
  masterAddr: string;
  /** 0 means "pick a free port" (only for a job that lives entirely inside this launcher). */
  masterPort: number;
  /** The ranks this launcher starts. */
  workers: WorkerSlot[];
}

/** Bad flags or environment: the message says what is wrong and how to fix it. */
export class TopologyError extends Error {
  override name = 'TopologyError';
}

export const DEFAULT_MASTER_PORT = 29500;

export function resolveTopology(env: Env, flags: LaunchFlags): Topology {
  checkLaunchFlags(flags);
  let t: Omit<Topology, 'masterAddr' | 'masterPort'> & { masterAddr?: string; masterPort?: number };
  if (flags.nodeRank === undefined && env.JOB_COMPLETION_INDEX !== undefined) t = fromKubernetes(env, flags);
  else if (flags.nodeRank === undefined && env.SLURM_PROCID !== undefined) t = fromSlurm(env, flags);
  else t = fromFlags(flags);
  const masterAddr = flags.masterAddr ?? t.masterAddr;
  if (masterAddr === undefined) {
    throw new TopologyError(`a ${t.nnodes}-node job needs --master-addr: the address of node 0 (node rank 0), reachable from every node`);
  }
  const alone = t.workers.length === t.worldSize;
  const masterPort = flags.masterPort ?? t.masterPort ?? (alone ? 0 : DEFAULT_MASTER_PORT);
  return { ...t, masterAddr, masterPort };
}

/** Checks the flags' own ranges (shared with --emit, which resolves no topology). */
export function checkLaunchFlags(flags: LaunchFlags): void {
  positiveInt('--nproc-per-node', flags.nprocPerNode);
  positiveInt('--nnodes', flags.nnodes);
  if (flags.nodeRank !== undefined && !(Number.isInteger(flags.nodeRank) && flags.nodeRank >= 0)) {
    throw new TopologyError(`--node-rank must be an integer >= 0, got ${flags.nodeRank}`);
  }
  if (flags.nodeRank !== undefined && flags.nnodes !== undefined && flags.nodeRank >= flags.nnodes) {
    throw new TopologyError(`--node-rank ${flags.nodeRank} is out of range for --nnodes ${flags.nnodes}: node ranks run from 0 to ${flags.nnodes - 1}`);
  }
  const p = flags.masterPort;
  if (p !== undefined && !(Number.isInteger(p) && p >= 1 && p <= 65535)) {
    throw new TopologyError(`--master-port must be an integer from 1 to 65535, got ${p}`);
  }
  if (flags.masterAddr !== undefined && flags.masterAddr.trim() === '') throw new TopologyError('--master-addr is empty');
}

function positiveInt(name: string, v: number | undefined): void {
  if (v !== undefined && !(Number.isInteger(v) && v >= 1)) throw new TopologyError(`${name} must be a positive integer, got ${v}`);
}

function nodeSlots(nodeRank: number, nproc: number): WorkerSlot[] {
  return Array.from({ length: nproc }, (_, localRank) => ({ rank: nodeRank * nproc + localRank, localRank }));
}

function fromFlags(flags: LaunchFlags) {
  const nnodes = flags.nnodes ?? 1;
  if (flags.nodeRank === undefined && nnodes > 1) {
    throw new TopologyError(`--nnodes ${nnodes} needs --node-rank: this node's index, 0 to ${nnodes - 1} (0 on the node at --master-addr)`);
  }
  const nodeRank = flags.nodeRank ?? 0;
  if (nodeRank >= nnodes) {
    throw new TopologyError(`--node-rank ${nodeRank} needs --nnodes greater than ${nodeRank} (a single-node job is node 0)`);
  }
  const nproc = flags.nprocPerNode ?? 1;
  return {
    source: 'flags' as const,
    nnodes,
    nodeRank,
    worldSize: nnodes * nproc,
    localWorldSize: nproc,
    masterAddr: nnodes === 1 ? '127.0.0.1' : undefined,
    workers: nodeSlots(nodeRank, nproc),
  };
}

function fromKubernetes(env: Env, flags: LaunchFlags) {
  const index = envInt(env, 'JOB_COMPLETION_INDEX', 0);
  const nnodes = flags.nnodes ?? (env.ATSCALE_NNODES !== undefined ? envInt(env, 'ATSCALE_NNODES', 1) : undefined);
  if (nnodes === undefined) {
    throw new TopologyError('in a Kubernetes Indexed Job (JOB_COMPLETION_INDEX is set) pass --nnodes (the Job\'s completions) or set ATSCALE_NNODES');
  }
  if (index >= nnodes) throw new TopologyError(`JOB_COMPLETION_INDEX=${index} is out of range for ${nnodes} nodes: the Job's completions must equal --nnodes`);
  const nproc = flags.nprocPerNode ?? 1;
  let masterAddr = flags.masterAddr;
  if (masterAddr === undefined) {
    try {
      masterAddr = kubernetesMasterAddr(env, index);
    } catch (e) {
      throw new TopologyError((e as Error).message);
    }
  }
  return {
    source: 'kubernetes' as const,
    nnodes,
    nodeRank: index,
    worldSize: nnodes * nproc,
    localWorldSize: nproc,
    masterAddr,
    workers: nodeSlots(index, nproc),
  };
}

/**
 * A Slurm step runs either one task per node (the launcher starts --nproc-per-node workers,
 * as `--emit slurm` does) or one task per rank (srun already made the processes; the launcher
 * starts exactly one worker with Slurm's rank).
 */
function fromSlurm(env: Env, flags: LaunchFlags) {
  const procId = envInt(env, 'SLURM_PROCID', 0);
  const ntasks = envInt(env, 'SLURM_NTASKS', 1);
  if (procId >= ntasks) throw new TopologyError(`SLURM_PROCID=${procId} is out of range for SLURM_NTASKS=${ntasks}`);
  const nodelist = env.SLURM_NODELIST ?? env.SLURM_JOB_NODELIST;
  let masterAddr = flags.masterAddr;
  if (masterAddr === undefined) {
    if (nodelist === undefined) throw new TopologyError('in a Slurm step SLURM_NODELIST is missing: pass --master-addr');
    try {
      masterAddr = expandNodelist(nodelist)[0];
    } catch (e) {
      throw new TopologyError(`${(e as Error).message}; pass --master-addr instead`);
    }
  }
  const masterPort = slurmMasterPort(env.SLURM_JOB_ID);
  const perNode = slurmTasksPerNode(env, ntasks);
  const nodeId = env.SLURM_NODEID !== undefined ? envInt(env, 'SLURM_NODEID', 0) : undefined;
  const tasksHere = perNode !== undefined ? perNode[Math.min(nodeId ?? 0, perNode.length - 1)]! : undefined;
  const agree = (nnodes: number) => {
    if (flags.nnodes !== undefined && flags.nnodes !== nnodes) {
      throw new TopologyError(`--nnodes ${flags.nnodes} disagrees with this Slurm step's ${nnodes} nodes; fix --nnodes, or pass --node-rank to ignore Slurm's variables`);
    }
  };
  if (perNode === undefined || tasksHere === undefined || perNode.every((n) => n === 1)) {
    // One task per node: Slurm's task id is the node rank.
    agree(ntasks);
    const nproc = flags.nprocPerNode ?? 1;
    return {
      source: 'slurm' as const,
      nnodes: ntasks,
      nodeRank: procId,
      worldSize: ntasks * nproc,
      localWorldSize: nproc,
      masterAddr,
      masterPort,
      workers: nodeSlots(procId, nproc),
    };
  }
  if (flags.nprocPerNode !== undefined && flags.nprocPerNode !== 1 && flags.nprocPerNode !== tasksHere) {
    throw new TopologyError(
      `Slurm already starts ${tasksHere} tasks on this node (one per rank), so --nproc-per-node ${flags.nprocPerNode} conflicts: drop it, or run srun --ntasks-per-node=1 to let the launcher start ${flags.nprocPerNode} workers per node`,
    );
  }
  if (env.SLURM_LOCALID === undefined) throw new TopologyError('in a Slurm step with several tasks per node SLURM_LOCALID is missing');
  const localRank = envInt(env, 'SLURM_LOCALID', 0);
  if (localRank >= tasksHere) throw new TopologyError(`SLURM_LOCALID=${localRank} is out of range for ${tasksHere} tasks on this node`);
  const nnodes = env.SLURM_NNODES !== undefined ? envInt(env, 'SLURM_NNODES', 1) : Math.ceil(ntasks / tasksHere);
  agree(nnodes);
  return {
    source: 'slurm' as const,
    nnodes,
    nodeRank: nodeId ?? Math.floor(procId / tasksHere),
    worldSize: ntasks,
    localWorldSize: tasksHere,
    masterAddr,
    masterPort,
    workers: [{ rank: procId, localRank }],
  };
}

/** Tasks per node of this step, most specific variable first; undefined if Slurm says nothing. */
function slurmTasksPerNode(env: Env, ntasks: number): number[] | undefined {
  for (const name of ['SLURM_STEP_TASKS_PER_NODE', 'SLURM_TASKS_PER_NODE', 'SLURM_NTASKS_PER_NODE']) {
    const v = env[name];
    if (v === undefined || v === '') continue;
    try {
      return expandTasksPerNode(v);
    } catch (e) {
      throw new TopologyError(`${name}: ${(e as Error).message}`);
    }
  }
  if (env.SLURM_NNODES !== undefined) {
    const nnodes = envInt(env, 'SLURM_NNODES', 1);
    if (ntasks % nnodes === 0) return [ntasks / nnodes];
  }
  return undefined;
}

function envInt(env: Env, name: string, min: number): number {
  const raw = env[name];
  const v = Number(raw);
  if (raw === undefined || raw.trim() === '' || !Number.isInteger(v) || v < min) {
    throw new TopologyError(`environment variable ${name}='${raw ?? ''}' is not an integer >= ${min}`);
  }
  return v;
}
