// One of the processes `measureCoRun` (co-run.ts) starts: builds the one-process trainer of the
// shape it is given, warms it up, says "ready", waits for "go" on stdin (so that every copy's
// timed steps run at the same time), times its steps and prints one JSON line.
import { createInterface } from 'node:readline';
import { createModel } from '../models/registry.js';
import { Rng } from '../tensor/rng.js';
import { median } from '../runtime/gemm-probe.js';
import { createTrainer, singleLayout } from './mesh-trainer.js';
import { Mesh } from './mesh/mesh.js';

const s = JSON.parse(process.env.ATSCALE_CORUN_SHAPE!) as { nLayer: number; nHead: number; nEmbd: number; blockSize: number; vocab: number; rows: number };
const threads = Number(process.env.ATSCALE_CORUN_THREADS ?? 1);
const steps = Number(process.env.ATSCALE_CORUN_STEPS ?? 8);
const model = createModel({ nLayer: s.nLayer, nHead: s.nHead, nEmbd: s.nEmbd, blockSize: s.blockSize, vocabSize: s.vocab, bias: false, dropout: 0 });
const trainer = await createTrainer(model, Mesh.single(), { shape: { batch: s.rows, seq: s.blockSize }, optimizer: { lr: 1e-3, beta1: 0.9, beta2: 0.99, eps: 1e-8, weightDecay: 0.1 }, gradClip: 1, gradAccum: 2, seed: 1, threads, layout: singleLayout('none') });
const rng = new Rng(Number(process.env.ATSCALE_CORUN_SEED ?? 1));
const n = s.rows * s.blockSize;
const micro = [0, 1].map(() => ({ x: Int32Array.from({ length: n }, () => rng.int(s.vocab)), y: Int32Array.from({ length: n }, () => rng.int(s.vocab)) }));
for (let i = 0; i < 2; i++) await trainer.step(micro, 1e-3, i);
process.stdout.write('ready\n');
const lines = createInterface({ input: process.stdin });
for await (const line of lines) if (line.trim() === 'go') break;
const ms: number[] = [];
for (let i = 0; i < steps; i++) {
  const t0 = performance.now();
  await trainer.step(micro, 1e-3, 2 + i);
  ms.push(performance.now() - t0);
}
process.stdout.write(JSON.stringify({ medianMs: median(ms) }) + '\n');
process.exit(0);
