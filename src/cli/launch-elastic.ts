// `atscale launch --nnodes MIN:MAX`: this node's launcher in an elastic job (torchrun
// semantics). The launcher with --node-rank 0 hosts the rendezvous on --master-addr:--master-port;
// every launcher joins it, runs the ranks the current round gives it, and restarts them when the
// group re-forms, with ATSCALE_RESTART_COUNT set so `atscale train` resumes from its newest
// complete checkpoint at the new world size.
import { hostname } from 'node:os';
import { parseSecret } from '../dist/auth.js';
import { runElasticAgent } from '../launch/elastic-agent.js';
import { RESTART_ENV } from '../launch/elastic.js';
import { RendezvousClient } from '../launch/rendezvous-client.js';
import { RendezvousServer } from '../launch/rendezvous-server.js';
import { resolveJobSecret } from '../launch/secret.js';
import { WorkerGroup } from '../launch/supervisor.js';
import { DEFAULT_MASTER_PORT, type Topology, TopologyError } from '../launch/topology.js';
import { workerEnv } from '../launch/worker-env.js';

export interface ElasticFlags {
  minNodes: number;
  maxNodes: number;
  nprocPerNode: number;
  nodeRank?: number;
  masterAddr?: string;
  masterPort?: number;
  secretFile?: string;
  timeoutMs?: number;
  stopGraceMs: number;
  heartbeatTimeoutMs: number;
  maxRestarts: number;
  lastCallMs: number;
  joinTimeoutMs: number;
  keepaliveMs: number;
}

/** "MIN:MAX" (or a plain N) of --nnodes; undefined when the value is a plain number. */
export function parseNodeRange(v: string): { min: number; max: number } | undefined {
  const m = /^\s*(\d+)\s*:\s*(\d+)\s*$/.exec(v);
  if (!m) {
    if (/^\s*\d+\s*$/.test(v)) return undefined;
    throw new TopologyError(`--nnodes must be a node count N or a range MIN:MAX (e.g. 1:4), got '${v}'`);
  }
  const [min, max] = [Number(m[1]), Number(m[2])];
  if (min < 1 || max < min || max > 4096) throw new TopologyError(`--nnodes ${v}: need 1 <= MIN <= MAX <= 4096`);
  return { min, max };
}

export async function runElastic(f: ElasticFlags, command: string[]): Promise<number> {
  const say = (line: string) => console.error(`atscale launch: ${line}`);
  if (f.nodeRank !== undefined && !(Number.isInteger(f.nodeRank) && f.nodeRank >= 0)) throw new TopologyError(`--node-rank must be an integer >= 0, got ${f.nodeRank}`);
  const masterAddr = f.masterAddr ?? (f.maxNodes === 1 ? '127.0.0.1' : undefined);
  if (masterAddr === undefined) throw new TopologyError(`--nnodes ${f.minNodes}:${f.maxNodes} needs --master-addr: the address of the node started with --node-rank 0, which hosts the rendezvous`);
  const port = f.masterPort ?? DEFAULT_MASTER_PORT;
  const secretHex = resolveJobSecret({ env: process.env, secretFile: f.secretFile, shared: f.maxNodes > 1 || f.nodeRank !== 0 });
  const secret = parseSecret(secretHex);
  const hosting = f.nodeRank === 0;
  const server = hosting
    ? await RendezvousServer.start({ host: masterAddr, port, secret, minNodes: f.minNodes, maxNodes: f.maxNodes, maxRestarts: f.maxRestarts, lastCallMs: f.lastCallMs, joinTimeoutMs: f.joinTimeoutMs, keepaliveMs: f.keepaliveMs, log: say })
    : undefined;
  let client: RendezvousClient;
  try {
    client = await RendezvousClient.connect({ host: masterAddr, port, secret, identity: `launcher on ${hostname()}`, connectTimeoutMs: f.joinTimeoutMs, keepaliveMs: f.keepaliveMs });
  } catch (e) {
    await server?.close();
    throw e;
  }
  let current: WorkerGroup | undefined;
  let interrupted: NodeJS.Signals | undefined;
  const signals: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];
  const onSignal = (sig: NodeJS.Signals) => {
    interrupted = sig;
    current?.stop(sig);
    client.close();
  };
  for (const s of signals) process.on(s, onSignal);
  const onExit = () => current?.killNow();
  process.on('exit', onExit);
  const host = `${hostname()}/${client.localAddress}`;
  say(`${hosting ? 'hosting the elastic rendezvous' : 'joined the elastic rendezvous'} at ${masterAddr}:${port} (--nnodes ${f.minNodes}:${f.maxNodes}) with ${f.nprocPerNode} worker${f.nprocPerNode === 1 ? '' : 's'}`);
  try {
    const end = await runElasticAgent({
      client,
      nproc: f.nprocPerNode,
      prefer: f.nodeRank ?? 1 << 20,
      host,
      log: say,
      start: (r) => {
        const t: Topology = {
          source: 'flags', nnodes: r.nnodes, nodeRank: r.nodeRank, worldSize: r.worldSize, localWorldSize: f.nprocPerNode, masterAddr: r.masterAddr, masterPort: r.masterPort,
          workers: Array.from({ length: f.nprocPerNode }, (_, localRank) => ({ rank: r.rankBase + localRank, localRank })),
        };
        say(`round ${r.round}: ranks ${r.rankBase}-${r.rankBase + f.nprocPerNode - 1} of ${r.worldSize} on node ${r.nodeRank} of ${r.nnodes}; workers' store ${r.masterAddr}:${r.masterPort}`);
        current = new WorkerGroup({
          command,
          workers: t.workers.map((slot) => ({ rank: slot.rank, env: { ...workerEnv(process.env, { topology: t, slot, secret: secretHex, timeoutMs: f.timeoutMs }), [RESTART_ENV]: String(r.round), TORCHELASTIC_RESTART_COUNT: String(r.round) } })),
          stopGraceMs: f.stopGraceMs,
          heartbeatTimeoutMs: f.heartbeatTimeoutMs,
          stdout: process.stdout,
          stderr: process.stderr,
        });
        const g = current;
        return { done: g.done.then((o) => (o.message && !o.interrupted ? say(o.message) : undefined, o)), stop: (s) => g.stop(s) };
      },
    });
    say(end.summary);
    return end.exitCode;
  } catch (e) {
    if (interrupted) {
      say(`received ${interrupted}: stopped this node's workers`);
      return 128 + (interrupted === 'SIGINT' ? 2 : interrupted === 'SIGHUP' ? 1 : 15);
    }
    say(`${(e as Error).message}; stopped this node's workers, the job cannot go on without the rendezvous`);
    return 1;
  } finally {
    for (const s of signals) process.off(s, onSignal);
    process.off('exit', onExit);
    client.close();
    if (server) {
      // Give the other launchers a moment to read "end" before the rendezvous goes away.
      await new Promise((r) => setTimeout(r, 200));
      await server.close();
    }
  }
}
