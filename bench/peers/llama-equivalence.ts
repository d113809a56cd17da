// atscale's Llama vs the independent PyTorch reference (llama_torch.py) on the same random
// weights, saved as a Hugging Face folder by atscale's own writer: logits, loss and every
// parameter gradient. Used by test/models/llama-torch.test.ts.
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { existsSync } from 'node:fs';
import { Llama } from '../../src/models/llama.js';
import type { LlamaConfig } from '../../src/models/llama-config.js';
import { saveModelDir } from '../../src/models/hf/folder.js';
import { FlatLayout, flatView, withParams } from '../../src/nn/flat.js';
import { lossAndGrad } from './atscale-grad.js';
import { buildProgram } from '../../src/tensor/program.js';
import { compile } from '../../src/runtime/execute.js';
import { hostValue } from '../../src/ir/value.js';
import { Rng } from '../../src/tensor/rng.js';
import { readSafetensorsFile, writeSafetensorsFile } from '../../src/checkpoint/index.js';
import { PYTHON } from './torch-peer.js';

export interface LlamaEquivalence {
  /** max |logit - torch| / max |torch logit|. */
  logitsRelError: number;
  loss: number;
  torchLoss: number;
  /** Largest over parameters of max|g - g_torch| / max|g_torch|. */
  gradRelError: number;
  worstParam: string;
}

function script(): string {
  for (const u of [new URL('./llama_torch.py', import.meta.url), new URL('../../../bench/peers/llama_torch.py', import.meta.url)]) {
    const p = fileURLToPath(u);
    if (existsSync(p)) return p;
  }
  throw new Error('bench/peers/llama_torch.py not found');
}

function relError(ours: ArrayLike<number>, theirs: ArrayLike<number>): number {
  let err = 0;
  let mag = 0;
  for (let i = 0; i < theirs.length; i++) {
    err = Math.max(err, Math.abs(ours[i]! - Number(theirs[i])));
    mag = Math.max(mag, Math.abs(Number(theirs[i])));
  }
  return err / Math.max(mag, 1e-30);
}

/** atscale's side of one case: loss, flat gradient and logits, with the weights as an HF folder in dir. */
async function atscaleCase(cfg: Partial<LlamaConfig>, batch: number, seed: number, dir: string) {
  const model = new Llama(cfg);
  const c = model.config;
  const layout = new FlatLayout(model);
  // Norm weights start at 1 and biases at 0; perturb everything so each parameter matters.
  const rng = new Rng(seed);
  const params = layout.initialise(seed).map((x) => x + 0.05 * rng.normal());
  const n = batch * c.blockSize;
  const idx = Int32Array.from({ length: n }, () => rng.int(c.vocabSize));
  const targets = Int32Array.from({ length: n }, () => rng.int(c.vocabSize));
  const shape = [batch, c.blockSize];
  const { grad, loss } = await lossAndGrad(model, layout, params, idx, targets, batch, c.blockSize);
  const fwd = buildProgram((t) => {
    const p = t.input('params', [layout.size]);
    const ids = t.input('idx', shape, 'int32');
    return withParams(layout.slots, (s) => flatView(p, s), () => ({ inputs: [p, ids], outputs: [model.forward(ids)] }));
  });
  const [logits] = await (await compile(fwd, { threads: 2 })).run([hostValue('float32', [layout.size], params), hostValue('int32', shape, idx)]);
  saveModelDir(join(dir, 'model'), { model, params });
  writeSafetensorsFile(join(dir, 'batch.safetensors'), { idx: { dtype: 'I32', shape, data: idx }, targets: { dtype: 'I32', shape, data: targets } });
  return { layout, grad, loss, logits: logits!.data as Float32Array, case: { model: join(dir, 'model'), batch: join(dir, 'batch.safetensors'), out: join(dir, 'out.safetensors') } };
}

/** Compares each config (one PyTorch process for all of them, so torch starts once). */
export async function compareLlamaWithTorch(cfgs: Partial<LlamaConfig>[], batch: number, seed = 11): Promise<LlamaEquivalence[]> {
  const root = mkdtempSync(join(tmpdir(), 'atscale-llama-torch-'));
  try {
    const ours: Awaited<ReturnType<typeof atscaleCase>>[] = [];
    for (const [i, cfg] of cfgs.entries()) {
      const dir = join(root, String(i));
      mkdirSync(dir);
      ours.push(await atscaleCase(cfg, batch, seed + i, dir));
    }
    const lines = await new Promise<string>((resolve, reject) =>
      execFile(PYTHON, [script(), '--cases', JSON.stringify(ours.map((o) => o.case)), '--threads', '2'], { timeout: 300_000, killSignal: 'SIGKILL', encoding: 'utf8', env: { ...process.env, OMP_NUM_THREADS: '2', OPENBLAS_NUM_THREADS: '2' } }, (err, stdout, stderr) =>
        err ? reject(new Error(`llama_torch.py failed: ${stderr.trim().split('\n').slice(-8).join('\n') || err.message}`)) : resolve(stdout),
      ),
    );
    const losses = lines.trim().split('\n').map((l) => (JSON.parse(l) as { loss: number }).loss);
    return ours.map((o, i) => {
      const theirs = readSafetensorsFile(o.case.out).tensors;
      let gradRelError = 0;
      let worstParam = '';
      for (const s of o.layout.slots) {
        const t = theirs[s.name];
        if (!t) throw new Error(`the PyTorch reference returned no gradient for ${s.name}`);
        const rel = relError(o.grad.subarray(s.offset, s.offset + s.size), t.data as Float64Array);
        if (rel > gradRelError) [gradRelError, worstParam] = [rel, s.name];
      }
      return { logitsRelError: relError(o.logits, theirs['logits']!.data as Float64Array), loss: o.loss, torchLoss: losses[i]!, gradRelError, worstParam };
    });
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}
