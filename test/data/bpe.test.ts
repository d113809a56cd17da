import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { trainBpe } from '../../src/data/bpe_train.js';
import { BpeTokenizer } from '../../src/data/bpe_tokenizer.js';
import { BYTE_TO_CHAR, preTokenize } from '../../src/data/byte_level.js';
import { tokenizerFromJSON } from '../../src/data/tokenizer_json.js';
import { prepareCorpus, loadPreparedCorpus } from '../../src/data/prepare.js';

const bytesChar = (b: number): string => BYTE_TO_CHAR[b]!;
const SHAKESPEARE = new URL('../../../../shared/data/tinyshakespeare.txt', import.meta.url).pathname;

const CORPUS = [
  'The quick brown fox jumps over the lazy dog. ',
  "It's the fox's den, isn't it? We'll see; they've gone. ",
  'Numbers 12345 and 2024-06-01, prices $9.99! ',
  'Ünïcödé wörds, naïve café, 日本語のテキスト, emoji 😀🎉👍🏽. ',
].join('').repeat(20);

const HARD_TEXTS = [
  '',
  'plain ascii text',
  'emoji 😀🎉 family 👨‍👩‍👧‍👦 skin 👍🏽 flags 🇯🇵',
  '日本語 中文 한국어 العربية עברית',
  'combining e\u0301 and zero\u200bwidth and bidi \u202e',
  'tabs\tand\r\nwindows newlines\n\n\n   trailing spaces   ',
  'control \u0000\u0001\u007f bytes and \u00ad soft hyphen',
  'never seen in training: ᚠᛇᚻ ∮ E⋅da = Q 🦄🦄🦄',
];

test('GPT-2 pre-tokenization splits words, contractions, digits, punctuation and whitespace', () => {
  assert.deepEqual(preTokenize("Hello world's  end\n"), ['Hello', ' world', "'s", ' ', ' end', '\n']);
  assert.deepEqual(preTokenize('a1234!? b'), ['a', '1234', '!?', ' b']);
  for (const t of HARD_TEXTS) assert.equal(preTokenize(t).join(''), t);
});

test('BPE training: merges follow pair frequency (known answer)', () => {
  // Pre-tokens: "ab" x1, " ab" x3. Pair (a,b) occurs 4 times, (Ġ,a) 3 times: a+b merges first,
  // then Ġ+ab (3) .
  const tok = trainBpe('ab ab ab ab', { vocabSize: 258 });
  const json = tok.toJSON();
  assert.deepEqual(json.model.merges, ['a b', 'Ġ ab']);
  assert.equal(json.model.vocab['ab'], 256);
  assert.equal(json.model.vocab['Ġab'], 257);
  assert.deepEqual(Array.from(tok.encode(' ab ab')), [257, 257]);
  assert.deepEqual(Array.from(tok.encode('abab')), [256, 256]);
  // Stops early when no pair is frequent enough instead of inventing merges.
  assert.equal(trainBpe('xy', { vocabSize: 300 }).vocabSize, 256);
});

test('BPE training: incremental pair counts learn the same merges as a naive rescan per merge', () => {
  const fast = trainBpe(CORPUS, { vocabSize: 420 }).toJSON();
  // Naive reference: recount every pair of every word before each merge.
  const freq = new Map<string, number>();
  for (const w of preTokenize(CORPUS)) freq.set(w, (freq.get(w) ?? 0) + 1);
  const vocab = fast.model.vocab;
  const byteTok = Object.entries(vocab).filter(([, id]) => id < 256).sort((a, b) => a[1] - b[1]).map(([t]) => t);
  const words = [...freq].map(([w, f]) => ({ ids: Array.from(Buffer.from(w, 'utf8'), (b) => byteTok.indexOf(bytesChar(b))), f }));
  const tokens = byteTok.slice();
  const merges: string[] = [];
  while (tokens.length < 420) {
    const counts = new Map<string, number>();
    for (const { ids, f } of words) for (let i = 0; i + 1 < ids.length; i++) counts.set(`${ids[i]},${ids[i + 1]}`, (counts.get(`${ids[i]},${ids[i + 1]}`) ?? 0) + f);
    let best: [number, number] | undefined;
    let bestCount = 0;
    for (const [k, c] of counts) {
      const [a, b] = k.split(',').map(Number) as [number, number];
      if (c > bestCount || (c === bestCount && best && (a < best[0] || (a === best[0] && b < best[1])))) {
        best = [a, b];
        bestCount = c;
      }
    }
    if (!best || bestCount < 2) break;
    const id = tokens.length;
    tokens.push(tokens[best[0]]! + tokens[best[1]]!);
    merges.push(`${tokens[best[0]]} ${tokens[best[1]]}`);
    for (const w of words) {
      const out: number[] = [];
      for (let i = 0; i < w.ids.length; i++) {
        if (i + 1 < w.ids.length && w.ids[i] === best[0] && w.ids[i + 1] === best[1]) {
          out.push(id);
          i++;
        } else out.push(w.ids[i]!);
      }
      w.ids = out;
    }
  }
  assert.deepEqual(fast.model.merges, merges);
});

test('BPE: round trip is exact on any UTF-8 text, including text never seen in training', () => {
  const tok = trainBpe(CORPUS, { vocabSize: 400 });
  assert.equal(tok.vocabSize, 400);
  for (const t of HARD_TEXTS) {
    const ids = tok.encode(t);
    for (const id of ids) assert.ok(id < tok.vocabSize);
    assert.equal(tok.decode(ids), t);
  }
  // Training compresses its corpus well below one token per byte.
  assert.ok(tok.encode(CORPUS).length < Buffer.byteLength(CORPUS) / 3);
});

