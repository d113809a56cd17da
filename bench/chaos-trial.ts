// One chaos trial: a 2-host x 2-rank `atscale train` job (two network namespaces, elastic
// launchers with --nnodes 1:2 and --max-restarts), one fault injected at a random step, and
// what happened measured from outside: time to detect (the rendezvous's "failed" line), time to
// train again (the next loss line after the restart), steps lost (last step logged before the
// restart minus the step resumed from; never more than the steps since the checkpoint published
// when the fault hit), and whether the final weights and optimizer state are bit-identical to
// an uninterrupted run with the same seed at the same layout. When a host is gone the job ends
// at world size 2; its reference is the world-4 run up to the checkpoint resumed from,
// continued at world size 2 (what the new layout produces from that state).
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, readFileSync, rmSync, watch, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { isUniversalCheckpoint, loadCheckpoint, UniversalCheckpoint } from '../src/checkpoint/index.js';
import { HOST_ADDRS, type TwoHosts } from '../test/launch/netns.js';

export const FAULTS = ['kill-rank', 'stop-rank', 'kill-during-save', 'host-loss', 'launcher-kill'] as const;
export type Fault = (typeof FAULTS)[number];

export interface TrialResult {
  fault: Fault;
  /** Step after which the fault was injected. */
  at_step: number;
  detect_s: number | null;
  recover_s: number | null;
  steps_lost: number | null;
  /** The step of the newest published checkpoint when the fault hit, and the step resumed from. */
  published_step: number;
  resumed_step: number | null;
  world_after: number;
  recovered: boolean;
  bit_identical: boolean;
  wall_s: number;
  note: string;
  /** Host 0's last launcher line: how the job ended and its restarts. */
  summary: string;
}

export interface ChaosJob {
  work: string;
  corpus: string;
  steps: number;
  /** Steps between evaluations, which are the checkpoints. */
  every: number;
  seed: number;
  trialTimeoutMs: number;
  /** Save in the background (--async-checkpoint): each rank snapshots its shard, the ranks publish later. */
  asyncCheckpoint?: boolean;
}

const CLI = fileURLToPath(new URL('../src/cli/main.js', import.meta.url));
const SECRET = '5e'.repeat(32);

export function writeCorpus(path: string): void {
  writeFileSync(path, Array.from({ length: 300 }, (_, i) => `line ${i}: the quick brown fox jumps over the lazy dog ${i % 7}.\n`).join(''));
}

function trainArgs(j: ChaosJob, out: string, maxIters = j.steps): string[] {
  return [process.execPath, CLI, 'train', '--data', j.corpus, '--out', out, '--n-layer', '2', '--n-head', '2', '--n-embd', '32', '--block-size', '32', '--batch-size', '4', '--max-iters', String(maxIters), '--decay-iters', String(j.steps), '--eval-interval', String(j.every), '--eval-iters', '1', '--log-interval', '1', '--threads', '1', '--peak-gflops', '1', '--seed', String(j.seed), '--quiet', ...(j.asyncCheckpoint ? ['--async-checkpoint'] : [])];
}

function run(argv: string[], env: NodeJS.ProcessEnv, timeoutMs: number): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolve) => {
    const c = spawn(argv[0]!, argv.slice(1), { env, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    c.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    const t = setTimeout(() => c.kill('SIGKILL'), timeoutMs);
    c.once('close', (code) => (clearTimeout(t), resolve({ code, stderr })));
  });
}

function baseEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { PATH: process.env.PATH, HOME: process.env.HOME, ATSCALE_JOB_SECRET: SECRET };
  return env;
}

/** Uninterrupted references, computed once per layout and resume step, on plain loopback. */
export class References {
  private readonly cache = new Map<string, string>();
  constructor(private readonly j: ChaosJob) {}

  private async launch(nproc: number, out: string, maxIters: number, resume?: string): Promise<void> {
    const args = [process.execPath, CLI, 'launch', '--nproc-per-node', String(nproc), '--timeout-ms', '30000', '--', ...trainArgs(this.j, out, maxIters), ...(resume ? ['--resume', resume] : [])];
    const r = await run(args, baseEnv(), 180_000);
    if (r.code !== 0) throw new Error(`reference run (${nproc} ranks, ${maxIters} steps) failed: ${r.stderr.slice(-2000)}`);
  }

