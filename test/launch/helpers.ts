// Shared by the launch tests: run the real `atscale launch` CLI as a child process, find the
// worker fixtures (plain .mjs files in the source tree), tell whether a pid still lives, and read
// a run's logged losses by step (the resume tests compare them with an uninterrupted run's).
import { type ChildProcess, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { committedDir } from '../../src/checkpoint/atomic_dir.js';
import { fileURLToPath } from 'node:url';

export const CLI = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));
export const FIXTURES = fileURLToPath(new URL('../../../test/launch/fixtures/', import.meta.url));

export interface LaunchRun {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export function startLauncher(args: string[], env: NodeJS.ProcessEnv = {}, wrap: string[] = []): ChildProcess {
  const base = { ...process.env };
  // The tests' own environment must not leak a scheduler or a secret into the launcher.
  for (const k of Object.keys(base)) if (k.startsWith('SLURM_') || k === 'JOB_COMPLETION_INDEX' || k === 'ATSCALE_JOB_SECRET') delete base[k];
  const argv = [...wrap, process.execPath, CLI, 'launch', ...args];
  return spawn(argv[0]!, argv.slice(1), { env: { ...base, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
}

export function collect(child: ChildProcess, timeoutMs = 30_000): Promise<LaunchRun> {
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`launcher did not exit within ${timeoutMs} ms; stderr so far:\n${stderr}`));
    }, timeoutMs);
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
  });
}

export function launch(args: string[], env: NodeJS.ProcessEnv = {}): Promise<LaunchRun> {
  return collect(startLauncher(args, env));
}

/** The `ENV {...}` lines printed by fixtures/env-worker.mjs, keyed by the launcher's `[rank R]` prefix. */
export function envLines(stdout: string): Map<number, Record<string, string | number | undefined>> {
  const out = new Map<number, Record<string, string | number | undefined>>();
  for (const m of stdout.matchAll(/^\[rank (\d+)\] ENV (.*)$/gm)) out.set(Number(m[1]), JSON.parse(m[2]!));
  return out;
}

/** Alive means not gone and not a zombie awaiting its reaper. */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

export async function waitFor(what: string, cond: () => boolean, timeoutMs = 15_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > until) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** The iteration of the checkpoint committed in CKPT, read while a run may be saving: each save
 *  rotates CKPT -> CKPT.prev and staging -> CKPT, so a read can land between the two renames and
 *  must look at the committed copy (what --resume loads). -1 when none is readable yet. */
export function savedIter(ckpt: string): number {
  try {
    return (JSON.parse(readFileSync(join(committedDir(ckpt), 'meta.json'), 'utf8')) as { iter: number }).iter;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return -1; // not saved yet, or renamed away under us
    throw e;
  }
}

/** The losses a run logged in OUT/metrics.jsonl, by optimizer step. */
export function lossesByIter(out: string): Map<number, number> {
  const m = new Map<number, number>();
  for (const line of readFileSync(join(out, 'metrics.jsonl'), 'utf8').trim().split('\n')) {
    const r = JSON.parse(line) as { iter: number; loss?: number };
    if (r.loss !== undefined) m.set(r.iter, r.loss);
  }
  return m;
}
