// `npm run bench -- train [--json] [--presets cpu-small,shakespeare-char] [--dropouts 0,0.2]
// [--threads 2] [--runs 1] [--iters N] [--plan]`: atscale training throughput (median ms/iter,
// tokens/s, MFU, peak RSS) next to the PyTorch peer (bench/peers/gpt_torch.py) with the same
// model, batch, dropout and threads, measured in the same run, alternating, each in its own
// process (so peak RSS is that run's alone); the readable table shows atscale/PyTorch ratios.
// The peer runs the OpenBLAS kernels OpenBLAS picks for this CPU, not a machine's pinned older
// ones (torch-peer.ts, peerEnv), and the gradient check below runs with the same kernels.
// JSON: one line per preset, dropout, implementation and run:
//   {"bench":"train","preset","dropout","impl","tokens_per_s","ms_per_iter","peak_rss_mb","mfu",...}
// MFU is against the in-graph GEMM peak measured at the start, raised to the best model-FLOP
// rate any row so far showed if one beat it (see src/engine/mfu.ts); the table uses the final peak.
// Also: the loss/gradient check against PyTorch on cpu-small ("bench":"train-check"), and with
// --plan the planner's calibrated prediction against the measured step ("bench":"plan-local-truth").
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from '../src/cli/args.js';
import { preset } from '../src/models/presets.js';
import { gptConfig, gptFlopsPerToken } from '../src/models/config.js';
import { measurePeakGflops } from '../src/runtime/gemm-probe.js';
import { median } from '../src/runtime/median.js';
import { torchAvailable, runTorchBench } from './peers/torch-peer.js';
import { compareWithTorch } from './peers/torch-equivalence.js';

// Steps to time and to run first. A fresh process's first shakespeare-char steps are slow: on a
// 2-core AVX-512 EPYC nanoGPT's train.py took 85, 40, 27 and 19 s for its first four and then
// settled at 14-19 s, and the peer the same, so timing from the second step put the peer 1.6x
// slower than it runs. Four steps of warm-up keep both sides in steady state.
const ITERS: Record<string, { iters: number; warmup: number }> = { 'cpu-small': { iters: 20, warmup: 3 }, 'shakespeare-char': { iters: 4, warmup: 4 } };

interface Measured {
  preset: string;
  dropout: number;
  impl: 'atscale' | 'pytorch';
  run: number;
  ms_per_iter: number;
  tokens_per_s: number;
  peak_rss_mb: number;
  flops_per_iter: number;
  extra: Record<string, unknown>;
}

/** `atscale plan --calibrate` in a child process: the planner's predicted ms/iter per preset. */
function calibratedPredictions(threads: number): Record<string, number> {
  const cli = fileURLToPath(new URL('../src/cli/main.js', import.meta.url));
  const dir = mkdtempSync(join(tmpdir(), 'atscale-cal-'));
  const r = spawnSync(process.execPath, [cli, 'plan', '--calibrate', '--json', '--threads', String(threads), '--out', join(dir, 'machine.json')], { encoding: 'utf8', timeout: 600_000 });
  rmSync(dir, { recursive: true, force: true });
  if (r.status !== 0) throw new Error(`atscale plan --calibrate failed: ${r.stderr.slice(-1000)}`);
  return (JSON.parse(r.stdout.trim().split('\n').pop()!) as { predicted_ms_per_iter: Record<string, number> }).predicted_ms_per_iter;
}

function atscaleRun(name: string, dropout: number, iters: number, warmup: number, threads: number): { ms_per_iter: number; tokens_per_s: number; peak_rss_mb: number } {
  const worker = fileURLToPath(new URL('./train-worker.js', import.meta.url));
  const r = spawnSync(process.execPath, [worker, JSON.stringify({ preset: name, dropout, iters, warmup, threads })], { encoding: 'utf8', timeout: 3_600_000 });
  if (r.status !== 0) throw new Error(`atscale train worker failed (${r.status}): ${r.stderr.slice(-2000)}`);
  return JSON.parse(r.stdout.trim().split('\n').pop()!) as { ms_per_iter: number; tokens_per_s: number; peak_rss_mb: number };
}

