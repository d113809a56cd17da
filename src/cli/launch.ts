// `atscale launch`: start a job's workers on this node (torchrun's environment variables), or
// print the sbatch script / Kubernetes manifest that does so on every node.
import { type FlagSpec, UsageError, formatHelp, parseArgs } from './args.js';
import { type EmitOptions } from '../launch/emit-common.js';
import { emitKubernetes } from '../launch/emit-kubernetes.js';
import { emitSlurm } from '../launch/emit-slurm.js';
import { findFreePort } from '../launch/free-port.js';
import { resolveJobSecret } from '../launch/secret.js';
import { type JobOutcome, WorkerGroup } from '../launch/supervisor.js';
import { RESTART_ENV, runWithRestarts } from '../launch/elastic.js';
import { type LaunchFlags, type Topology, TopologyError, checkLaunchFlags, resolveTopology } from '../launch/topology.js';
import { workerEnv } from '../launch/worker-env.js';
import { parseNodeRange, runElastic } from './launch-elastic.js';

export const summary = 'start distributed workers (torchrun-style env), or --emit a Slurm/Kubernetes job for them';

const SPEC: Record<string, FlagSpec> = {
  'nproc-per-node': { type: 'number', help: 'workers on this node (default 1)' },
  nnodes: { type: 'string', help: 'nodes in the job: N (default 1, or from Slurm/Kubernetes), or MIN:MAX for an elastic job that re-forms with the nodes that remain or arrive' },
  'node-rank': { type: 'number', help: 'this node, 0..nnodes-1; given, it overrides Slurm/Kubernetes variables' },
  'master-addr': { type: 'string', help: 'address of node 0, where rank 0 hosts the rendezvous store' },
  'master-port': { type: 'number', help: 'rendezvous port (default: a free port on one node, 29500 across nodes)' },
  'timeout-ms': { type: 'number', help: 'passed to workers as ATSCALE_TIMEOUT_MS: how long a collective waits for a peer' },
  'secret-file': { type: 'string', help: 'file holding the shared job secret (else env ATSCALE_JOB_SECRET; one node: generated)' },
  'stop-grace-ms': { type: 'number', help: 'after a failure, time between SIGTERM and SIGKILL of the other workers', default: 5000 },
  'max-restarts': { type: 'number', help: 'restart the whole worker group this many times after a failure (atscale train resumes from its newest checkpoint)', default: 0, int: true, min: 0, max: 1000 },
  'heartbeat-timeout-ms': { type: 'number', help: 'a worker silent this long (SIGSTOP, blocked event loop) is hung: it is killed and the job stops (0: no check)', default: 60000, int: true, min: 0, max: 86_400_000 },
  'rdzv-last-call-ms': { type: 'number', help: 'elastic (--nnodes MIN:MAX): once MIN nodes are in, wait this long for more before a round starts', default: 5000, int: true, min: 0, max: 3_600_000 },
  'rdzv-timeout-ms': { type: 'number', help: 'elastic: how long a round may wait for MIN nodes before the job fails', default: 120000, int: true, min: 1, max: 86_400_000 },
  'rdzv-keepalive-ms': { type: 'number', help: 'elastic: a launcher (or the rendezvous) silent this long is lost, its host or network gone', default: 15000, int: true, min: 100, max: 3_600_000 },
  emit: { type: 'string', help: "print a job for a scheduler instead of running: 'slurm' or 'kubernetes'" },
  'job-name': { type: 'string', help: 'job name for --emit', default: 'atscale' },
  image: { type: 'string', help: 'container image with atscale and your code (--emit kubernetes)' },
  help: { type: 'boolean', help: 'show this help' },
};

