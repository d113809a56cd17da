// data/: tokenizers, corpus reading and preparation, batching.
export { type Tokenizer, canonicalJson, fingerprintOf, assertSameTokenizer } from './tokenizer.js';
export { CharTokenizer, type CharTokenizerJSON } from './char_tokenizer.js';
export { BpeTokenizer, type BpeParts, type HfTokenizerJSON, parseHfTokenizerJSON } from './bpe_tokenizer.js';
export { trainBpe, type BpeTrainOptions } from './bpe_train.js';
export { tokenizerFromJSON, tokenizerFromHfJSON, loadTokenizer } from './tokenizer_json.js';
export { SentencePieceBpe } from './sentencepiece-bpe.js';
export { JinjaChatTemplate, type TemplateMessage } from './chat-template.js';
export { END_OF_TEXT, PlainChatFormat, JinjaChatFormat, chatFormatFromJSON, type ChatFormat, type ChatPiece } from './chat-format.js';
export { compileSplitPattern, splitIsolated } from './split-pattern.js';
export { hfTokenizerJSON } from './hf-tokenizer.js';
export { readText, isUrl, type ReadTextOptions } from './read_text.js';
export {
  prepareCorpus,
  splitAndEncode,
  loadPreparedCorpus,
  readTokenFile,
  tokenDtypeFor,
  type CorpusMeta,
  type PreparedCorpus,
  type TokenArray,
  type TokenDtype,
} from './prepare.js';
export { BatchSampler, ShardedBatchSampler, sliceMicroBatch, rankRows, startsAfter, type Batch } from './batch_sampler.js';
