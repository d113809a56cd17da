// One rank of collective-programs.test.ts: traces every case of tp-cases.ts with its shards on a
// 'tp' axis of the world's size, runs it with NamedExecutable on the world process group, and
// prints the outputs in one `RESULT {json}` line. Not a test itself.
import { initProcessGroup } from '../../src/dist/index.js';
import { NamedExecutable } from '../../src/engine/named-program.js';
import { CASES } from './tp-cases.js';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const pg = await initProcessGroup({ timeoutMs: 30_000 });
const axis = { name: 'tp', size: pg.worldSize, rank: pg.rank };
const result: Record<string, unknown> = { rank: pg.rank };
for (const [name, make] of Object.entries(CASES)) {
  const c = make(axis);
  const exe = await NamedExecutable.compile(c.program, c.outputs, { threads: 1 }, { tp: pg });
  const first = await exe.run(c.feeds);
  // A second run must give the same values: buffers reduced in place belong to one run only.
  const second = await exe.run(c.feeds);
  const same = c.outputs.every((k) => first[k]!.data.every((v, i) => Object.is(v, second[k]!.data[i])));
  result[name] = { parts: exe.partCount, same, outputs: Object.fromEntries(c.outputs.map((k) => [k, { shape: first[k]!.shape, data: Array.from(first[k]!.data as Float32Array) }])) };
}
// With the profile option: one ONNX Runtime trace per part, read back as one step.
const dir = mkdtempSync(join(tmpdir(), 'atscale-tp-profile-'));
try {
  const c = CASES.tp_mlp(axis);
  const exe = await NamedExecutable.compile(c.program, c.outputs, { threads: 1, profile: join(dir, 'step') }, { tp: pg });
  await exe.run(c.feeds);
  const prof = exe.endProfiling();
  result.profile = { files: readdirSync(dir).length, kernels: prof.kernels.length, ops: [...new Set(prof.kernels.map((k) => k.op))], stepUs: prof.stepUs };
} finally {
  rmSync(dir, { recursive: true, force: true });
}
// Compiled without the group its collectives name: refused before anything runs.
try {
  const c = CASES.tp_mlp(axis);
  await NamedExecutable.compile(c.program, c.outputs, { threads: 1 });
  result.missingGroup = 'compiled';
} catch (e) {
  result.missingGroup = (e as Error).message;
}
// Given a group of another size than the program was traced for: refused, with both sizes.
const alone = [pg.newGroup([0]), pg.newGroup([1])].find((g) => g !== null)!;
try {
  const c = CASES.tp_mlp(axis);
  await NamedExecutable.compile(c.program, c.outputs, { threads: 1 }, { tp: alone });
  result.wrongSize = 'compiled';
} catch (e) {
  result.wrongSize = (e as Error).message;
}
console.log(`RESULT ${JSON.stringify(result)}`);
await pg.destroy();
