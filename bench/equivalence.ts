// `npm run bench -- equivalence [--json] [--dtype float32|float64] [--layouts tp2,pp2,...]`: the
// 3D-parallelism equivalence sweep. One process trains 20 steps of a 4-layer, 4-head GPT with
// dropout 0.1; then every layout trains the same steps under `atscale launch`, the tensor-
// parallel ones with sequence parallelism off and on, each with every recompute granularity
// (none, selective, full). Each row gives the largest relative loss difference against the one
// process (target 1e-5) and the largest absolute difference of the consolidated checkpoint's
// tensors (parameters and AdamW moments; target 1e-6). dp2xpp2 runs ZeRO-1 from a DeepSpeed
// config (whose constant learning rate differs from the flags' schedule), so its reference is
// one process with the same config. In float32 the checkpoint of a tp layout misses 1e-6 by
// construction (split GEMMs round differently, and AdamW's eps amplifies it on tiny first
// gradients: `equivalence-floor`); --dtype float64 is the exactness check. The test suite runs
// a few of these layouts; this runs them all.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from '../src/cli/args.js';
import { checkTrainDType } from '../src/ir/dtype.js';
import { isUniversalCheckpoint, loadCheckpoint } from '../src/checkpoint/index.js';

const CLI = fileURLToPath(new URL('../src/cli/main.js', import.meta.url));

/** zero1: the layout trains from a ZeRO-1 DeepSpeed config with this pipeline section
 *  (micro-batch rows per dp rank from the global 4). */
const LAYOUTS: Record<string, { nproc: number; flags: string[]; tp: boolean; zero1?: { dp: number; pipeline: object } }> = {
  tp2: { nproc: 2, flags: ['--tensor-model-parallel-size', '2'], tp: true },
  pp2: { nproc: 2, flags: ['--pipeline-model-parallel-size', '2'], tp: false },
  pp2v2: { nproc: 2, flags: ['--pipeline-model-parallel-size', '2', '--virtual-pipeline-model-parallel-size', '2'], tp: false },
  tp2xpp2: { nproc: 4, flags: ['--tensor-model-parallel-size', '2', '--pipeline-model-parallel-size', '2'], tp: true },
  dp2xtp2: { nproc: 4, flags: ['--tensor-model-parallel-size', '2'], tp: true },
  dp2xpp2: { nproc: 4, flags: [], tp: false, zero1: { dp: 2, pipeline: { stages: 2 } } },
  dp2xtp2xpp2: { nproc: 8, flags: ['--tensor-model-parallel-size', '2', '--pipeline-model-parallel-size', '2'], tp: true },
};

/** Runs `atscale ARGS --out OUT`, under `atscale launch` when nproc > 1. */
export function train(args: string[], nproc: number, out: string): void {
  const cmd = nproc === 1 ? [CLI, ...args, '--out', out] : [CLI, 'launch', '--nproc-per-node', String(nproc), '--', process.execPath, CLI, ...args, '--out', out];
  const r = spawnSync(process.execPath, cmd, { encoding: 'utf8', timeout: 600_000, env: { ...process.env, WORLD_SIZE: '1' } });
  if (r.status !== 0) throw new Error(`${args.join(' ')} (nproc ${nproc}) exited ${r.status}: ${(r.stdout + r.stderr).slice(-1500)}`);
}

