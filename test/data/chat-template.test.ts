// Chat templates against Jinja2 itself: fixtures/chat-templates holds published templates
// (Llama 2, Llama 3, ChatML as in Qwen2) and one exercising whitespace control, namespace,
// filters and loop variables, with the text Jinja2 renders for them the way transformers does
// (trim_blocks, lstrip_blocks, raise_exception); make_fixtures.py regenerates it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { JinjaChatTemplate, type TemplateMessage } from '../../src/data/chat-template.js';

const dir = fileURLToPath(new URL('../../../test/data/fixtures/chat-templates/', import.meta.url));
const templates = JSON.parse(readFileSync(dir + 'templates.json', 'utf8')) as Record<string, string>;
const expected = JSON.parse(readFileSync(dir + 'expected.json', 'utf8')) as {
  conversations: TemplateMessage[][];
  context: Record<string, string>;
  cases: { template: string; conversation: number; add_generation_prompt: boolean; text?: string; error?: string }[];
};

for (const [name, source] of Object.entries(templates)) {
  test(`chat template ${name}: renders as Jinja2 does`, () => {
    const t = new JinjaChatTemplate(source);
    for (const c of expected.cases.filter((x) => x.template === name)) {
      const render = () => t.render(expected.conversations[c.conversation]!, { ...expected.context, add_generation_prompt: c.add_generation_prompt });
      if (c.error !== undefined) assert.throws(render, new RegExp(c.error.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')));
      else assert.equal(render(), c.text, `conversation ${c.conversation}, add_generation_prompt ${c.add_generation_prompt}`);
    }
  });
}

test('chat template: unsupported syntax is an error naming the offset, not a wrong render', () => {
  assert.throws(() => new JinjaChatTemplate('{% macro m() %}x{% endmacro %}'), /\{% macro %\} at offset 0 is not supported/);
  assert.throws(() => new JinjaChatTemplate('{{ x | frobnicate }}').render([]), /unknown filter "frobnicate"/);
  assert.throws(() => new JinjaChatTemplate('{% if x %}never closed'), /missing \{% endif %\}/);
});