const USAGE_TAIL = [
  '',
  'The worker command goes after --, e.g.',
  '  atscale launch --nproc-per-node 4 -- node train.js',
  '  atscale launch --nnodes 2 --node-rank 0 --master-addr 10.0.0.1 --nproc-per-node 4 -- node train.js',
  '  atscale launch --nnodes 1:4 --node-rank 0 --master-addr 10.0.0.1 --nproc-per-node 4 --max-restarts 3 -- node train.js',
  'With --nnodes MIN:MAX the node given --node-rank 0 hosts the rendezvous at --master-addr:--master-port; the',
  'others may omit --node-rank. When a node fails, is lost or arrives, the group re-forms with the nodes',
  'present (at least MIN) and `atscale train` resumes from its newest checkpoint at the new world size.',
  'Workers get RANK, WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE, MASTER_ADDR, MASTER_PORT and ATSCALE_JOB_SECRET.',
  'Under Slurm (SLURM_PROCID, SLURM_NTASKS, SLURM_NODELIST) or a Kubernetes Indexed Job (JOB_COMPLETION_INDEX)',
  'the node rank and master address come from the scheduler. In Kubernetes, node 0 is <job>-0.<service>',
  '(a headless Service named by ATSCALE_K8S_SERVICE, default the job name; the job name from ATSCALE_K8S_JOB,',
  'else HOSTNAME without its -<index>), as --emit kubernetes sets up.',
].join('\n');

export async function run(argv: string[]): Promise<number> {
  const { flags, positional, rest } = parseArgs(argv, SPEC, 'launch');
  if (flags.help) {
    console.log(formatHelp('launch', summary, SPEC) + '\n' + USAGE_TAIL);
    return 0;
  }
  if (positional.length > 0) {
    throw new UsageError(`atscale launch: unexpected argument '${positional[0]}': the worker command goes after --, e.g. atscale launch --nproc-per-node 2 -- node train.js`);
  }
  if (rest.length === 0) {
    throw new UsageError('atscale launch: missing the worker command after --, e.g. atscale launch --nproc-per-node 2 -- node train.js');
  }
  let nnodes: number | undefined;
  const timeoutMs = flags.timeoutMs as number | undefined;
  const stopGraceMs = flags.stopGraceMs as number;
  try {
    if (timeoutMs !== undefined && !(Number.isInteger(timeoutMs) && timeoutMs >= 1)) {
      throw new TopologyError(`--timeout-ms must be a positive integer (milliseconds), got ${timeoutMs}`);
    }
    if (!(Number.isInteger(stopGraceMs) && stopGraceMs >= 0)) throw new TopologyError(`--stop-grace-ms must be an integer >= 0, got ${stopGraceMs}`);
    const range = flags.nnodes === undefined ? undefined : parseNodeRange(String(flags.nnodes));
    if (range) {
      if (flags.emit !== undefined) throw new TopologyError('--emit takes a node count N for --nnodes, not a range');
      return await runElastic({
        minNodes: range.min, maxNodes: range.max, nprocPerNode: (flags.nprocPerNode as number | undefined) ?? 1, nodeRank: flags.nodeRank as number | undefined,
        masterAddr: flags.masterAddr as string | undefined, masterPort: flags.masterPort as number | undefined, secretFile: flags.secretFile as string | undefined,
        timeoutMs, stopGraceMs, heartbeatTimeoutMs: flags.heartbeatTimeoutMs as number,
        maxRestarts: flags.maxRestarts as number, lastCallMs: flags.rdzvLastCallMs as number, joinTimeoutMs: flags.rdzvTimeoutMs as number, keepaliveMs: flags.rdzvKeepaliveMs as number,
      }, rest);
    }
    if (flags.nnodes !== undefined) nnodes = Number(flags.nnodes);
  } catch (e) {
    if (e instanceof TopologyError) throw new UsageError(`atscale launch: ${e.message}`);
    throw e;
  }
  const launchFlags: LaunchFlags = {
    nprocPerNode: flags.nprocPerNode as number | undefined,
    nnodes,
    nodeRank: flags.nodeRank as number | undefined,
    masterAddr: flags.masterAddr as string | undefined,
    masterPort: flags.masterPort as number | undefined,
  };
  try {
    if (flags.emit !== undefined) {
      process.stdout.write(emit(String(flags.emit), launchFlags, { timeoutMs, jobName: String(flags.jobName), image: flags.image as string | undefined, secretFile: flags.secretFile as string | undefined, command: rest }));
      return 0;
    }
    const topology = resolveTopology(process.env, launchFlags);
    const autoPort = topology.masterPort === 0;
    if (autoPort) topology.masterPort = await findFreePort(topology.masterAddr);
    const secret = resolveJobSecret({ env: process.env, secretFile: flags.secretFile as string | undefined, shared: topology.workers.length < topology.worldSize });
    const result = await runWithRestarts(
      flags.maxRestarts as number,
      async (attempt) => {
        // A fresh port per attempt on one node: the old store's port may still be held by a dying worker.
        if (attempt > 0 && autoPort) topology.masterPort = await findFreePort(topology.masterAddr);
        return supervise(topology, secret, rest, timeoutMs, stopGraceMs, flags.heartbeatTimeoutMs as number, attempt);
      },
      (line) => console.error(`atscale launch: ${line}`),
    );
    if (result.summary) console.error(`atscale launch: ${result.summary}`);
    return result.exitCode;
  } catch (e) {
    if (e instanceof TopologyError) throw new UsageError(`atscale launch: ${e.message}`);
    throw e;
  }
}