export async function run(argv: string[]): Promise<number> {
  const { flags } = parseArgs(argv, {
    json: { type: 'boolean', help: 'print JSON lines' },
    presets: { type: 'string', help: 'presets to measure', default: 'cpu-small,shakespeare-char' },
    dropouts: { type: 'string', help: 'dropout probabilities to measure', default: '0,0.2' },
    threads: { type: 'number', help: 'threads for both implementations', default: 2 },
    runs: { type: 'number', help: 'repeat every measurement this many times (medians are reported)', default: 1 },
    iters: { type: 'number', help: 'timed iterations (default per preset)' },
    plan: { type: 'boolean', help: "also run atscale plan --calibrate and compare the planner's prediction with the measured step" },
  }, 'bench train');
  const threads = flags.threads as number;
  const runs = flags.runs as number;
  const json = flags.json === true;
  const emit = (rec: object) => json && console.log(JSON.stringify(rec));
  const dropouts = String(flags.dropouts).split(',').map(Number);
  if (dropouts.some((d) => !(d >= 0 && d < 1))) throw new Error(`--dropouts must be numbers in [0, 1), got ${flags.dropouts}`);
  if (!(Number.isInteger(runs) && runs >= 1)) throw new Error(`--runs must be a positive integer, got ${runs}`);
  let peak = await measurePeakGflops(threads);
  const probedPeak = peak;
  const torch = torchAvailable();
  if (!torch.ok) console.log(`PyTorch peer not run: ${torch.reason}`);
  const rows: Measured[] = [];
  // Each row is printed as soon as it is measured (a shakespeare-char row takes minutes), with
  // MFU against the peak so far: every model FLOP is a GEMM FLOP, so a row faster than the
  // probe proves the probe low and raises the peak.
  const record = (r: Measured) => {
    rows.push(r);
    peak = Math.max(peak, r.flops_per_iter / (r.ms_per_iter / 1000) / 1e9);
    emit({ bench: 'train', preset: r.preset, dropout: r.dropout, impl: r.impl, tokens_per_s: round(r.tokens_per_s), ms_per_iter: round(r.ms_per_iter), peak_rss_mb: round(r.peak_rss_mb), mfu: round(mfu(r), 4), run: r.run, threads, mfu_peak_gflops: round(peak), ...r.extra });
  };
  const mfu = (r: Measured) => r.flops_per_iter / (r.ms_per_iter / 1000) / (peak * 1e9);
  for (let run = 1; run <= runs; run++) {
    for (const name of String(flags.presets).split(',')) {
      const p = preset(name);
      const { iters, warmup } = { ...ITERS[name]!, ...(flags.iters ? { iters: flags.iters as number } : {}) };
      for (const dropout of dropouts) {
        const cfg = gptConfig({ ...p.model, vocabSize: 65, dropout });
        const flops = gptFlopsPerToken(cfg) * p.train.batchSize * cfg.blockSize;
        const ours = atscaleRun(name, dropout, iters, warmup, threads);
        record({ preset: name, dropout, impl: 'atscale', run, ...ours, flops_per_iter: flops, extra: {} });
        if (torch.ok) {
          const t = await runTorchBench({ config: { n_layer: cfg.nLayer, n_head: cfg.nHead, n_embd: cfg.nEmbd, block_size: cfg.blockSize, vocab_size: 65, bias: cfg.bias, dropout, batch_size: p.train.batchSize, lr: p.train.lr, beta1: p.train.beta1, beta2: p.train.beta2, weight_decay: p.train.weightDecay }, iters, warmup, threads, timeoutMs: 3_600_000, nativeBlas: true });
          record({ preset: name, dropout, impl: 'pytorch', run, ms_per_iter: t.ms_per_iter, tokens_per_s: t.tokens_per_s, peak_rss_mb: t.peak_rss_mb, flops_per_iter: flops, extra: { torch_version: t.torch_version, blas: t.blas, blas_core: t.blas_core, blas_threads: t.threads, omp_threads: t.omp_threads } });
        }
      }
    }
  }

  const table: string[] = [`machine: ${cpus()[0]?.model ?? 'CPU'}, ${cpus().length} cores, load average ${loadavg()[0]!.toFixed(1)} at the end; ${threads} threads each; ${runs} run(s), medians shown`];
  table.push(`MFU peak: ${peak.toFixed(1)} GFLOP/s (in-graph GEMM probe ${probedPeak.toFixed(1)}${peak > probedPeak ? ', raised to the best row' : ''})`);
  const torchRow = rows.find((r) => r.impl === 'pytorch');
  if (torchRow) table.push(`PyTorch ${String(torchRow.extra.torch_version)}, BLAS ${String(torchRow.extra.blas)} (${String(torchRow.extra.blas_core)} kernels, OpenBLAS's own choice for this CPU; ${String(torchRow.extra.blas_threads)} BLAS threads, ${String(torchRow.extra.omp_threads)} OpenMP)`);
  table.push('', `${'preset'.padEnd(17)}${'dropout'.padStart(8)}  ${'impl'.padEnd(8)}${'ms/iter'.padStart(11)}${'tok/s'.padStart(9)}${'MFU'.padStart(8)}${'RSS MB'.padStart(9)}  atscale/pytorch`);
  const med = (xs: Measured[], k: 'ms_per_iter' | 'tokens_per_s' | 'peak_rss_mb') => median(xs.map((x) => x[k]));
  for (const name of String(flags.presets).split(',')) {
    for (const dropout of dropouts) {
      const of = (impl: string) => rows.filter((r) => r.preset === name && r.dropout === dropout && r.impl === impl);
      const a = of('atscale'), t = of('pytorch');
      for (const [impl, xs] of [['atscale', a], ['pytorch', t]] as const) {
        if (xs.length === 0) continue;
        const ms = med(xs, 'ms_per_iter');
        // tokens/s from the median ms/iter (with two runs, a median of rates and a median of
        // times would not be reciprocal), so the ratio is PyTorch's ms over atscale's.
        const ratio = impl === 'atscale' && t.length ? `  tokens/s ${(med(t, 'ms_per_iter') / ms).toFixed(2)}x, RSS ${(med(a, 'peak_rss_mb') / med(t, 'peak_rss_mb')).toFixed(2)}x` : '';
        const perRun = xs.length > 1 ? `  (runs: ${xs.map((x) => x.ms_per_iter.toFixed(0)).join(', ')} ms)` : '';
        table.push(`${name.padEnd(17)}${String(dropout).padStart(8)}  ${impl.padEnd(8)}${ms.toFixed(1).padStart(11)}${Math.round((xs[0]!.tokens_per_s * xs[0]!.ms_per_iter) / ms).toString().padStart(9)}${((100 * xs[0]!.flops_per_iter) / (ms / 1000) / (peak * 1e9)).toFixed(1).padStart(7)}%${Math.round(med(xs, 'peak_rss_mb')).toString().padStart(9)}${ratio}${perRun}`);
      }
    }
  }
  if (torch.ok) {
    // Each preset's model at a batch big enough for ONNX Runtime to run its kernels on both
    // threads (a batch of 4 x 64 tokens once hid a race in the embedding's scatter-add that
    // shakespeare-char's real batch hit).
    table.push('');
    for (const [name, batch] of [['cpu-small', 12], ['shakespeare-char', 8]] as const) {
      const eq = await compareWithTorch({ ...preset(name).model, vocabSize: 65 }, batch, 7, threads, true);
      emit({ bench: 'train-check', preset: name, batch, loss_rel_error: eq.lossRelError, grad_rel_error: eq.gradRelError, worst_param: eq.worstParam });
      table.push(`loss/gradients vs PyTorch on ${name} weights, batch ${batch}: loss rel. error ${eq.lossRelError.toExponential(2)}, worst gradient rel. error ${eq.gradRelError.toExponential(2)} (${eq.worstParam})`);
    }
  }
  if (flags.plan) {
    const predicted = calibratedPredictions(threads);
    for (const [name, pred] of Object.entries(predicted)) {
      const dropout = preset(name).model.dropout ?? 0;
      const a = rows.filter((r) => r.impl === 'atscale' && r.preset === name && r.dropout === dropout);
      if (a.length === 0) continue;
      const measured = med(a, 'ms_per_iter');
      emit({ bench: 'plan-local-truth', preset: name, dropout, predicted_ms_per_iter: round(pred), measured_ms_per_iter: round(measured), error_pct: round((pred / measured - 1) * 100) });
      table.push(`planner's calibrated prediction for ${name} (dropout ${dropout}): ${pred.toFixed(1)} ms/iter vs measured ${measured.toFixed(1)} (${((pred / measured - 1) * 100).toFixed(0)}%)`);
    }
  }
  console.log(`\n${table.join('\n')}`);
  return 0;
}

const round = (x: number, d = 2) => Math.round(x * 10 ** d) / 10 ** d;
