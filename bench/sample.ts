// `npm run bench -- sample [--json] [--block-size 64] [--reps 3] [--threads N]`: per-token time
// of sampling 100 and 1,000 tokens from one prompt token with the cpu-small GPT (random weights:
// speed does not depend on them). Past the block size each token is one windowed forward, so
// the per-token time of the long run must stay within 2x of the short one (not grow with length).
import { parseArgs } from '../src/cli/args.js';
import { GPT } from '../src/models/gpt.js';
import { PRESETS } from '../src/models/presets.js';
import { FlatLayout } from '../src/nn/flat.js';
import { Generator } from '../src/engine/generate.js';
import { median } from '../src/runtime/median.js';

export async function run(argv: string[]): Promise<number> {
  const { flags } = parseArgs(argv, {
    json: { type: 'boolean', help: 'JSON lines' },
    'block-size': { type: 'number', help: 'context length', default: 64 },
    reps: { type: 'number', help: 'repetitions of each length (alternating)', default: 3 },
    threads: { type: 'number', help: 'ONNX Runtime threads', default: 1 },
  }, 'bench sample');
  const blockSize = flags.blockSize as number;
  const model = new GPT({ ...PRESETS['cpu-small']!.model, blockSize, vocabSize: 65 });
  const params = new FlatLayout(model).initialise(1);
  const gen = new Generator(model, params, { threads: flags.threads as number });
  const lengths = [100, 1000];
  await gen.generate([0], { maxNewTokens: blockSize + 2, temperature: 1, seed: 0 }); // compile both graphs
  const perToken: Record<number, number[]> = { 100: [], 1000: [] };
  for (let r = 0; r < (flags.reps as number); r++) {
    for (const n of r % 2 === 0 ? lengths : [...lengths].reverse()) {
      const t0 = performance.now();
      const out = await gen.generate([0], { maxNewTokens: n, temperature: 1, topK: 40, seed: r });
      if (out.length !== n) throw new Error(`asked for ${n} tokens, got ${out.length}`);
      perToken[n]!.push((performance.now() - t0) / n);
    }
  }
  const rows = lengths.map((n) => ({ bench: 'sample', block_size: blockSize, tokens: n, ms_per_token: Math.round(median(perToken[n]!) * 1000) / 1000 }));
  const ratio = rows[1]!.ms_per_token / rows[0]!.ms_per_token;
  const verdict = { bench: 'sample', kind: 'ratio', block_size: blockSize, per_token_1000_over_100: Math.round(ratio * 100) / 100, within_2x: ratio <= 2 };
  if (flags.json) for (const r of [...rows, verdict]) console.log(JSON.stringify(r));
  else {
    console.log(`sampling with the cpu-small GPT (4x128), block size ${blockSize}, ${flags.threads} thread(s), median of ${flags.reps}`);
    console.log('tokens  ms/token');
    for (const r of rows) console.log(`${String(r.tokens).padStart(6)}  ${r.ms_per_token.toFixed(3).padStart(8)}`);
    console.log(`per-token time of 1000 / 100 tokens: ${verdict.per_token_1000_over_100}x (${verdict.within_2x ? 'within' : 'OVER'} 2x)`);
  }
  return 0;
}