function losses(dir: string): number[] {
  return readFileSync(join(dir, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { loss?: number }).filter((r) => r.loss !== undefined).map((r) => r.loss!);
}

/** The run's checkpoint as plain tensors (a universal one converted first; F32 or F64). */
function tensors(dir: string): Record<string, ArrayLike<number>> {
  let ckpt = join(dir, 'ckpt');
  if (isUniversalCheckpoint(ckpt)) {
    const plain = join(dir, 'plain');
    const r = spawnSync(process.execPath, [CLI, 'ckpt', 'convert', ckpt, plain], { encoding: 'utf8', timeout: 120_000 });
    if (r.status !== 0) throw new Error(`ckpt convert ${ckpt}: ${r.stderr}`);
    ckpt = plain;
  }
  return Object.fromEntries(Object.entries(loadCheckpoint(ckpt).tensors).map(([k, t]) => [k, t.data as ArrayLike<number>]));
}

export async function run(argv: string[]): Promise<number> {
  const { flags } = parseArgs(argv, {
    json: { type: 'boolean', help: 'JSON lines' },
    layouts: { type: 'string', help: `comma-separated, of ${Object.keys(LAYOUTS).join(', ')} (default: all)` },
    dtype: { type: 'string', help: 'training dtype of every run: float32 (default) or float64 (the exactness check)', default: 'float32' },
  }, 'bench equivalence');
  const json = flags.json === true;
  const dtype = checkTrainDType(flags.dtype);
  const names = flags.layouts ? String(flags.layouts).split(',') : Object.keys(LAYOUTS);
  for (const n of names) if (!LAYOUTS[n]) throw new Error(`--layouts: unknown layout '${n}'; valid: ${Object.keys(LAYOUTS).join(', ')}`);
  const work = mkdtempSync(join(tmpdir(), 'atscale-bench-equiv-'));
  const rows: Record<string, unknown>[] = [];
  try {
    const corpus = join(work, 'corpus.txt');
    writeFileSync(corpus, Array.from({ length: 300 }, (_, i) => `${i} little pigs went to market, ${i * 7} stayed home.\n`).join(''));
    const model = ['--data', corpus, '--n-layer', '4', '--n-head', '4', '--n-embd', '32', '--block-size', '16', '--dropout', '0.1', '--eval-interval', '20', '--eval-iters', '1', '--log-interval', '1', '--threads', '1', '--peak-gflops', '10', '--quiet', '--max-iters', '20', '--dtype', dtype];
    const base = ['train', ...model, '--lr', '0.003', '--warmup-iters', '2', '--grad-accum', '4'];
    const dsConfig = (micro: number, extra: object): string => {
      const p = join(work, `ds-${micro}.json`);
      writeFileSync(p, JSON.stringify({ train_micro_batch_size_per_gpu: micro, gradient_accumulation_steps: 4, optimizer: { type: 'AdamW', params: { lr: 0.003, betas: [0.9, 0.99], weight_decay: 0.1 } }, gradient_clipping: 1.0, zero_optimization: { stage: 1 }, ...extra }));
      return p;
    };
    // dp layouts split the same global batch of 4 rows per micro-batch over their replicas.
    const refs = new Map<string, { loss: number[]; state: Record<string, ArrayLike<number>> }>();
    const reference = (zero1: boolean) => {
      const k = zero1 ? 'zero1' : 'flags';
      if (!refs.has(k)) {
        const one = join(work, `one-${k}`);
        // One process with the ZeRO-1 config: recompute selective runs it on the mesh step with
        // pp = tp = 1 (ZeRO-1 over one rank is no sharding), which carries float64.
        train(zero1 ? ['train', ...model, '--deepspeed-config', dsConfig(4, {}), '--recompute-granularity', 'selective'] : [...base, '--batch-size', '4'], 1, one);
        refs.set(k, { loss: losses(one), state: tensors(one) });
      }
      return refs.get(k)!;
    };
    for (const name of names) {
      const l = LAYOUTS[name]!;
      const { loss: refLoss, state: refState } = reference(l.zero1 !== undefined);
      for (const sp of l.tp ? [false, true] : [false]) {
        for (const recompute of ['none', 'selective', 'full']) {
          const out = join(work, `${name}-${sp}-${recompute}`);
          const args = l.zero1 ? ['train', ...model, '--deepspeed-config', dsConfig(4 / l.zero1.dp, { pipeline: l.zero1.pipeline })] : [...base, '--batch-size', '4'];
          train([...args, ...l.flags, ...(sp ? ['--sequence-parallel'] : []), '--recompute-granularity', recompute], l.nproc, out);
          const got = losses(out);
          const lossDiff = got.length === refLoss.length ? Math.max(...refLoss.map((x, i) => Math.abs(x - got[i]!) / Math.abs(x))) : Infinity;
          const state = tensors(out);
          let ckptDiff = 0;
          for (const [k, a] of Object.entries(refState)) {
            const b = state[k];
            if (!b || b.length !== a.length) {
              ckptDiff = Infinity;
              continue;
            }
            for (let i = 0; i < a.length; i++) ckptDiff = Math.max(ckptDiff, Math.abs(a[i]! - b[i]!));
          }
          const row = { bench: 'equivalence', dtype, layout: name, nproc: l.nproc, sequence_parallel: sp, recompute, steps: got.length, max_rel_loss_diff: lossDiff, max_ckpt_abs_diff: ckptDiff, loss_ok: lossDiff <= 1e-5, ckpt_ok: ckptDiff <= 1e-6 };
          rows.push(row);
          if (json) console.log(JSON.stringify(row));
          else console.log(`${dtype} ${name.padEnd(12)} ${String(l.nproc).padStart(2)} procs  sp ${sp ? 'on ' : 'off'}  ${recompute.padEnd(9)}  loss ${lossDiff.toExponential(2)} ${row.loss_ok ? 'ok ' : 'BAD'}  ckpt ${ckptDiff.toExponential(2)} ${row.ckpt_ok ? 'ok' : 'over 1e-6'}`);
          rmSync(out, { recursive: true, force: true });
        }
      }
    }
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
  return rows.every((r) => r.loss_ok) ? 0 : 1;
}
