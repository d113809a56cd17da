// Fine-tuning data: strict JSONL reading (every problem names its line), loss masks for
// completions and chats, the length policy, and padded batches whose padding is never learned.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseRecord, readRecords } from '../../src/data/finetune-records.js';
import { encodeExamples, padBatch, PLAIN_CHAT_TEMPLATE, END_OF_TEXT } from '../../src/data/finetune-examples.js';
import { trainBpe } from '../../src/data/bpe_train.js';
import { CharTokenizer } from '../../src/data/char_tokenizer.js';
import { score, chrf, rougeL, normalise } from '../../src/engine/eval/metrics.js';

const tok = trainBpe('the quick brown fox jumps over the lazy dog. spam or ham? User: Assistant: System:\n'.repeat(20), { vocabSize: 300, specialTokens: [END_OF_TEXT] });
const eos = tok.encode(END_OF_TEXT)[0]!;

test('malformed lines, missing fields, unknown roles and empty completions are refused with the line number', () => {
  const bad: [string, RegExp][] = [
    ['{"prompt": "a", "completion": "b"', /f\.jsonl:3: not valid JSON/],
    ['[1, 2]', /f\.jsonl:3: each line must be a JSON object/],
    ['{"prompt": "a"}', /f\.jsonl:3: missing field\(s\): expected "prompt" and "completion", or "messages"; got prompt/],
    ['{"prompt": "a", "completion": 5}', /f\.jsonl:3: completion must be a string, got 5/],
    ['{"prompt": "a", "completion": "  "}', /f\.jsonl:3: completion is empty/],
    ['{"messages": [{"role": "robot", "content": "x"}]}', /f\.jsonl:3: messages\[0\]\.role must be one of system, user, assistant, got "robot"/],
    ['{"messages": [{"role": "user", "content": "x"}]}', /f\.jsonl:3: messages has no assistant message/],
    ['{"messages": [{"role": "user", "content": "x", "weight": 0}, {"role": "assistant", "content": "y"}]}', /only allowed on assistant messages/],
    ['{"messages": [{"role": "assistant", "content": "y", "weight": 0.5}]}', /weight must be 0 or 1, got 0\.5/],
  ];
  for (const [line, want] of bad) assert.throws(() => readRecords('f.jsonl', `{"prompt": "ok", "completion": " fine"}\n\n${line}\n`), want, line);
  assert.equal(readRecords('f.jsonl', '{"prompt": "a", "completion": " b"}\n\n{"prompt": "c", "completion": " d"}\n').length, 2);
});

test('only completion tokens are learned by default; --train-on-prompt learns all; the answer ends with end-of-text', () => {
  const rec = parseRecord('f', 1, '{"prompt": "spam or ham?", "completion": " spam"}');
  const o = { blockSize: 32, template: PLAIN_CHAT_TEMPLATE, overflow: 'refuse' as const };
  const [e] = encodeExamples('f', [rec], tok, { ...o, trainOnPrompt: false }).examples;
  const p = tok.encode('spam or ham?').length;
  const c = tok.encode(' spam').length;
  assert.equal(e!.ids.length, p + c + 1);
  assert.equal(e!.ids.at(-1), eos);
  assert.deepEqual([...e!.learn], [...Array(p).fill(0), ...Array(c + 1).fill(1)]);
  const [all] = encodeExamples('f', [rec], tok, { ...o, trainOnPrompt: true }).examples;
  assert.ok(all!.learn.every((x) => x === 1));
  const { x, y } = padBatch([e!], 32);
  // Targets are the next token where it is learned, -1 elsewhere (prompt and padding).
  for (let t = 0; t < 32; t++) assert.equal(y[t], t + 1 < e!.ids.length && e!.learn[t + 1] ? e!.ids[t + 1] : -1);
  assert.equal(x[0], e!.ids[0]);
});

