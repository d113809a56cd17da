// The Hugging Face tokenizer.json formats of published models against the reference
// implementation: fixtures/hf-tokenizers holds small tokenizers trained in each format and the
// ids and decodings that Hugging Face `tokenizers` (version in vectors.json) gives for tricky
// strings (whitespace runs, digits, emoji with ZWJ and skin tones, CJK, NFC/NFD, CRLF, special
// tokens inside text) and for id runs that are invalid UTF-8. make_fixtures.py regenerates them.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { tokenizerFromHfJSON, tokenizerFromJSON } from '../../src/data/index.js';

const dir = fileURLToPath(new URL('../../../test/data/fixtures/hf-tokenizers/', import.meta.url));
const vectors = JSON.parse(readFileSync(dir + 'vectors.json', 'utf8')) as Record<string, { encode: { text: string; ids: number[]; decoded: string }[]; decode_invalid_utf8: { ids: number[]; decoded: string }[] }>;

for (const name of ['gpt2', 'llama3', 'qwen2', 'llama2']) {
  const json = JSON.parse(readFileSync(`${dir}${name}.tokenizer.json`, 'utf8')) as Record<string, unknown>;
  const tok = tokenizerFromHfJSON(json);

  test(`${name} tokenizer.json: encode and decode equal Hugging Face tokenizers on ${vectors[name]!.encode.length} tricky strings`, () => {
    for (const c of vectors[name]!.encode) {
      assert.deepEqual(Array.from(tok.encode(c.text)), c.ids, `encode ${JSON.stringify(c.text)}`);
      assert.equal(tok.decode(c.ids), c.decoded, `decode of ${JSON.stringify(c.text)}`);
    }
  });

  test(`${name} tokenizer.json: ids that are invalid UTF-8 decode with U+FFFD as Hugging Face does`, () => {
    for (const c of vectors[name]!.decode_invalid_utf8) assert.equal(tok.decode(c.ids), c.decoded, `decode ${JSON.stringify(c.ids)}`);
  });

  test(`${name} tokenizer.json: toJSON restores an identical tokenizer (checkpoints store it)`, () => {
    const again = tokenizerFromJSON(JSON.parse(JSON.stringify(tok.toJSON())));
    assert.equal(again.fingerprint(), tok.fingerprint());
    for (const c of vectors[name]!.encode) assert.deepEqual(Array.from(again.encode(c.text)), c.ids);
  });
}
