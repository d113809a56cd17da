// resolveTopology and the Slurm/Kubernetes conventions, on example environments.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { expandNodelist, expandTasksPerNode, slurmMasterPort } from '../../src/launch/slurm.js';
import { type LaunchFlags, TopologyError, resolveTopology } from '../../src/launch/topology.js';
import { resolveJobSecret } from '../../src/launch/secret.js';

const ranks = (env: Record<string, string>, flags: LaunchFlags) => resolveTopology(env, flags).workers.map((w) => [w.rank, w.localRank]);

test('Slurm nodelists expand like Slurm does', () => {
  assert.deepEqual(expandNodelist('node[01-03,07]'), ['node01', 'node02', 'node03', 'node07']);
  assert.deepEqual(expandNodelist('login1'), ['login1']);
  assert.deepEqual(expandNodelist('a[8-10],b-gpu[1-2],c'), ['a8', 'a9', 'a10', 'b-gpu1', 'b-gpu2', 'c']);
  assert.deepEqual(expandNodelist('r[1-2]n[1-2]'), ['r1n1', 'r1n2', 'r2n1', 'r2n2']);
  assert.deepEqual(expandNodelist('n[098-101]'), ['n098', 'n099', 'n100', 'n101']);
  assert.deepEqual(expandNodelist('10.0.0.[1-2]'), ['10.0.0.1', '10.0.0.2']);
  for (const bad of ['node[01-03', 'node]1', 'node[a-b]', 'node[3-1]', 'a,,b', 'n[1[2]]']) {
    assert.throws(() => expandNodelist(bad), /cannot parse Slurm nodelist/, bad);
  }
});

test('Slurm tasks-per-node and the job-derived port', () => {
  assert.deepEqual(expandTasksPerNode('2(x3),1'), [2, 2, 2, 1]);
  assert.deepEqual(expandTasksPerNode('4'), [4]);
  assert.throws(() => expandTasksPerNode('2x3'), /cannot parse Slurm tasks-per-node/);
  assert.equal(slurmMasterPort('123456'), 20000 + (123456 % 20000));
  assert.equal(slurmMasterPort(undefined), 29500);
});

test('flags alone: one node by default, global rank = node_rank * nproc + local_rank', () => {
  const one = resolveTopology({}, { nprocPerNode: 4 });
  assert.equal(one.source, 'flags');
  assert.equal(one.worldSize, 4);
  assert.equal(one.masterAddr, '127.0.0.1');
  assert.equal(one.masterPort, 0, 'a one-launcher job picks a free port');
  const node2 = resolveTopology({}, { nprocPerNode: 3, nnodes: 4, nodeRank: 2, masterAddr: '10.0.0.1' });
  assert.deepEqual(node2.workers.map((w) => [w.rank, w.localRank]), [[6, 0], [7, 1], [8, 2]]);
  assert.equal(node2.worldSize, 12);
  assert.equal(node2.localWorldSize, 3);
  assert.equal(node2.masterPort, 29500);
});

test('bad flags are TopologyErrors that say what to do', () => {
  const cases: [LaunchFlags, RegExp][] = [
    [{ nprocPerNode: 0 }, /--nproc-per-node must be a positive integer/],
    [{ nnodes: 2, nodeRank: 2, masterAddr: 'a' }, /out of range for --nnodes 2/],
    [{ nodeRank: 1 }, /--node-rank 1 needs --nnodes greater than 1/],
    [{ nodeRank: -1 }, /--node-rank must be an integer >= 0/],
    [{ nnodes: 3, nodeRank: 0 }, /a 3-node job needs --master-addr/],
    [{ masterPort: 0 }, /--master-port must be an integer from 1 to 65535/],
  ];
  for (const [flags, message] of cases) assert.throws(() => resolveTopology({}, flags), (e: Error) => e instanceof TopologyError && message.test(e.message));
});

// What `srun --nodes=3 --ntasks-per-node=1 atscale launch --nproc-per-node 4` sees on the second node.
const SLURM_PER_NODE = {
  SLURM_JOB_ID: '4242',
  SLURM_PROCID: '1',
  SLURM_NTASKS: '3',
  SLURM_NNODES: '3',
  SLURM_NODEID: '1',
  SLURM_LOCALID: '0',
  SLURM_NODELIST: 'gpu[07-08],gpu11',
  SLURM_STEP_TASKS_PER_NODE: '1(x3)',
  // Left over from an sbatch --ntasks-per-node=4: the step's own value must win.
  SLURM_NTASKS_PER_NODE: '4',
};

