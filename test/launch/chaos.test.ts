// The chaos harness, small: three of its fault kinds on a 2-host x 2-rank elastic job in network
// namespaces (a rank SIGKILLed at a step, rank 0 killed while it writes a checkpoint, one host's
// launcher killed). Each trial recovers by itself, loses no more than the steps since the
// checkpoint published when the fault hit, and ends bit-identical to its reference run.
// `npm run bench -- chaos` runs 20 random trials of all five kinds.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Fault, References, runTrial, writeCorpus } from '../../bench/chaos-trial.js';
import { TwoHosts, netnsUnavailable } from './netns.js';

const skip = netnsUnavailable();
let hosts: TwoHosts;
const work = mkdtempSync(join(tmpdir(), 'atscale-chaos-test-'));
const corpus = join(work, 'corpus.txt');
const job = { work, corpus, steps: 15, every: 5, seed: 11, trialTimeoutMs: 150_000 };
let refs: References;
before(() => {
  if (skip) return;
  hosts = TwoHosts.create();
  writeCorpus(corpus);
  refs = new References(job);
});
after(() => {
  hosts?.close();
  rmSync(work, { recursive: true, force: true });
});

const trials: [Fault, number][] = [['kill-rank', 7], ['kill-during-save', 3], ['launcher-kill', 8]];
trials.forEach(([fault, at], i) => {
  test(`chaos: ${fault} after step ${at}`, { skip }, async () => {
    const r = await runTrial(job, hosts, refs, fault, at, 29661 + i);
    console.log(JSON.stringify({ ...r, summary: undefined }));
    assert.ok(r.recovered, `${r.note}; ${r.summary}`);
    assert.ok(r.detect_s !== null && r.recover_s !== null && r.recover_s >= r.detect_s);
    assert.ok(r.resumed_step !== null && r.resumed_step >= r.published_step, `resumed from ${r.resumed_step}, the newest checkpoint at the fault was ${r.published_step}`);
    assert.ok(r.steps_lost !== null && r.steps_lost >= 0 && r.steps_lost < job.every + 1, `lost ${r.steps_lost} steps`);
    assert.match(r.summary, /job succeeded after 1 of at most 3 restarts \(restart 1: /);
    assert.ok(r.bit_identical, r.note);
  });
});
