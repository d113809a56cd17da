// One atscale training measurement in its own process (so peak RSS is this run's alone):
// node dist/bench/train-worker.js '{"preset":"cpu-small","iters":20,"warmup":3,"threads":2}'
import { GPT } from '../src/models/gpt.js';
import { preset } from '../src/models/presets.js';
import { LocalTrainer } from '../src/engine/local-trainer.js';
import { Rng } from '../src/tensor/rng.js';
import { median } from '../src/runtime/gemm-probe.js';

interface Job {
  preset: string;
  iters: number;
  warmup: number;
  threads: number;
}

const job = JSON.parse(process.argv[2] ?? '{}') as Job;
const p = preset(job.preset);
const model = new GPT({ ...p.model, vocabSize: 65 });
const c = model.config;
const B = p.train.batchSize;
const trainer = new LocalTrainer(model, {
  shape: { batch: B, seq: c.blockSize },
  optimizer: { lr: p.train.lr, beta1: p.train.beta1, beta2: p.train.beta2, eps: 1e-8, weightDecay: p.train.weightDecay },
  gradClip: p.train.gradClip,
  gradAccum: 1,
  seed: 1,
  threads: job.threads,
});
const t0 = performance.now();
await trainer.prepare();
const compileMs = performance.now() - t0;
const rng = new Rng(3);
const batch = () => ({ x: Int32Array.from({ length: B * c.blockSize }, () => rng.int(65)), y: Int32Array.from({ length: B * c.blockSize }, () => rng.int(65)) });
const times: number[] = [];
let loss = 0;
for (let i = 0; i < job.warmup + job.iters; i++) {
  const b = batch();
  const s = performance.now();
  loss = (await trainer.step([b], p.train.lr, i)).loss;
  if (i >= job.warmup) times.push(performance.now() - s);
}
const ms = median(times);
console.log(JSON.stringify({ ms_per_iter: ms, tokens_per_s: (B * c.blockSize * 1000) / ms, peak_rss_mb: process.resourceUsage().maxRSS / 1024, compile_ms: compileMs, n_params: trainer.layout.size, last_loss: loss, ms_all: times }));
