// How much of the host other programs used while we measured something: the planner's
// `backgroundLoad`. The 1-minute load average is no good for that on a shared host: it lags by
// a minute and counts our own threads. CPU time does not: the host's busy time (/proc/stat)
// less what this process and its finished children used (/proc/self/stat).
import { readFileSync } from 'node:fs';

export interface CpuSample {
  /** Seconds the host's cores have been busy, all of them together. */
  all: number;
  /** Seconds this process and its waited-for children have run. */
  mine: number;
  /** When the sample was taken, seconds (performance.now). */
  at: number;
}

/** Linux only (USER_HZ 100); undefined elsewhere. */
export function cpuSample(): CpuSample | undefined {
  try {
    const f = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
    const st = readFileSync('/proc/self/stat', 'utf8');
    const after = st.slice(st.lastIndexOf(')') + 2).split(' ').map(Number);
    // user nice system idle iowait irq softirq steal; from field 3 on: utime 14, stime 15, cutime 16, cstime 17.
    return { all: (f[0]! + f[1]! + f[2]! + f[5]! + f[6]! + (f[7] ?? 0)) / 100, mine: (after[11]! + after[12]! + after[13]! + after[14]!) / 100, at: performance.now() / 1000 };
  } catch {
    return undefined;
  }
}

/**
 * Other programs' runnable threads between two samples, while `ours` of our threads wanted to
 * run: with the cores saturated, fair sharing gives their CPU time / ours = their threads /
 * ours; otherwise their busy cores are their threads. Our threads count as always runnable,
 * so time they spent waiting makes this an upper bound.
 */
export function backgroundThreads(before: CpuSample, after: CpuSample, ours: number, cores: number): number {
  const wall = after.at - before.at;
  const mine = (after.mine - before.mine) / wall;
  const others = Math.max(0, (after.all - before.all) / wall - mine);
  return others + mine >= 0.95 * cores && mine > 0 ? (ours * others) / mine : others;
}