  /** The final checkpoint of the run: world 4 throughout, or world 4 to `switchAt` then world 2. */
  async get(switchAt?: number): Promise<string> {
    if (switchAt !== undefined && switchAt >= this.j.steps) switchAt = undefined; // nothing was left to train at world size 2
    const key = switchAt === undefined ? 'w4' : `w4-${switchAt}-w2`;
    const hit = this.cache.get(key);
    if (hit) return hit;
    const out = join(this.j.work, `ref-${key}`);
    rmSync(out, { recursive: true, force: true });
    if (switchAt === undefined) await this.launch(4, out, this.j.steps);
    else if (switchAt === 0) await this.launch(2, out, this.j.steps); // no checkpoint yet: the new round started afresh
    else {
      const first = join(this.j.work, `ref-w4-upto-${switchAt}`);
      rmSync(first, { recursive: true, force: true });
      await this.launch(4, first, switchAt);
      mkdirSync(out, { recursive: true });
      cpSync(join(first, 'ckpt'), join(out, 'from'), { recursive: true });
      await this.launch(2, out, this.j.steps, join(out, 'from'));
    }
    const dir = join(out, 'ckpt');
    this.cache.set(key, dir);
    return dir;
  }
}

/** Every tensor of a checkpoint (a plain one, or each state of a universal one), by name. */
function allTensors(dir: string): Map<string, Uint8Array> {
  const out = new Map<string, Uint8Array>();
  const bytes = (a: ArrayBufferView) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
  if (isUniversalCheckpoint(dir)) {
    const ck = new UniversalCheckpoint(dir);
    for (const name of Object.keys(ck.manifest.tensors)) for (const st of ck.manifest.states) out.set(`${st}/${name}`, bytes(ck.readFull(name, st)));
  } else for (const [name, t] of Object.entries(loadCheckpoint(dir).tensors)) out.set(name, bytes(t.data));
  return out;
}

/** Every tensor of two checkpoints, byte for byte. */
export function sameTensors(a: string, b: string): { same: boolean; why: string } {
  const x = allTensors(a);
  const y = allTensors(b);
  const names = [...x.keys()].sort();
  if (names.join() !== [...y.keys()].sort().join()) return { same: false, why: 'different tensor names' };
  for (const n of names) if (!Buffer.from(x.get(n)!).equals(Buffer.from(y.get(n)!))) return { same: false, why: `tensor ${n} differs` };
  return { same: true, why: '' };
}

interface LossLine {
  iter: number;
  t: number;
}

/** Children of a pid (Linux), with the RANK each was started with. */
function workers(pid: number): { pid: number; rank: number }[] {
  let text = '';
  try {
    text = readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim();
  } catch {
    return [];
  }
  const out: { pid: number; rank: number }[] = [];
  for (const p of text ? text.split(/\s+/).map(Number) : []) {
    try {
      const env = readFileSync(`/proc/${p}/environ`, 'utf8').split('\0');
      const rank = env.find((e) => e.startsWith('RANK='));
      if (rank) out.push({ pid: p, rank: Number(rank.slice(5)) });
    } catch {
      // gone
    }
  }
  return out;
}

function kill(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch {
    // already gone
  }
}