test('chat messages: assistant turns are learned unless weight 0; the template is applied', () => {
  const rec = parseRecord('f', 1, JSON.stringify({ messages: [
    { role: 'system', content: 'the fox' },
    { role: 'user', content: 'spam?' },
    { role: 'assistant', content: 'ham', weight: 0 },
    { role: 'user', content: 'and the dog?' },
    { role: 'assistant', content: 'spam' },
  ] }));
  const [e] = encodeExamples('f', [rec], tok, { blockSize: 128, template: PLAIN_CHAT_TEMPLATE, overflow: 'refuse', trainOnPrompt: false }).examples;
  const learned = tok.decode([...e!.ids].filter((_, i) => e!.learn[i]));
  assert.equal(learned, `spam${END_OF_TEXT}`);
  assert.equal(tok.decode(e!.ids), `System: the fox\nUser: spam?\nAssistant:ham${END_OF_TEXT}\nUser: and the dog?\nAssistant:spam${END_OF_TEXT}\n`);
});

test('examples longer than the context: truncate keeps the end of the prompt, skip counts, refuse names the line', () => {
  const long = parseRecord('f', 7, JSON.stringify({ prompt: 'the quick brown fox jumps over the lazy dog. '.repeat(4), completion: ' spam' }));
  const short = parseRecord('f', 8, '{"prompt": "ham?", "completion": " ham"}');
  const o = { blockSize: 12, template: PLAIN_CHAT_TEMPLATE, trainOnPrompt: false };
  const t = encodeExamples('f', [long, short], tok, { ...o, overflow: 'truncate' });
  assert.equal(t.truncated, 1);
  assert.equal(t.examples[0]!.ids.length, 13);
  // The prompt lost its beginning; the answer is whole.
  assert.ok(tok.decode(t.examples[0]!.ids).endsWith(`lazy dog.  spam${END_OF_TEXT}`), tok.decode(t.examples[0]!.ids));
  assert.ok(!tok.decode(t.examples[0]!.ids).startsWith('the quick'));
  const s = encodeExamples('f', [long, short], tok, { ...o, overflow: 'skip' });
  assert.deepEqual(s.skipped.map((x) => x.line), [7]);
  assert.equal(s.examples.length, 1);
  assert.throws(() => encodeExamples('f', [long, short], tok, { ...o, overflow: 'refuse' }), /^DataLineError: f:7: \d+ tokens is longer than the block size 12/);
});

test('a tokenizer without end-of-text is refused with what to do', () => {
  const chars = CharTokenizer.fromCorpus('abc ');
  assert.throws(() => encodeExamples('f', [parseRecord('f', 1, '{"prompt": "a", "completion": " b"}')], chars, { blockSize: 8, template: PLAIN_CHAT_TEMPLATE, trainOnPrompt: false, overflow: 'refuse' }), /no <\|endoftext\|> token.*--tokenizer bpe/);
});

test('metrics: normalisation, exact, accuracy on labels, ROUGE-L and chrF on known values', () => {
  assert.equal(normalise('  The  Answer.\n'), 'the answer');
  assert.deepEqual(score('exact', [' Spam.', 'ham'], ['spam', 'spam']).perExample, [1, 0]);
  assert.deepEqual(score('accuracy', [' spam because of links', 'ham'], [' spam', 'spam']).perExample, [1, 0]);
  // LCS of "the cat sat" and "the cat on the mat sat" is 3: P = 1, R = 3/6, F1 = 2/3.
  assert.ok(Math.abs(rougeL('the cat sat', 'the cat on the mat sat') - 2 / 3) < 1e-12);
  assert.equal(chrf(['abc'], ['abc']), 1);
  assert.equal(chrf(['xyz'], ['abc']), 0);
  // "ab" vs "abc": unigram P 1 R 2/3; bigram P 1 R 1/2; trigram: no hypothesis n-grams (P 0), R 0.
  const p = (1 + 1 + 0) / 3;
  const r = (2 / 3 + 1 / 2 + 0) / 3;
  assert.ok(Math.abs(chrf(['ab'], ['abc']) - (5 * p * r) / (4 * p + r)) < 1e-12);
});