test('BPE: Hugging Face tokenizer.json shape, save -> load -> same encoding', () => {
  const tok = trainBpe(CORPUS, { vocabSize: 350, specialTokens: ['<|endoftext|>'] });
  const json = tok.toJSON();
  assert.equal(json.version, '1.0');
  assert.equal(json.model.type, 'BPE');
  assert.equal(json.pre_tokenizer.type, 'ByteLevel');
  assert.equal(json.pre_tokenizer.add_prefix_space, false);
  assert.equal(json.pre_tokenizer.use_regex, true);
  assert.equal(json.decoder.type, 'ByteLevel');
  assert.equal(json.normalizer, null);
  for (const key of ['truncation', 'padding', 'added_tokens', 'post_processor']) assert.ok(key in json, key);
  for (const key of ['dropout', 'unk_token', 'continuing_subword_prefix', 'end_of_word_suffix', 'fuse_unk', 'byte_fallback', 'vocab', 'merges']) assert.ok(key in json.model, key);
  // GPT-2's byte ids: '!' is 0, 'Ġ' (space) is 220, 'Ċ' (newline) is 198.
  assert.equal(json.model.vocab['!'], 0);
  assert.equal(json.model.vocab['Ġ'], 220);
  assert.equal(json.model.vocab['Ċ'], 198);
  assert.equal(Object.keys(json.model.vocab).length, 349);
  assert.equal(json.model.merges.length, 349 - 256);
  for (const m of json.model.merges) assert.equal(m.split(' ').length, 2);
  assert.deepEqual(json.added_tokens.map((t) => [t.id, t.content, t.special]), [[349, '<|endoftext|>', true]]);

  const dir = mkdtempSync(join(tmpdir(), 'atscale-bpe-'));
  try {
    const file = join(dir, 'tokenizer.json');
    writeFileSync(file, JSON.stringify(json, null, 2));
    const loaded = tokenizerFromJSON(JSON.parse(readFileSync(file, 'utf8')));
    assert.equal(loaded.kind, 'bpe');
    assert.equal(loaded.fingerprint(), tok.fingerprint());
    const sample = 'The fox 🦊 said <|endoftext|> café 12345' + HARD_TEXTS.join('|');
    const ids = tok.encode(sample);
    assert.deepEqual(loaded.encode(sample), ids);
    assert.ok(ids.includes(349));
    assert.equal(loaded.decode(ids), sample);
    // Newer tokenizers releases write merges as [a, b] pairs; both forms load the same.
    const pairs = { ...json, model: { ...json.model, merges: json.model.merges.map((m) => m.split(' ')) } };
    assert.deepEqual(BpeTokenizer.fromJSON(pairs).encode(sample), ids);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('BPE: a prepared corpus stores the tokenizer and restores it from meta.json', () => {
  const dir = mkdtempSync(join(tmpdir(), 'atscale-bpe-prep-'));
  try {
    const tok = trainBpe(CORPUS, { vocabSize: 300 });
    const meta = prepareCorpus(CORPUS, tok, dir);
    assert.equal(meta.dtype, 'uint16');
    const loaded = loadPreparedCorpus(dir);
    assert.equal(loaded.tokenizer.kind, 'bpe');
    assert.equal(loaded.tokenizer.fingerprint(), tok.fingerprint());
    assert.equal(loaded.tokenizer.decode(loaded.train) + loaded.tokenizer.decode(loaded.val), CORPUS);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('BPE: bad tokenizer.json and bad options are clear errors naming the key', () => {
  const json = trainBpe(CORPUS, { vocabSize: 300 }).toJSON();
  assert.throws(() => BpeTokenizer.fromJSON({ ...json, model: { ...json.model, type: 'WordPiece' } }), /model\.type is "WordPiece"; only "BPE"/);
  assert.throws(() => BpeTokenizer.fromJSON({ ...json, model: { ...json.model, merges: ['zz qq'] } }), /model\.merges\[0\] names "zz"/);
  assert.throws(() => BpeTokenizer.fromJSON({ ...json, pre_tokenizer: { type: 'Whitespace' } }), /pre_tokenizer\.type must be "ByteLevel"/);
  const vocab = { ...json.model.vocab };
  delete vocab['Ġ'];
  assert.throws(() => BpeTokenizer.fromJSON({ ...json, model: { ...json.model, merges: [], vocab } }), /lacks the token for byte 0x20/);
  assert.throws(() => trainBpe(CORPUS, { vocabSize: 100 }), /vocabSize must be an integer in \[256,/);
  assert.throws(() => trainBpe('', { vocabSize: 300 }), /corpus is empty/);
  assert.throws(() => tokenizerFromJSON({ hello: 1 }), /neither a char tokenizer/);
});

test('BPE on tinyshakespeare (vocab 1024): exact round trip and compression', { skip: existsSync(SHAKESPEARE) ? false : `${SHAKESPEARE} is absent` }, () => {
  const text = readFileSync(SHAKESPEARE, 'utf8');
  const t0 = performance.now();
  const tok = trainBpe(text, { vocabSize: 1024 });
  const trainMs = performance.now() - t0;
  const ids = tok.encode(text);
  const encodeMs = performance.now() - t0 - trainMs;
  assert.equal(tok.vocabSize, 1024);
  assert.equal(tok.decode(ids), text);
  const ratio = text.length / ids.length;
  console.log(`# BPE tinyshakespeare vocab 1024: train ${trainMs.toFixed(0)} ms, encode ${encodeMs.toFixed(0)} ms, ${ratio.toFixed(2)} chars/token`);
  assert.ok(ratio > 2.2, `compression ${ratio}`);
});