function emit(kind: string, f: LaunchFlags, extra: Pick<EmitOptions, 'timeoutMs' | 'jobName' | 'image' | 'secretFile' | 'command'>): string {
  if (kind !== 'slurm' && kind !== 'kubernetes') throw new TopologyError(`--emit must be 'slurm' or 'kubernetes', got '${kind}'`);
  if (f.nodeRank !== undefined || f.masterAddr !== undefined) {
    throw new TopologyError(`--emit ${kind} takes no --node-rank or --master-addr: every node gets them from ${kind === 'slurm' ? 'Slurm' : 'Kubernetes'}`);
  }
  checkLaunchFlags(f);
  const o: EmitOptions = { ...extra, nnodes: f.nnodes ?? 1, nprocPerNode: f.nprocPerNode ?? 1, masterPort: f.masterPort };
  return kind === 'slurm' ? emitSlurm(o) : emitKubernetes(o);
}

async function supervise(t: Topology, secret: string, command: string[], timeoutMs: number | undefined, stopGraceMs: number, heartbeatTimeoutMs: number, attempt: number): Promise<JobOutcome> {
  const ranks = t.workers.map((w) => w.rank);
  const span = ranks.length === 1 ? `rank ${ranks[0]}` : `ranks ${ranks[0]}-${ranks[ranks.length - 1]}`;
  console.error(`atscale launch: ${span} of ${t.worldSize} on node ${t.nodeRank} of ${t.nnodes} (${t.source}); master ${t.masterAddr}:${t.masterPort}`);
  const group = new WorkerGroup({
    command,
    workers: t.workers.map((slot) => ({ rank: slot.rank, env: { ...workerEnv(process.env, { topology: t, slot, secret, timeoutMs }), [RESTART_ENV]: String(attempt), TORCHELASTIC_RESTART_COUNT: String(attempt) } })),
    stopGraceMs,
    heartbeatTimeoutMs,
    stdout: process.stdout,
    stderr: process.stderr,
  });
  const signals: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];
  const onSignal = (sig: NodeJS.Signals) => group.stop(sig);
  for (const s of signals) process.on(s, onSignal);
  const onExit = () => group.killNow();
  process.on('exit', onExit);
  // A reader that goes away (`atscale launch ... | head`) must not crash the launcher and
  // strand its workers; their output is dropped instead.
  const ignoreBrokenPipe = (err: NodeJS.ErrnoException) => {
    if (err.code !== 'EPIPE') throw err;
  };
  process.stdout.on('error', ignoreBrokenPipe);
  process.stderr.on('error', ignoreBrokenPipe);
  try {
    const outcome = await group.done;
    if (outcome.message) console.error(`atscale launch: ${outcome.message}`);
    return outcome;
  } finally {
    for (const s of signals) process.off(s, onSignal);
    process.off('exit', onExit);
  }
}
