import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, mkdtempSync, rmSync, truncateSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CharTokenizer } from '../../src/data/char_tokenizer.js';
import { tokenizerFromJSON } from '../../src/data/tokenizer_json.js';
import { assertSameTokenizer } from '../../src/data/tokenizer.js';
import { prepareCorpus, loadPreparedCorpus, splitAndEncode } from '../../src/data/prepare.js';

const SHAKESPEARE = new URL('../../../../shared/data/tinyshakespeare.txt', import.meta.url).pathname;

test('char tokenizer: sorted code points, round trip, astral characters', () => {
  const text = 'héllo wörld 😀 abc';
  const tok = CharTokenizer.fromCorpus(text);
  const json = tok.toJSON();
  assert.deepEqual(json.chars, [...new Set(Array.from(text))].sort((a, b) => a.codePointAt(0)! - b.codePointAt(0)!));
  assert.equal(tok.vocabSize, new Set(Array.from(text)).size);
  const ids = tok.encode(text);
  assert.equal(ids.length, Array.from(text).length);
  assert.equal(tok.decode(ids), text);
  assert.equal(json.chars[ids[0]!], 'h');
  // Restored from JSON: same ids and same fingerprint.
  const back = tokenizerFromJSON(JSON.parse(JSON.stringify(json)));
  assert.deepEqual(back.encode(text), ids);
  assert.equal(back.fingerprint(), tok.fingerprint());
});

test('char tokenizer: clear errors for unknown characters, bad ids, empty corpus, mismatch', () => {
  const tok = CharTokenizer.fromCorpus('abc');
  assert.throws(() => tok.encode('abz'), /character "z" \(U\+007A\) is not in the vocabulary of 3/);
  assert.throws(() => tok.decode([0, 7]), /id 7 is outside the vocabulary \[0, 3\)/);
  assert.throws(() => CharTokenizer.fromCorpus(''), /empty corpus/);
  const other = CharTokenizer.fromCorpus('abd');
  assert.throws(() => assertSameTokenizer(tok, other, 'checkpoint out/ckpt'), /tokenizer mismatch: checkpoint out\/ckpt was made with a char tokenizer \(vocab 3/);
  assert.doesNotThrow(() => assertSameTokenizer(tok, CharTokenizer.fromCorpus('cba'), 'x'));
});

test('prepare: split at floor(0.9 n) characters, uint16 files and meta.json round trip', () => {
  const dir = mkdtempSync(join(tmpdir(), 'atscale-prep-'));
  try {
    const text = 'abcdefghij'.repeat(7) + '😀'; // 71 code points -> 63 train / 8 val
    const tok = CharTokenizer.fromCorpus(text);
    const meta = prepareCorpus(text, tok, dir, { source: 'inline' });
    assert.equal(meta.trainTokens, 63);
    assert.equal(meta.valTokens, 8);
    assert.equal(meta.dtype, 'uint16');
    assert.equal(readFileSync(join(dir, 'train.bin')).length, 63 * 2);
    const loaded = loadPreparedCorpus(dir);
    assert.equal(loaded.tokenizer.decode(loaded.train) + loaded.tokenizer.decode(loaded.val), text);
    assert.equal(loaded.tokenizer.fingerprint(), tok.fingerprint());
    assert.throws(() => splitAndEncode('', tok), /corpus is empty/);
    // Damaged token files are refused, not half-read.
    truncateSync(join(dir, 'val.bin'), 15);
    assert.throws(() => loadPreparedCorpus(dir), /val\.bin has 15 bytes, not a multiple of 2 \(uint16\); it is truncated/);
    truncateSync(join(dir, 'val.bin'), 14);
    assert.throws(() => loadPreparedCorpus(dir), /token files hold 63\/7 tokens but meta\.json says 63\/8/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('tinyshakespeare: vocab 65, train 1,003,854 / val 111,540 tokens', { skip: existsSync(SHAKESPEARE) ? false : `${SHAKESPEARE} is absent` }, () => {
  const text = readFileSync(SHAKESPEARE, 'utf8');
  const tok = CharTokenizer.fromCorpus(text);
  assert.equal(tok.vocabSize, 65);
  const { train, val, dtype } = splitAndEncode(text, tok);
  assert.equal(dtype, 'uint16');
  assert.equal(train.length, 1_003_854);
  assert.equal(val.length, 111_540);
  // nanoGPT's stoi: '\n' -> 0, ' ' -> 1, 'A' -> 13, 'a' -> 39.
  assert.deepEqual(Array.from(tok.encode('\n A a')), [0, 1, 13, 1, 39]);
});