test('Slurm, one task per node: the launcher starts --nproc-per-node workers on node SLURM_PROCID', () => {
  const t = resolveTopology(SLURM_PER_NODE, { nprocPerNode: 4 });
  assert.equal(t.source, 'slurm');
  assert.equal(t.nnodes, 3);
  assert.equal(t.nodeRank, 1);
  assert.equal(t.worldSize, 12);
  assert.equal(t.masterAddr, 'gpu07');
  assert.equal(t.masterPort, 20000 + 4242);
  assert.deepEqual(ranks(SLURM_PER_NODE, { nprocPerNode: 4 }), [[4, 0], [5, 1], [6, 2], [7, 3]]);
  assert.equal(resolveTopology(SLURM_PER_NODE, { nprocPerNode: 4, masterAddr: 'ib-gpu07', masterPort: 1234 }).masterAddr, 'ib-gpu07');
  assert.throws(() => resolveTopology(SLURM_PER_NODE, { nnodes: 2 }), /--nnodes 2 disagrees with this Slurm step's 3 nodes/);
  // An explicit --node-rank ignores Slurm entirely.
  assert.equal(resolveTopology(SLURM_PER_NODE, { nnodes: 1, nodeRank: 0 }).source, 'flags');
});

// What `srun --nodes=2 --ntasks-per-node=4 atscale launch -- ...` sees for task 6.
const SLURM_PER_RANK = {
  SLURM_JOB_ID: '77',
  SLURM_PROCID: '6',
  SLURM_NTASKS: '8',
  SLURM_NNODES: '2',
  SLURM_NODEID: '1',
  SLURM_LOCALID: '2',
  SLURM_NODELIST: 'cn[100-101]',
  SLURM_NTASKS_PER_NODE: '4',
};

test('Slurm, one task per rank: the launcher starts exactly Slurm\'s rank', () => {
  const t = resolveTopology(SLURM_PER_RANK, {});
  assert.deepEqual(t.workers, [{ rank: 6, localRank: 2 }]);
  assert.equal(t.worldSize, 8);
  assert.equal(t.localWorldSize, 4);
  assert.equal(t.nnodes, 2);
  assert.equal(t.nodeRank, 1);
  assert.equal(t.masterAddr, 'cn100');
  assert.deepEqual(resolveTopology(SLURM_PER_RANK, { nprocPerNode: 4 }).workers, [{ rank: 6, localRank: 2 }]);
  assert.throws(() => resolveTopology(SLURM_PER_RANK, { nprocPerNode: 2 }), /Slurm already starts 4 tasks on this node/);
  // Tasks per node from SLURM_NTASKS / SLURM_NNODES when Slurm does not say.
  const { SLURM_NTASKS_PER_NODE: _, ...bare } = SLURM_PER_RANK;
  assert.equal(resolveTopology(bare, {}).localWorldSize, 4);
  // An uneven step ('3,1'): the lone task on node 1 is still one rank, not one node.
  const uneven = { ...bare, SLURM_TASKS_PER_NODE: '3,1', SLURM_NTASKS: '4', SLURM_PROCID: '3', SLURM_LOCALID: '0' };
  const u = resolveTopology(uneven, {});
  assert.deepEqual([u.workers, u.worldSize, u.localWorldSize, u.nodeRank], [[{ rank: 3, localRank: 0 }], 4, 1, 1]);
  assert.throws(() => resolveTopology({ ...SLURM_PER_RANK, SLURM_PROCID: 'x' }, {}), /SLURM_PROCID='x' is not an integer/);
  assert.throws(() => resolveTopology({ ...SLURM_PER_RANK, SLURM_NODELIST: 'cn[1-' }, {}), /cannot parse Slurm nodelist 'cn\[1-'.*pass --master-addr/);
});

test('Kubernetes Indexed Job: JOB_COMPLETION_INDEX is the node rank, node 0 is <job>-0.<service>', () => {
  const pod = { JOB_COMPLETION_INDEX: '2', HOSTNAME: 'gpt-train-2' };
  const t = resolveTopology(pod, { nnodes: 3, nprocPerNode: 2 });
  assert.equal(t.source, 'kubernetes');
  assert.equal(t.masterAddr, 'gpt-train-0.gpt-train');
  assert.deepEqual(t.workers.map((w) => w.rank), [4, 5]);
  assert.equal(t.worldSize, 6);
  assert.equal(t.masterPort, 29500);
  const named = { JOB_COMPLETION_INDEX: '0', HOSTNAME: 'whatever', ATSCALE_K8S_JOB: 'j', ATSCALE_K8S_SERVICE: 'svc' };
  assert.equal(resolveTopology(named, { nnodes: 2 }).masterAddr, 'j-0.svc');
  assert.equal(resolveTopology({ ...pod, ATSCALE_NNODES: '3' }, {}).nnodes, 3);
  assert.throws(() => resolveTopology(pod, {}), /pass --nnodes/);
  assert.throws(() => resolveTopology(pod, { nnodes: 2 }), /JOB_COMPLETION_INDEX=2 is out of range for 2 nodes/);
  assert.throws(() => resolveTopology({ JOB_COMPLETION_INDEX: '1', HOSTNAME: 'laptop' }, { nnodes: 2 }), /cannot find the Kubernetes job name/);
});

test('the job secret: generated for one launcher, required and checked when shared', () => {
  const a = resolveJobSecret({ env: {}, shared: false });
  assert.match(a, /^[0-9a-f]{64}$/);
  assert.notEqual(resolveJobSecret({ env: {}, shared: false }), a);
  assert.equal(resolveJobSecret({ env: { ATSCALE_JOB_SECRET: 'AB'.repeat(16) }, shared: true }), 'ab'.repeat(16));
  assert.throws(() => resolveJobSecret({ env: {}, shared: true }), /needs a job secret shared by every node/);
  assert.throws(() => resolveJobSecret({ env: { ATSCALE_JOB_SECRET: 'zz'.repeat(20) }, shared: true }), /hex digits/);
  assert.throws(() => resolveJobSecret({ env: {}, secretFile: '/nonexistent/secret', shared: true }), /cannot read --secret-file \/nonexistent\/secret: ENOENT/);
});
