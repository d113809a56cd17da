// `npm run bench -- train [--json] [--presets cpu-small,shakespeare-char] [--threads 2]`:
// atscale training throughput (median ms/iter, tokens/s, MFU against the GEMM peak measured
// in this run, peak RSS) next to the PyTorch reference (bench/peers/gpt_torch.py) with the
// same model, batch and threads, and the ratio; plus the loss/gradient check against PyTorch.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from '../src/cli/args.js';
import { preset } from '../src/models/presets.js';
import { gptConfig, gptFlopsPerToken } from '../src/models/config.js';
import { measurePeakGflops } from '../src/runtime/gemm-probe.js';
import { torchAvailable, runTorchBench } from './peers/torch-peer.js';
import { compareWithTorch } from './peers/torch-equivalence.js';

const ITERS: Record<string, { iters: number; warmup: number }> = { 'cpu-small': { iters: 30, warmup: 5 }, 'shakespeare-char': { iters: 4, warmup: 1 } };

/** `atscale plan --calibrate` in a child process: the planner's predicted ms/iter per preset. */
function calibratedPredictions(threads: number): Record<string, number> {
  const cli = fileURLToPath(new URL('../src/cli/main.js', import.meta.url));
  const dir = mkdtempSync(join(tmpdir(), 'atscale-cal-'));
  const r = spawnSync(process.execPath, [cli, 'plan', '--calibrate', '--json', '--threads', String(threads), '--out', join(dir, 'machine.json')], { encoding: 'utf8', timeout: 600_000 });
  rmSync(dir, { recursive: true, force: true });
  if (r.status !== 0) throw new Error(`atscale plan --calibrate failed: ${r.stderr.slice(-1000)}`);
  return (JSON.parse(r.stdout.trim().split('\n').pop()!) as { predicted_ms_per_iter: Record<string, number> }).predicted_ms_per_iter;
}

function atscaleRun(name: string, iters: number, warmup: number, threads: number): { ms_per_iter: number; tokens_per_s: number; peak_rss_mb: number } {
  const worker = fileURLToPath(new URL('./train-worker.js', import.meta.url));
  const r = spawnSync(process.execPath, [worker, JSON.stringify({ preset: name, iters, warmup, threads })], { encoding: 'utf8', timeout: 1_800_000 });
  if (r.status !== 0) throw new Error(`atscale train worker failed (${r.status}): ${r.stderr.slice(-2000)}`);
  return JSON.parse(r.stdout.trim().split('\n').pop()!) as { ms_per_iter: number; tokens_per_s: number; peak_rss_mb: number };
}

export async function run(argv: string[]): Promise<number> {
  const { flags } = parseArgs(argv, {
    json: { type: 'boolean', help: 'print JSON lines' },
    presets: { type: 'string', help: 'presets to measure', default: 'cpu-small,shakespeare-char' },
    threads: { type: 'number', help: 'threads for both implementations', default: 2 },
    iters: { type: 'number', help: 'timed iterations (default per preset)' },
  }, 'bench train');
  const threads = flags.threads as number;
  const json = flags.json === true;
  const emit = (rec: object) => json && console.log(JSON.stringify(rec));
  const peak = await measurePeakGflops(threads);
  emit({ bench: 'train', kind: 'gemm_peak', threads, gflops: round(peak) });
  const predicted = calibratedPredictions(threads);
  const torch = torchAvailable();
  if (!torch.ok) console.log(`PyTorch reference not run: ${torch.reason}`);
  const table: string[] = [];
  for (const name of String(flags.presets).split(',')) {
    const p = preset(name);
    const cfg = gptConfig({ ...p.model, vocabSize: 65 });
    const { iters, warmup } = { ...ITERS[name]!, ...(flags.iters ? { iters: flags.iters as number } : {}) };
    const flopsPerIter = gptFlopsPerToken(cfg) * p.train.batchSize * cfg.blockSize;
    const ours = atscaleRun(name, iters, warmup, threads);
    const oursMfu = flopsPerIter / (ours.ms_per_iter / 1000) / (peak * 1e9);
    emit({ bench: 'train', preset: name, impl: 'atscale', tokens_per_s: round(ours.tokens_per_s), ms_per_iter: round(ours.ms_per_iter), mfu: round(oursMfu, 4), peak_rss_mb: round(ours.peak_rss_mb) });
    const pred = predicted[name];
    if (pred !== undefined) emit({ bench: 'train', kind: 'plan_local_truth', preset: name, predicted_ms_per_iter: round(pred), measured_ms_per_iter: round(ours.ms_per_iter), error_pct: round((pred / ours.ms_per_iter - 1) * 100) });
    let row = `${name.padEnd(17)} atscale ${ours.ms_per_iter.toFixed(1).padStart(9)} ms/iter ${Math.round(ours.tokens_per_s).toString().padStart(7)} tok/s  MFU ${(oursMfu * 100).toFixed(1).padStart(5)}%  RSS ${Math.round(ours.peak_rss_mb)} MB${pred !== undefined ? `  (planner predicted ${pred.toFixed(1)} ms/iter, ${((pred / ours.ms_per_iter - 1) * 100).toFixed(0)}%)` : ''}`;
    if (torch.ok) {
      const t = await runTorchBench({ config: { n_layer: cfg.nLayer, n_head: cfg.nHead, n_embd: cfg.nEmbd, block_size: cfg.blockSize, vocab_size: 65, bias: cfg.bias, dropout: cfg.dropout, batch_size: p.train.batchSize, lr: p.train.lr, beta1: p.train.beta1, beta2: p.train.beta2, weight_decay: p.train.weightDecay }, iters, warmup, threads });
      const tMfu = flopsPerIter / (t.ms_per_iter / 1000) / (peak * 1e9);
      emit({ bench: 'train', preset: name, impl: 'pytorch', tokens_per_s: round(t.tokens_per_s), ms_per_iter: round(t.ms_per_iter), mfu: round(tMfu, 4), peak_rss_mb: round(t.peak_rss_mb) });
      const ratio = ours.tokens_per_s / t.tokens_per_s;
      emit({ bench: 'train', preset: name, kind: 'ratio', atscale_over_pytorch: round(ratio, 3) });
      row += `\n${''.padEnd(17)} pytorch ${t.ms_per_iter.toFixed(1).padStart(9)} ms/iter ${Math.round(t.tokens_per_s).toString().padStart(7)} tok/s  MFU ${(tMfu * 100).toFixed(1).padStart(5)}%  RSS ${Math.round(t.peak_rss_mb)} MB  (torch ${t.torch_version})\n${''.padEnd(17)} atscale/pytorch tokens/s = ${ratio.toFixed(2)}x`;
    }
    table.push(row);
  }
  if (torch.ok) {
    const eq = await compareWithTorch({ ...preset('cpu-small').model, vocabSize: 65 }, 4, 7, threads);
    emit({ bench: 'train', kind: 'torch_equivalence', preset: 'cpu-small', loss_rel_error: eq.lossRelError, grad_rel_error: eq.gradRelError });
    table.push(`loss/gradients vs PyTorch on cpu-small weights: loss rel. error ${eq.lossRelError.toExponential(2)}, worst gradient rel. error ${eq.gradRelError.toExponential(2)} (${eq.worstParam})`);
  }
  console.log(`\nGEMM peak (this run, ${threads} threads): ${peak.toFixed(1)} GFLOP/s\n${table.join('\n')}`);
  return 0;
}

const round = (x: number, d = 2) => Math.round(x * 10 ** d) / 10 ** d;