function publishedStep(out: string): number {
  for (const d of [join(out, 'ckpt'), join(out, 'ckpt.prev')]) {
    try {
      return (JSON.parse(readFileSync(join(d, 'meta.json'), 'utf8')) as { iter: number }).iter;
    } catch {
      // not there or mid-rename
    }
  }
  return 0;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Runs one trial; never throws for a failed recovery (that is a result), only for a broken harness. */
/** A fault-free run of the same job in the same harness: the wall time goodput is measured against. */
export async function baselineSeconds(j: ChaosJob, hosts: TwoHosts, port: number): Promise<number> {
  const t0 = performance.now();
  const out = join(j.work, `baseline-${port}`);
  rmSync(out, { recursive: true, force: true });
  const runs = ([1, 0] as const).map((i) =>
    new Promise<number | null>((resolve) => {
      const c = hosts.spawn(i, [process.execPath, CLI, 'launch', '--nnodes', '1:2', '--node-rank', String(i), '--nproc-per-node', '2', '--master-addr', HOST_ADDRS[0], '--master-port', String(port), '--rdzv-last-call-ms', '3000', '--', ...trainArgs(j, out)], baseEnv());
      c.stdout!.resume();
      c.stderr!.resume();
      const t = setTimeout(() => c.kill('SIGKILL'), j.trialTimeoutMs);
      c.once('close', (code) => (clearTimeout(t), resolve(code)));
    }),
  );
  const codes = await Promise.all(runs);
  if (codes.some((c) => c !== 0)) throw new Error(`the fault-free baseline run failed (exit ${codes.join(', ')})`);
  return (performance.now() - t0) / 1000;
}

export async function runTrial(j: ChaosJob, hosts: TwoHosts, refs: References, fault: Fault, atStep: number, port: number): Promise<TrialResult> {
  const out = join(j.work, `trial-${port}`);
  rmSync(out, { recursive: true, force: true });
  mkdirSync(out, { recursive: true });
  const t0 = performance.now();
  const now = () => (performance.now() - t0) / 1000;
  const env = baseEnv();
  const launchers: ChildProcess[] = [];
  const logs = ['', ''];
  const stamped: { t: number; line: string }[] = [];
  const ended: Promise<number | null>[] = [];
  // Host 1 first: its launcher keeps dialling until host 0's rendezvous is up, so both join at
  // once and the first round has both nodes (not one, then a re-rendezvous when the other arrives).
  for (const i of [1, 0] as const) {
    const args = [process.execPath, CLI, 'launch', '--nnodes', '1:2', '--node-rank', String(i), '--nproc-per-node', '2', '--master-addr', HOST_ADDRS[0], '--master-port', String(port), '--max-restarts', '3', '--heartbeat-timeout-ms', '3000', '--timeout-ms', '10000', '--stop-grace-ms', '1000', '--rdzv-last-call-ms', '3000', '--rdzv-keepalive-ms', '3000', '--rdzv-timeout-ms', '30000', '--', ...trainArgs(j, out)];
    const c = hosts.spawn(i, args, env);
    launchers[i] = c;
    c.stdout!.resume();
    c.stderr!.on('data', (d: Buffer) => {
      logs[i] += d.toString();
      if (i === 0) for (const line of d.toString().split('\n')) if (line) stamped.push({ t: now(), line });
    });
    ended[i] = new Promise((r) => c.once('close', (code) => r(code)));
  }
  const metrics = join(out, 'metrics.jsonl');
  const losses: LossLine[] = [];
  let seenLines = 0;
  const poll = () => {
    if (!existsSync(metrics)) return;
    const lines = readFileSync(metrics, 'utf8').split('\n');
    for (; seenLines < lines.length - 1; seenLines++) {
      const rec = JSON.parse(lines[seenLines]!) as { iter: number; loss?: number };
      if (rec.loss !== undefined) losses.push({ iter: rec.iter, t: now() });
    }
  };
  const allPids = new Set<number>();
  const track = () => {
    for (const l of launchers) if (l.pid) for (const w of workers(l.pid)) allPids.add(w.pid);
  };
  const deadline = Date.now() + j.trialTimeoutMs;
  let note = '';
  let tFault = NaN;
  let published = 0;
  let hostGone = false;
  let linkDown = false;
  try {
    // Wait for the step, then strike.
    while (Date.now() < deadline && !(losses.length && losses.at(-1)!.iter >= atStep)) {
      poll();
      track();
      await sleep(25);
    }
    if (!losses.length) throw new Error(`the job never trained (host 0 log: ${logs[0]!.slice(-1500)})`);
    const w0 = workers(launchers[0]!.pid!);
    const w1 = workers(launchers[1]!.pid!);
    const all = [...w0, ...w1];
    const pick = all[Math.floor(Math.random() * all.length)]!;
    published = publishedStep(out);
    if (fault === 'kill-rank') {
      tFault = now();
      kill(pick.pid, 'SIGKILL');
      note = `SIGKILL rank ${pick.rank}`;
    } else if (fault === 'stop-rank') {
      tFault = now();
      kill(pick.pid, 'SIGSTOP');
      note = `SIGSTOP rank ${pick.rank}`;
    } else if (fault === 'launcher-kill') {
      tFault = now();
      kill(launchers[1]!.pid!, 'SIGKILL');
      hostGone = true;
      note = "SIGKILL host 1's launcher (its workers orphaned)";
    } else if (fault === 'host-loss') {
      tFault = now();
      execFileSync('ip', ['-n', hosts.names[1], 'link', 'set', 'veth0', 'down']);
      linkDown = true;
      kill(launchers[1]!.pid!, 'SIGKILL');
      for (const w of w1) kill(w.pid, 'SIGKILL');
      hostGone = true;
      note = 'host 1 lost: link down, launcher and workers SIGKILLed';
    } else {
      // Kill rank 0 (the writer) while a checkpoint is being staged.
      const rank0 = w0.find((w) => w.rank === 0)!;
      note = await killDuringSave(out, rank0.pid, deadline);
      tFault = now();
      published = publishedStep(out);
    }
    // Detection: the rendezvous on host 0 says the round failed.
    let detect: number | null = null;
    let recover: number | null = null;
    let beforeMax = 0;
    let resumed: number | null = null;
    while (Date.now() < deadline) {
      poll();
      track();
      if (detect === null) {
        const hit = stamped.find((s) => s.t >= tFault && /worker group of round \d+ failed/.test(s.line));
        if (hit) {
          detect = hit.t - tFault;
          beforeMax = Math.max(0, ...losses.filter((l) => l.t <= hit.t).map((l) => l.iter));
        }
      } else if (recover === null) {
        const restartT = stamped.find((s) => s.t >= tFault && /round \d+: \d+ nodes?/.test(s.line) && s.t >= tFault + (detect ?? 0))?.t;
        const next = restartT === undefined ? undefined : losses.find((l) => l.t > restartT);
        if (next) {
          recover = next.t - tFault;
          resumed = next.iter - 1;
        }
      }
      const code = await Promise.race([ended[0]!, sleep(50).then(() => undefined)]);
      if (code !== undefined) break;
    }
    const code0 = await Promise.race([ended[0]!, sleep(10).then(() => 'timeout' as const)]);
    const jobWall = now(); // the references below are the harness's time, not the job's
    poll();
    const finalStep = publishedStep(out);
    if (detect !== null && recover === null && code0 === 0) {
      // The fault hit after the last step was saved: the new round resumed at the end and had
      // nothing left to train; "training again" is when that round started.
      const restartT = stamped.find((s) => s.t >= tFault + detect! && /round \d+: \d+ nodes?/.test(s.line))?.t;
      if (restartT !== undefined) recover = restartT - tFault;
      resumed = finalStep;
    }
    const recovered = code0 === 0 && finalStep === j.steps && detect !== null;
    if (code0 === 'timeout') note += `; trial timed out after ${j.trialTimeoutMs} ms`;
    else if (code0 !== 0) note += `; host 0 launcher exited ${code0}: ${logs[0]!.split('\n').filter((l) => l.includes('atscale launch: job')).pop() ?? ''}`;
    const worldAfter = hostGone ? 2 : 4;
    let bit = false;
    if (recovered) {
      try {
        const ref = await refs.get(hostGone ? (resumed ?? -1) : undefined);
        const cmp = sameTensors(join(out, 'ckpt'), ref);
        bit = cmp.same;
        if (!cmp.same) note += `; ${cmp.why}`;
      } catch (e) {
        note += `; reference: ${(e as Error).message.slice(0, 200)}`;
      }
    }
    const stepsLost = resumed === null ? null : Math.max(0, beforeMax - resumed); // steps logged after the restart began are not lost
    if (resumed !== null && resumed < published) note += `; resumed from step ${resumed}, older than the checkpoint of step ${published} published at the fault`;
    const summary = logs[0]!.split('\n').filter((l) => l.startsWith('atscale launch: job ')).pop() ?? '';
    return { summary, fault, at_step: atStep, detect_s: round(detect), recover_s: round(recover), steps_lost: stepsLost, published_step: published, resumed_step: resumed, world_after: worldAfter, recovered, bit_identical: bit, wall_s: round(jobWall)!, note };
  } finally {
    for (const l of launchers) if (l.exitCode === null && l.signalCode === null) kill(l.pid!, 'SIGKILL');
    track();
    for (const p of allPids) kill(p, 'SIGKILL');
    if (linkDown) execFileSync('ip', ['-n', hosts.names[1], 'link', 'set', 'veth0', 'up']);
    await Promise.race([Promise.all(ended), sleep(5000)]);
  }
}

/** Waits for rank 0 to start staging a checkpoint, freezes it mid-write, then kills it. */
async function killDuringSave(out: string, pid: number, deadline: number): Promise<string> {
  return new Promise((resolve) => {
    let done = false;
    const w = watch(out, (_ev, name) => {
      if (done || !name || !/^ckpt\.(tmp|staging)-/.test(String(name))) return;
      done = true;
      kill(pid, 'SIGSTOP');
      const staging = join(out, String(name));
      const mid = existsSync(staging);
      kill(pid, 'SIGKILL');
      w.close();
      resolve(`SIGKILL rank 0 while writing a checkpoint (${mid ? 'staging directory still open' : 'the write had just finished'})`);
    });
    const t = setInterval(() => {
      if (Date.now() > deadline && !done) {
        done = true;
        w.close();
        kill(pid, 'SIGKILL');
        resolve('no save started before the deadline; killed rank 0');
      }
      if (done) clearInterval(t);
    }, 100);
  });
}

const round = (x: number | null) => (x === null ? null : Math.round(x * 1000) / 1000);
