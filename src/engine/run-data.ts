// The data side of a training run: read the corpus, build or restore the tokenizer, prepare
// binary token files, and check that the run can start (all before any training).
import { join } from 'node:path';
import { END_OF_TEXT } from '../data/finetune-examples.js';
import { ProgressBar } from '../monitor/index.js';
import { readText, CharTokenizer, trainBpe, tokenizerFromJSON, prepareCorpus, loadPreparedCorpus, type Tokenizer, type TokenArray } from '../data/index.js';

export type TokenizerKind = 'char' | 'bpe';
// A trained BPE gets GPT-2's end-of-text token, so a pretrained model can later be fine-tuned
// to end its answers (the corpus itself never contains it).

export interface RunData {
  tokenizer: Tokenizer;
  train: TokenArray;
  val: TokenArray;
}

/**
 * `restored` is the tokenizer saved in a checkpoint being resumed: the corpus is encoded with
 * it, and a --tokenizer that asks for another kind is refused.
 */
export async function loadRunData(source: string, kind: TokenizerKind, outDir: string, opts: { bpeVocab?: number; restored?: object; blockSize: number; quiet?: boolean }): Promise<RunData> {
  if (kind !== 'char' && kind !== 'bpe') throw new Error(`unknown tokenizer '${String(kind)}'; use char or bpe`);
  const text = await readText(source);
  if (text.trim().length === 0) throw new Error(`corpus ${source} is empty (only whitespace); give a file with text`);
  let tokenizer: Tokenizer;
  if (opts.restored) {
    tokenizer = tokenizerFromJSON(opts.restored);
    if (tokenizer.kind !== kind) {
      throw new Error(`the checkpoint was trained with the ${tokenizer.kind} tokenizer but --tokenizer ${kind} was given; resume with --tokenizer ${tokenizer.kind}`);
    }
  } else {
    if (kind === 'char') tokenizer = CharTokenizer.fromCorpus(text);
    else {
      const bar = new ProgressBar('BPE tokenizer', undefined, { unit: 'merges', quiet: opts.quiet });
      tokenizer = trainBpe(text, { vocabSize: opts.bpeVocab ?? 512, specialTokens: [END_OF_TEXT], onProgress: (done, total) => bar.update(done, total) });
      bar.finish(`vocabulary ${tokenizer.vocabSize}`);
    }
  }
  const corpusDir = join(outDir, 'data');
  try {
    const bar = new ProgressBar('prepare data', text.length, { unit: 'chars', quiet: opts.quiet });
    const meta = prepareCorpus(text, tokenizer, corpusDir, { source, onProgress: (done) => bar.update(done) });
    bar.finish(`${meta.trainTokens + meta.valTokens} tokens in ${corpusDir}`);
  } catch (e) {
    const msg = (e as Error).message;
    if (opts.restored && /unknown|not in the vocabulary|character/i.test(msg)) {
      throw new Error(`the checkpoint's tokenizer cannot encode ${source} (${msg}); this data does not match the checkpoint`);
    }
    throw e;
  }
  const prepared = loadPreparedCorpus(corpusDir);
  for (const [name, split] of [['train', prepared.train], ['val', prepared.val]] as const) {
    if (split.length < opts.blockSize + 1) {
      throw new Error(`block size ${opts.blockSize} is larger than the ${name} split of ${source} (${split.length} tokens); use a smaller --block-size or more data`);
    }
  }
  return { tokenizer, train: prepared.train, val: prepared.val };
}
