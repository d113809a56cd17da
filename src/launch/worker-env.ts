// The environment a worker starts with: the launcher's own, plus torchrun's names (so scripts
// written for torchrun read the same variables) and atscale's secret and timeout.
import { SECRET_ENV } from './secret.js';
import type { Topology, WorkerSlot } from './topology.js';

export interface WorkerEnvOptions {
  topology: Topology;
  slot: WorkerSlot;
  secret: string;
  timeoutMs?: number;
}

export function workerEnv(base: NodeJS.ProcessEnv, o: WorkerEnvOptions): NodeJS.ProcessEnv {
  const t = o.topology;
  const env: NodeJS.ProcessEnv = {
    ...base,
    RANK: String(o.slot.rank),
    WORLD_SIZE: String(t.worldSize),
    LOCAL_RANK: String(o.slot.localRank),
    LOCAL_WORLD_SIZE: String(t.localWorldSize),
    GROUP_RANK: String(t.nodeRank),
    MASTER_ADDR: t.masterAddr,
    MASTER_PORT: String(t.masterPort),
    [SECRET_ENV]: o.secret,
  };
  if (o.timeoutMs !== undefined) env.ATSCALE_TIMEOUT_MS = String(o.timeoutMs);
  return env;
}

/** The ranks the launcher started on this host (LOCAL_WORLD_SIZE), 1 for a process it did not start. */
export function localRanks(env: NodeJS.ProcessEnv = process.env): number {
  const n = Number(env.LOCAL_WORLD_SIZE ?? '1');
  return Number.isInteger(n) && n >= 1 ? n : 1;
}
