// `atscale launch --emit slurm|kubernetes`: the output parses, has the right counts, holds no
// secret, and, run under a stand-in for srun or for the Job controller, starts the right ranks.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CLI, FIXTURES, collect, envLines, launch, startLauncher } from './helpers.js';

const ENV_WORKER = join(FIXTURES, 'env-worker.mjs');
const PLANTED = 'ef'.repeat(32);

// Stands in for srun: runs the command once per node, each with the variables Slurm gives
// the single task of that node, and waits for all of them.
const FAKE_SRUN = `#!/bin/bash
nodes=1
while [[ $1 == --* ]]; do case $1 in --nodes=*) nodes=\${1#--nodes=};; esac; shift; done
pids=()
for ((i = 0; i < nodes; i++)); do
  SLURM_PROCID=$i SLURM_NODEID=$i SLURM_LOCALID=0 SLURM_NTASKS=$nodes SLURM_NNODES=$nodes SLURM_STEP_TASKS_PER_NODE="1(x$nodes)" "$@" &
  pids+=($!)
done
rc=0
for p in "\${pids[@]}"; do wait "$p" || rc=$?; done
exit $rc
`;

test('--emit slurm prints an sbatch script that, under srun, starts nodes x nproc ranks sharing a secret made at job start', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'atscale-emit-'));
  try {
    const r = await launch(['--emit', 'slurm', '--nnodes', '3', '--nproc-per-node', '2', '--timeout-ms', '5000', '--job-name', 'gpt', '--', process.execPath, ENV_WORKER, "it's spaced"], { ATSCALE_JOB_SECRET: PLANTED });
    assert.equal(r.code, 0, r.stderr);
    const script = r.stdout;
    assert.ok(!script.includes(PLANTED), 'the emitted script must not contain the secret in the environment');
    assert.match(script, /^#!\/bin\/bash\n/);
    assert.match(script, /^#SBATCH --nodes=3$/m);
    assert.match(script, /^#SBATCH --ntasks-per-node=1$/m);
    assert.match(script, /^#SBATCH --job-name=gpt$/m);
    assert.match(script, /launch --nnodes 3 --nproc-per-node 2 --timeout-ms 5000 -- /);
    assert.ok(script.includes(`'it'\\''s spaced'`), 'arguments are shell-quoted');
    execFileSync('bash', ['-n'], { input: script });

    const file = join(dir, 'job.sbatch');
    writeFileSync(file, script);
    writeFileSync(join(dir, 'srun'), FAKE_SRUN);
    chmodSync(join(dir, 'srun'), 0o755);
    const job = await collect(spawn('bash', [file], {
      env: {
        PATH: `${dir}:${process.env.PATH}`,
        HOME: process.env.HOME,
        SLURM_JOB_ID: '31337',
        SLURM_NODELIST: '127.0.0.[1-3]',
        SLURM_CPUS_ON_NODE: '2',
        ATSCALE: `${process.execPath} ${CLI}`,
        DUMP_SECRET_DIR: dir,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    }));
    assert.equal(job.code, 0, job.stderr);
    const envs = envLines(job.stdout);
    assert.deepEqual([...envs.keys()].sort((a, b) => a - b), [0, 1, 2, 3, 4, 5]);
    const secretShas = new Set([...envs.values()].map((e) => e.secretSha256));
    assert.equal(secretShas.size, 1, 'all nodes must share one secret');
    for (const e of envs.values()) {
      assert.equal(e.WORLD_SIZE, '6');
      assert.equal(e.LOCAL_WORLD_SIZE, '2');
      assert.equal(e.MASTER_ADDR, '127.0.0.1');
      assert.equal(e.MASTER_PORT, String(20000 + (31337 % 20000)));
      assert.equal(e.ATSCALE_TIMEOUT_MS, '5000');
      assert.equal(e.secretLength, 64);
    }
    const secret = readFileSync(join(dir, 'secret-0'), 'utf8');
    assert.ok(!job.stdout.includes(secret) && !job.stderr.includes(secret), 'the job printed its secret');

    const withFile = await launch(['--emit', 'slurm', '--nnodes', '2', '--secret-file', '/shared/job.secret', '--', 'node', 'train.js']);
    assert.match(withFile.stdout, /--secret-file \/shared\/job.secret -- node train.js/);
    assert.ok(!withFile.stdout.includes('/dev/urandom'));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

interface Container {
  command: string[];
  image: string;
  env: { name: string; value?: string; valueFrom?: { secretKeyRef: { name: string; key: string } } }[];
  ports: { containerPort: number }[];
}

test('--emit kubernetes prints an Indexed Job and headless Service whose pods start the right ranks', async () => {
  const r = await launch(['--emit', 'kubernetes', '--nnodes', '2', '--nproc-per-node', '2', '--image', 'registry.example/train:1', '--job-name', 'gpt', '--', process.execPath, ENV_WORKER], { ATSCALE_JOB_SECRET: PLANTED });
  assert.equal(r.code, 0, r.stderr);
  assert.ok(!r.stdout.includes(PLANTED));
  assert.match(r.stdout, /^# .*kubectl create secret generic gpt-secret/m);
  const body = r.stdout.split('\n').filter((l) => !l.startsWith('#')).join('\n');
  const list = JSON.parse(body);
  assert.equal(list.kind, 'List');
  const [service, job] = list.items;
  assert.equal(service.kind, 'Service');
  assert.equal(service.spec.clusterIP, 'None');
  assert.equal(service.spec.publishNotReadyAddresses, true);
  assert.equal(job.kind, 'Job');
  assert.equal(job.spec.completionMode, 'Indexed');
  assert.equal(job.spec.completions, 2);
  assert.equal(job.spec.parallelism, 2);
  assert.equal(job.spec.backoffLimit, 0);
  const pod = job.spec.template.spec;
  assert.equal(pod.subdomain, service.metadata.name);
  assert.deepEqual(service.spec.selector, job.spec.template.metadata.labels);
  const container = pod.containers[0] as Container;
  assert.equal(container.image, 'registry.example/train:1');
  assert.deepEqual(container.ports.map((p) => p.containerPort), [29500]);
  assert.deepEqual(container.env.find((e) => e.name === 'ATSCALE_JOB_SECRET')?.valueFrom, { secretKeyRef: { name: 'gpt-secret', key: 'secret' } });
  assert.equal(container.command[0], 'atscale');

  // Play the Job controller: one pod per index, host name <job>-<index>, secret resolved.
  const envs = new Map<number, Record<string, unknown>>();
  for (let index = 0; index < 2; index++) {
    const env: NodeJS.ProcessEnv = { JOB_COMPLETION_INDEX: String(index), HOSTNAME: `gpt-${index}` };
    for (const e of container.env) env[e.name] = e.value ?? PLANTED;
    const run = await collect(startLauncher(container.command.slice(2), env));
    assert.equal(run.code, 0, run.stderr);
    for (const [rank, e] of envLines(run.stdout)) envs.set(rank, e);
  }
  assert.deepEqual([...envs.keys()].sort(), [0, 1, 2, 3]);
  for (const e of envs.values()) {
    assert.equal(e.WORLD_SIZE, '4');
    assert.equal(e.MASTER_ADDR, 'gpt-0.gpt');
    assert.equal(e.MASTER_PORT, '29500');
  }
});

test('--emit refuses what it cannot express', async () => {
  const noImage = await launch(['--emit', 'kubernetes', '--nnodes', '2', '--', 'node', 'train.js']);
  assert.equal(noImage.code, 2);
  assert.match(noImage.stderr, /--emit kubernetes needs --image IMAGE/);
  const nodeRank = await launch(['--emit', 'slurm', '--nnodes', '2', '--node-rank', '1', '--', 'node', 'train.js']);
  assert.equal(nodeRank.code, 2);
  assert.match(nodeRank.stderr, /takes no --node-rank or --master-addr/);
  const badName = await launch(['--emit', 'slurm', '--job-name', 'My Job', '--', 'node', 'train.js']);
  assert.equal(badName.code, 2);
  assert.match(badName.stderr, /--job-name 'My Job' must be lowercase/);
});
