// `npm run bench -- chaos [--json] [--trials N] [--steps S] [--async-checkpoint]`: random faults on a 2-host x 2-rank
// elastic job in network namespaces (bench/chaos-trial.ts): SIGKILL or SIGSTOP of a random rank
// at a random step, a kill during a checkpoint write, the loss of a whole host, and the launcher
// of one host killed. One row per trial (time to detect, time to train again, steps lost,
// bit-identical to the uninterrupted run), then goodput: the fault-free run's wall time per
// trial over the trials' wall time. Needs root (ip netns).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from '../src/cli/args.js';
import { TwoHosts, netnsUnavailable } from '../test/launch/netns.js';
import { FAULTS, type Fault, References, baselineSeconds, runTrial, writeCorpus, type TrialResult } from './chaos-trial.js';

export async function run(argv: string[]): Promise<number> {
  const { flags } = parseArgs(argv, {
    json: { type: 'boolean', help: 'JSON lines' },
    trials: { type: 'number', help: 'trials (faults cycle through the five kinds in random order)', default: 20, int: true, min: 1, max: 1000 },
    steps: { type: 'number', help: 'optimizer steps per job', default: 30, int: true, min: 10, max: 10000 },
    every: { type: 'number', help: 'steps between checkpoints', default: 5, int: true, min: 1, max: 1000 },
    'async-checkpoint': { type: 'boolean', help: 'the job saves in the background (shard snapshots published by the ranks together)' },
    'trial-timeout-ms': { type: 'number', help: 'hard limit per trial', default: 240000, int: true, min: 1000, max: 3_600_000 },
  }, 'bench chaos');
  const why = netnsUnavailable();
  if (why) {
    console.error(`bench chaos: ${why}`);
    return 1;
  }
  const work = mkdtempSync(join(tmpdir(), 'atscale-chaos-'));
  const corpus = join(work, 'corpus.txt');
  writeCorpus(corpus);
  const job = { work, corpus, steps: flags.steps as number, every: flags.every as number, seed: 1337, trialTimeoutMs: flags.trialTimeoutMs as number, asyncCheckpoint: flags.asyncCheckpoint === true };
  const hosts = TwoHosts.create();
  const refs = new References(job);
  const results: TrialResult[] = [];
  try {
    // Below Linux's ephemeral range (32768+), where a connection's local port could hold it.
    const basePort = 20000 + Math.floor(Math.random() * 10000);
    const baseline = await baselineSeconds(job, hosts, basePort);
    const n = flags.trials as number;
    const kinds: Fault[] = [];
    while (kinds.length < n) kinds.push(...[...FAULTS].sort(() => Math.random() - 0.5));
    for (let i = 0; i < n; i++) {
      const atStep = 2 + Math.floor(Math.random() * (job.steps - job.every - 2));
      let r: TrialResult;
      try {
        r = await runTrial(job, hosts, refs, kinds[i]!, atStep, basePort + 1 + i);
      } catch (e) {
        // The harness could not run the trial at all: reported as a failed trial, never skipped.
        r = { fault: kinds[i]!, at_step: atStep, detect_s: null, recover_s: null, steps_lost: null, published_step: 0, resumed_step: null, world_after: 4, recovered: false, bit_identical: false, wall_s: 0, note: (e as Error).message.slice(0, 300), summary: '' };
      }
      results.push(r);
      if (flags.json) console.log(JSON.stringify({ bench: 'chaos', trial: i + 1, ...r, summary: undefined }));
      else console.error(`trial ${i + 1}/${n}: ${r.fault} at step ${r.at_step}: ${r.recovered ? 'recovered' : 'NOT recovered'}, ${r.bit_identical ? 'bit-identical' : 'not bit-identical'} (${r.note})`);
    }
    const wall = results.reduce((s, r) => s + r.wall_s, 0);
    const goodput = (baseline * results.length) / wall;
    const summary = { bench: 'chaos', summary: true, trials: results.length, recovered: results.filter((r) => r.recovered).length, bit_identical: results.filter((r) => r.bit_identical).length, goodput: Math.round(goodput * 1000) / 1000, baseline_s: Math.round(baseline * 1000) / 1000, steps: job.steps, checkpoint_every: job.every, async_checkpoint: job.asyncCheckpoint };
    if (flags.json) console.log(JSON.stringify(summary));
    printTable(results, summary);
  } finally {
    hosts.close();
    rmSync(work, { recursive: true, force: true });
  }
  return results.every((r) => r.recovered) ? 0 : 1;
}

function printTable(rs: TrialResult[], s: { goodput: number; baseline_s: number; recovered: number; bit_identical: number }): void {
  const f = (x: number | null) => (x === null ? '-' : x.toFixed(2));
  const rows = [['#', 'fault', 'step', 'detect s', 'recover s', 'lost', 'ckpt', 'resumed', 'world', 'recovered', 'bit-identical', 'note']];
  rs.forEach((r, i) => rows.push([String(i + 1), r.fault, String(r.at_step), f(r.detect_s), f(r.recover_s), String(r.steps_lost ?? '-'), String(r.published_step), String(r.resumed_step ?? '-'), String(r.world_after), r.recovered ? 'yes' : 'NO', r.bit_identical ? 'yes' : 'no', r.note]));
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((row) => row[c]!.length)));
  for (const row of rows) console.error(row.map((v, c) => (c === row.length - 1 ? v : v.padEnd(widths[c]!))).join('  '));
  console.error(`${rs.length} trials: ${s.recovered} recovered, ${s.bit_identical} bit-identical; goodput ${s.goodput} (fault-free run ${s.baseline_s} s per job, over the trials' wall time)`);
}
