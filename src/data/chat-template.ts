// Chat templates: the Jinja subset that tokenizer_config.json templates of published models use
// (Llama 2/3, ChatML as in Qwen2 and SmolLM2), rendered with the settings Hugging Face applies
// (trim_blocks, lstrip_blocks). Supported: {{ }}, {% if/elif/else %}, {% for x in xs [if c] %}
// with loop.index/index0/first/last/length, {% set %} (namespace attributes too), {# #}, "-"
// whitespace control; literals, a.b, a['b'], a[i], a[i:j], calls, + - * / % ~, comparisons,
// in, and/or/not, is [not] defined/none/string/number/mapping/sequence, x if c else y; filters
// trim, length, tojson, upper, lower, string, first, last, default, join, capitalize; string
// methods strip/lstrip/rstrip/startswith/endswith/split/upper/lower/replace/title, dict get/items/
// keys/values; raise_exception and namespace. Anything else is an error naming the template
// position, never a silent mis-render.

import { FILTERS, member, str, TESTS, truthy, type Value } from './chat-template-values.js';

type Scope = { vars: Map<string, Value>; parent?: Scope };

type Node =
  | { kind: 'text'; text: string }
  | { kind: 'out'; expr: Expr }
  | { kind: 'if'; branches: { cond: Expr; body: Node[] }[]; otherwise: Node[] }
  | { kind: 'for'; names: string[]; iter: Expr; filter?: Expr; body: Node[]; otherwise: Node[] }
  | { kind: 'set'; target: string[]; expr: Expr };
type Expr = (s: Scope) => Value;

class TemplateError extends Error {}

// ---- lexing: text, {{ }}, {% %}, {# #} with "-" trimming, trim_blocks and lstrip_blocks ----

type Tag = { type: 'text' | 'out' | 'stmt'; body: string; at: number };

