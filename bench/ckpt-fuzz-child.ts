// One batch of the checkpoint fuzzer, in its own process so that a hang or a native crash is
// caught by the parent (bench/ckpt-fuzz.ts) instead of ending the run. Prints one JSON line
// per mutation: {"i","kind","outcome":"refused"|"unnamed"|"loaded"|"crashed","message"}.
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Rng } from '../src/tensor/rng.js';
import { parseTokenizerFile, readCheckpointInfo } from '../src/engine/train-loop.js';
import { checkRunMeta } from '../src/engine/validate-meta.js';
import { MeshTrainer } from '../src/engine/mesh-trainer.js';
import { Mesh } from '../src/engine/mesh/mesh.js';
import { loadTrainedModel } from '../src/engine/load-trained.js';
import { createModel } from '../src/models/registry.js';
import { tokenizerFromJSON } from '../src/data/index.js';
import type { Files } from './ckpt-fuzz-mutations.js';
import { ALL_MUTATIONS, isUniversalMutation } from './ckpt-fuzz-universal.js';

const readDir = (dir: string): Files => new Map(readdirSync(dir).map((n) => [n, readFileSync(join(dir, n))]));

/** What `atscale train --resume` and `atscale sample` check before using a checkpoint. */
async function load(dir: string): Promise<void> {
  const info = readCheckpointInfo(dir);
  const meta = checkRunMeta(info.meta, `checkpoint ${dir}`);
  const tok = info.files['tokenizer.json'];
  if (!tok) throw new Error(`checkpoint ${dir} has no tokenizer.json`);
  if (tokenizerFromJSON(parseTokenizerFile(tok, dir)).fingerprint() !== meta.tokenizer) throw new Error(`the tokenizer does not match checkpoint ${dir}`);
  const model = createModel(meta.architecture);
  const trainer = new MeshTrainer(model, Mesh.single(), { shape: { batch: 1, seq: model.dims.blockSize }, optimizer: { lr: 1e-3, beta1: 0.9, beta2: 0.99, eps: 1e-8, weightDecay: 0 }, gradClip: 1, gradAccum: 1, seed: meta.seed, threads: 1 });
  await trainer.load(dir);
  loadTrainedModel(dir);
}

/** base/other: plain checkpoints of two runs; ubase/uother: the same as universal checkpoints. */
export async function fuzzBatch(work: string, [base, other, ubase, uother]: string[], seed: number, from: number, to: number, out: (line: string) => void): Promise<void> {
  const plain = [readDir(base!), readDir(other!)] as const;
  const universal = [readDir(ubase!), readDir(uother!)] as const;
  for (let i = from; i < to; i++) {
    const m = ALL_MUTATIONS[i % ALL_MUTATIONS.length]!;
    const rng = new Rng((seed * 100_003 + i) >>> 0 || 1);
    const [baseFiles, otherFiles] = isUniversalMutation(m) ? universal : plain;
    const files = m.apply(new Map(baseFiles), rng, otherFiles)!;
    const dir = join(work, `m${i}`, 'ckpt');
    mkdirSync(dir, { recursive: true });
    for (const [name, data] of files) writeFileSync(join(dir, name), data);
    let outcome: string;
    let message = '';
    try {
      await load(dir);
      outcome = 'loaded';
    } catch (e) {
      message = e instanceof Error ? e.message : String(e);
      const named = message.includes(dir) || /model\.safetensors|meta\.json|tokenizer\.json|manifest\.json|rank-\d{5}\.safetensors/.test(message);
      outcome = !(e instanceof Error) || e instanceof TypeError || /Cannot read|is not a function|Maximum call stack|Invalid array length|is not iterable/.test(message) ? 'crashed' : named ? 'refused' : 'unnamed';
    }
    rmSync(join(work, `m${i}`), { recursive: true, force: true });
    out(JSON.stringify({ i, kind: m.kind, outcome, message: message.slice(0, 300) }));
  }
}

if (process.argv[1] && import.meta.url === new URL(`file://${process.argv[1]}`).href) {
  const [work, base, other, ubase, uother, seed, from, to] = process.argv.slice(2);
  await fuzzBatch(work!, [base!, other!, ubase!, uother!], Number(seed), Number(from), Number(to), (l) => console.log(l));
}