function lex(src: string): Tag[] {
  const tags: Tag[] = [];
  const re = /\{\{|\{%|\{#/g;
  let at = 0;
  let trimNext = false;
  let m: RegExpExecArray | null;
  while ((m = re.exec(src))) {
    const open = m[0];
    const close = open === '{{' ? '}}' : open === '{%' ? '%}' : '#}';
    const end = src.indexOf(close, m.index + 2);
    if (end < 0) throw new TemplateError(`chat template: ${open} at offset ${m.index} is never closed with ${close}`);
    let text = src.slice(at, m.index);
    if (trimNext) text = text.replace(/^\s+/, '');
    let inner = src.slice(m.index + 2, end);
    const leftTrim = inner.startsWith('-');
    const rightTrim = inner.endsWith('-');
    if (leftTrim) text = text.replace(/\s+$/, '');
    else if (open !== '{{') text = text.replace(/(^|\n)[ \t]*$/, '$1'); // lstrip_blocks
    if (text) tags.push({ type: 'text', body: text, at });
    inner = inner.slice(leftTrim ? 1 : 0, rightTrim ? -1 : undefined).trim();
    if (open !== '{#') tags.push({ type: open === '{{' ? 'out' : 'stmt', body: inner, at: m.index });
    at = end + 2;
    trimNext = rightTrim;
    if (!rightTrim && open !== '{{' && src[at] === '\n') at++; // trim_blocks
    re.lastIndex = at;
  }
  let rest = src.slice(at);
  if (trimNext) rest = rest.replace(/^\s+/, '');
  if (rest) tags.push({ type: 'text', body: rest, at });
  return tags;
}

// ---- expressions: a small Pratt-style parser over tokens ----

const TOKEN = /\s*(?:(\d+(?:\.\d+)?)|('(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")|([A-Za-z_][A-Za-z0-9_]*)|(==|!=|<=|>=|\/\/|\*\*|[-+*/%~<>()[\]{}.,:|=]))/y;

function tokenize(src: string, at: number): string[] {
  const out: string[] = [];
  TOKEN.lastIndex = 0;
  let i = 0;
  while (i < src.length) {
    if (/^\s*$/.test(src.slice(i))) break;
    TOKEN.lastIndex = i;
    const m = TOKEN.exec(src);
    if (!m) throw new TemplateError(`chat template: cannot read ${JSON.stringify(src.slice(i, i + 20))} at offset ${at}`);
    out.push(m[0].trim());
    i = TOKEN.lastIndex;
  }
  return out;
}

function unquote(t: string): string {
  return t.slice(1, -1).replace(/\\(n|t|r|\\|'|")/g, (_, c: string) => ({ n: '\n', t: '\t', r: '\r' })[c as 'n'] ?? c);
}

function lookup(s: Scope, name: string): Value {
  for (let c: Scope | undefined = s; c; c = c.parent) if (c.vars.has(name)) return c.vars.get(name);
  return undefined;
}

class ExprParser {
  private i = 0;
  constructor(private readonly t: string[], private readonly at: number) {}

  fail(what: string): never {
    throw new TemplateError(`chat template: ${what} at offset ${this.at} (in "${this.t.join(' ')}")`);
  }
  peek(): string | undefined {
    return this.t[this.i];
  }
  next(): string {
    const t = this.t[this.i++];
    if (t === undefined) this.fail('unexpected end of expression');
    return t;
  }
  eat(t: string): boolean {
    if (this.t[this.i] === t) {
      this.i++;
      return true;
    }
    return false;
  }
  expect(t: string): void {
    if (!this.eat(t)) this.fail(`expected "${t}", found "${this.peek() ?? 'end'}"`);
  }
  done(): boolean {
    return this.i >= this.t.length;
  }

  /** Full expression, with the conditional form `a if c else b` (no `if` when noCond). */
  expr(noCond = false): Expr {
    const a = this.or();
    if (noCond || this.peek() !== 'if') return a;
    this.next();
    const c = this.or();
    const b = this.eat('else') ? this.expr() : () => undefined;
    return (s) => (truthy(c(s)) ? a(s) : b(s));
  }
  private or(): Expr {
    let a = this.and();
    while (this.eat('or')) {
      const l = a;
      const r = this.and();
      a = (s) => (truthy(l(s)) ? l(s) : r(s));
    }
    return a;
  }
  private and(): Expr {
    let a = this.not();
    while (this.eat('and')) {
      const l = a;
      const r = this.not();
      a = (s) => (truthy(l(s)) ? r(s) : l(s));
    }
    return a;
  }
  private not(): Expr {
    if (this.eat('not')) {
      const a = this.not();
      return (s) => !truthy(a(s));
    }
    return this.compare();
  }
  private compare(): Expr {
    let a = this.concat();
    for (;;) {
      const op = this.peek();
      if (op === 'is') {
        this.next();
        const neg = this.eat('not');
        const name = this.next();
        const test = TESTS[name] ?? this.fail(`unknown test "is ${name}"`);
        const l = a;
        a = (s) => test(l(s)) !== neg;
      } else if (op === 'in' || (op === 'not' && this.t[this.i + 1] === 'in')) {
        const neg = op === 'not';
        this.i += neg ? 2 : 1;
        const l = a;
        const r = this.concat();
        a = (s) => {
          const hay = r(s);
          const found = typeof hay === 'string' ? hay.includes(str(l(s))) : Array.isArray(hay) ? hay.includes(l(s)) : hay !== null && typeof hay === 'object' ? (l(s) as string) in hay : false;
          return found !== neg;
        };
      } else if (op && ['==', '!=', '<', '>', '<=', '>='].includes(op)) {
        this.next();
        const l = a;
        const r = this.concat();
        const cmp: Record<string, (x: any, y: any) => boolean> = { '==': (x, y) => x === y, '!=': (x, y) => x !== y, '<': (x, y) => x < y, '>': (x, y) => x > y, '<=': (x, y) => x <= y, '>=': (x, y) => x >= y };
        a = (s) => cmp[op]!(l(s), r(s));
      } else return a;
    }
  }
  private concat(): Expr {
    let a = this.sum();
    while (this.eat('~')) {
      const l = a;
      const r = this.sum();
      a = (s) => str(l(s)) + str(r(s));
    }
    return a;
  }
  private sum(): Expr {
    let a = this.product();
    for (let op = this.peek(); op === '+' || op === '-'; op = this.peek()) {
      this.next();
      const l = a;
      const r = this.product();
      a = op === '+' ? (s) => add(l(s), r(s), this) : (s) => (l(s) as number) - (r(s) as number);
    }
    return a;
  }
  private product(): Expr {
    let a = this.unary();
    for (let op = this.peek(); op === '*' || op === '/' || op === '%' || op === '//'; op = this.peek()) {
      this.next();
      const l = a;
      const r = this.unary();
      a = (s) => {
        const x = l(s) as number;
        const y = r(s) as number;
        return op === '*' ? x * y : op === '/' ? x / y : op === '//' ? Math.floor(x / y) : ((x % y) + y) % y;
      };
    }
    return a;
  }
  private unary(): Expr {
    if (this.eat('-')) {
      const a = this.unary();
      return (s) => -(a(s) as number);
    }
    return this.postfix(this.primary());
  }
  private postfix(a: Expr): Expr {
    for (;;) {
      if (this.eat('.')) {
        const name = this.next();
        const obj = a;
        a = (s) => member(obj(s), name);
      } else if (this.eat('[')) {
        const obj = a;
        let lo: Expr | undefined;
        if (this.peek() !== ':') lo = this.expr();
        if (this.eat(':')) {
          const hi = this.peek() === ']' ? undefined : this.expr();
          this.expect(']');
          a = (s) => {
            const v = obj(s) as Value[] | string;
            return v.slice((lo?.(s) as number) ?? 0, hi ? (hi(s) as number) : undefined);
          };
        } else {
          this.expect(']');
          a = (s) => member(obj(s), lo!(s));
        }
      } else if (this.eat('(')) {
        const fn = a;
        const args = this.args();
        a = (s) => {
          const f = fn(s);
          if (typeof f !== 'function') this.fail('call of something that is not a function');
          return (f as (...x: Value[]) => Value)(...args.map((x) => x(s)));
        };
      } else if (this.eat('|')) {
        const name = this.next();
        const filter = FILTERS[name] ?? this.fail(`unknown filter "${name}"`);
        const args = this.eat('(') ? this.args() : [];
        const v = a;
        a = (s) => filter(v(s), args.map((x) => x(s)));
      } else return a;
    }
  }
  /** Call arguments after "(", up to ")"; keyword arguments k=v become one trailing object. */
  private args(): Expr[] {
    const pos: Expr[] = [];
    const kw: [string, Expr][] = [];
    while (!this.eat(')')) {
      if (/^[A-Za-z_]\w*$/.test(this.peek() ?? '') && this.t[this.i + 1] === '=') {
        const k = this.next();
        this.next();
        kw.push([k, this.expr()]);
      } else pos.push(this.expr());
      if (!this.eat(',')) this.expect(')');
      if (this.t[this.i - 1] === ')') break;
    }
    if (kw.length) pos.push((s) => Object.fromEntries(kw.map(([k, e]) => [k, e(s)])));
    return pos;
  }
  private primary(): Expr {
    const t = this.next();
    if (t === '(') {
      const e = this.expr();
      this.expect(')');
      return e;
    }
    if (t === '[') {
      const items: Expr[] = [];
      while (!this.eat(']')) {
        items.push(this.expr());
        if (!this.eat(',')) this.expect(']');
        if (this.t[this.i - 1] === ']') break;
      }
      return (s) => items.map((x) => x(s));
    }
    if (t === '{') {
      const entries: [Expr, Expr][] = [];
      while (!this.eat('}')) {
        const k = this.expr();
        this.expect(':');
        entries.push([k, this.expr()]);
        if (!this.eat(',')) this.expect('}');
        if (this.t[this.i - 1] === '}') break;
      }
      return (s) => Object.fromEntries(entries.map(([k, v]) => [str(k(s)), v(s)]));
    }
    if (/^\d/.test(t)) return () => Number(t);
    if (t[0] === "'" || t[0] === '"') {
      // Adjacent string literals concatenate, as in Python.
      let text = unquote(t);
      while (/^['"]/.test(this.peek() ?? '')) text += unquote(this.next());
      return () => text;
    }
    if (t === 'true' || t === 'True') return () => true;
    if (t === 'false' || t === 'False') return () => false;
    if (t === 'none' || t === 'None') return () => null;
    if (/^[A-Za-z_]/.test(t)) return (s) => lookup(s, t);
    this.fail(`unexpected "${t}"`);
  }
}

function add(x: Value, y: Value, p: ExprParser): Value {
  if (typeof x === 'number' && typeof y === 'number') return x + y;
  if (Array.isArray(x) && Array.isArray(y)) return [...x, ...y];
  if (typeof x === 'string' && typeof y === 'string') return x + y;
  p.fail(`cannot add ${typeof x} and ${typeof y} (use ~ to join as text)`);
}

function parseExpr(src: string, at: number): Expr {
  const p = new ExprParser(tokenize(src, at), at);
  const e = p.expr();
  if (!p.done()) p.fail(`unexpected "${p.peek()}"`);
  return e;
}

// ---- statements ----

function parse(tags: Tag[]): Node[] {
  let i = 0;
  const block = (ends: string[]): { nodes: Node[]; end: string } => {
    const nodes: Node[] = [];
    while (i < tags.length) {
      const t = tags[i++]!;
      if (t.type === 'text') nodes.push({ kind: 'text', text: t.body });
      else if (t.type === 'out') nodes.push({ kind: 'out', expr: parseExpr(t.body, t.at) });
      else {
        const word = t.body.split(/\s+/)[0]!;
        const rest = t.body.slice(word.length);
        if (ends.includes(word)) {
          i--;
          return { nodes, end: word };
        }
        if (word === 'if') {
          const branches: { cond: Expr; body: Node[] }[] = [];
          let cond = parseExpr(rest, t.at);
          let otherwise: Node[] = [];
          for (;;) {
            const b = block(['elif', 'else', 'endif']);
            branches.push({ cond, body: b.nodes });
            const endTag = tags[i++]!;
            if (b.end === 'elif') {
              cond = parseExpr(endTag.body.slice(4), endTag.at);
              continue;
            }
            if (b.end === 'else') {
              otherwise = block(['endif']).nodes;
              i++;
            }
            break;
          }
          nodes.push({ kind: 'if', branches, otherwise });
        } else if (word === 'for') {
          const m = /^\s*([A-Za-z_]\w*(?:\s*,\s*[A-Za-z_]\w*)*)\s+in\s+(.+)$/s.exec(rest);
          if (!m) throw new TemplateError(`chat template: cannot read {% for${rest} %} at offset ${t.at}`);
          const p = new ExprParser(tokenize(m[2]!, t.at), t.at);
          const iter = p.expr(true);
          const filter = p.eat('if') ? p.expr(true) : undefined;
          if (!p.done()) p.fail(`unexpected "${p.peek()}"`);
          const b = block(['else', 'endfor']);
          let otherwise: Node[] = [];
          if (tags[i++]?.body.split(/\s+/)[0] === 'else') {
            otherwise = block(['endfor']).nodes;
            i++;
          }
          nodes.push({ kind: 'for', names: m[1]!.split(',').map((x) => x.trim()), iter, filter, body: b.nodes, otherwise });
        } else if (word === 'set') {
          const m = /^\s*([A-Za-z_]\w*(?:\.[A-Za-z_]\w*)?)\s*=(.+)$/s.exec(rest);
          if (!m) throw new TemplateError(`chat template: cannot read {% set${rest} %} at offset ${t.at} (block sets are not supported)`);
          nodes.push({ kind: 'set', target: m[1]!.split('.'), expr: parseExpr(m[2]!, t.at) });
        } else throw new TemplateError(`chat template: {% ${word} %} at offset ${t.at} is not supported`);
      }
    }
    if (ends.length) throw new TemplateError(`chat template: missing {% ${ends.at(-1)} %}`);
    return { nodes, end: '' };
  };
  return block([]).nodes;
}

function run(nodes: Node[], s: Scope, out: string[]): void {
  for (const n of nodes) {
    if (n.kind === 'text') out.push(n.text);
    else if (n.kind === 'out') out.push(str(n.expr(s)));
    else if (n.kind === 'if') {
      const hit = n.branches.find((b) => truthy(b.cond(s)));
      run(hit ? hit.body : n.otherwise, s, out);
    } else if (n.kind === 'set') {
      const v = n.expr(s);
      if (n.target.length === 1) s.vars.set(n.target[0]!, v);
      else (lookup(s, n.target[0]!) as Record<string, Value>)[n.target[1]!] = v;
    } else {
      const raw = n.iter(s);
      const all: Value[] = Array.isArray(raw) ? raw : typeof raw === 'string' ? [...raw] : raw && typeof raw === 'object' ? Object.keys(raw) : [];
      const items = n.filter ? all.filter((x) => truthy(n.filter!({ vars: new Map(n.names.map((nm, k) => [nm, n.names.length > 1 ? (x as Value[])[k] : x])), parent: s }))) : all;
      if (!items.length) run(n.otherwise, s, out);
      items.forEach((x, k) => {
        const inner: Scope = { vars: new Map(), parent: s };
        if (n.names.length === 1) inner.vars.set(n.names[0]!, x);
        else n.names.forEach((nm, j) => inner.vars.set(nm, (x as Value[])[j]));
        inner.vars.set('loop', { index: k + 1, index0: k, first: k === 0, last: k === items.length - 1, length: items.length, revindex: items.length - k, revindex0: items.length - k - 1, previtem: items[k - 1], nextitem: items[k + 1] });
        run(n.body, inner, out);
      });
    }
  }
}

/** A message as chat templates see it (role, content and any extra fields such as tool calls). */
export type TemplateMessage = { role: string; content: string };

/** A parsed template, rendered as many times as needed. */
export class JinjaChatTemplate {
  private readonly nodes: Node[];

  constructor(readonly source: string) {
    this.nodes = parse(lex(source));
  }

  /** The prompt text for `messages`; `context` supplies bos_token, eos_token, add_generation_prompt, tools, ... */
  render(messages: readonly TemplateMessage[], context: Record<string, unknown> = {}): string {
    const globals = new Map<string, Value>(Object.entries({ add_generation_prompt: false, ...context, messages }));
    globals.set('raise_exception', (msg: Value) => {
      throw new Error(`chat template raised: ${str(msg)}`);
    });
    globals.set('namespace', (kw: Value) => ({ ...(kw as object) }));
    const out: string[] = [];
    run(this.nodes, { vars: globals }, out);
    return out.join('');
  }
}
