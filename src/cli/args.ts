// A small, strict flag parser shared by every subcommand: unknown flags are errors that name
// the flag and list the valid ones, so a typo never silently falls back to a default.

export interface FlagSpec {
  /** 'string' takes a value, 'number' a numeric value, 'boolean' none. */
  type: 'string' | 'number' | 'boolean';
  help: string;
  default?: string | number | boolean;
  /** For numbers: the accepted range (inclusive unless minOpen) and whether it must be an integer. */
  min?: number;
  max?: number;
  minOpen?: boolean;
  int?: boolean;
  /** For strings: the accepted values. */
  choices?: readonly string[];
}

/** Refuses a value outside the flag's declared range or choices, naming the flag. */
function checkFlag(command: string, name: string, s: FlagSpec, v: string | number): void {
  if (typeof v === 'number') {
    const low = s.min === undefined || (s.minOpen ? v > s.min : v >= s.min);
    const high = s.max === undefined || v <= s.max;
    if ((s.int && !Number.isInteger(v)) || !low || !high) {
      const range = `${s.min === undefined ? '(-inf' : s.minOpen ? `(${s.min}` : `[${s.min}`}, ${s.max === undefined ? 'inf)' : `${s.max}]`}`;
      throw new UsageError(`atscale ${command}: flag --${name} expects ${s.int ? 'an integer' : 'a number'} in ${range}, got ${v}`);
    }
  } else if (s.choices && !s.choices.includes(v)) {
    throw new UsageError(`atscale ${command}: flag --${name} expects one of ${s.choices.join(', ')}, got '${v}'`);
  }
}

export type FlagValues = Record<string, string | number | boolean | undefined>;

export interface ParsedArgs {
  flags: FlagValues;
  positional: string[];
  /** Everything after a bare `--`, untouched (the launcher's worker command). */
  rest: string[];
}

export class UsageError extends Error {
  override name = 'UsageError';
}

/** Converts `--n-layer` to `nLayer` so specs can use either spelling. */
export function camel(flag: string): string {
  return flag.replace(/-([a-z0-9])/g, (_, c: string) => c.toUpperCase());
}

export function parseArgs(argv: string[], spec: Record<string, FlagSpec>, command: string): ParsedArgs {
  const flags: FlagValues = {};
  const positional: string[] = [];
  const rest: string[] = [];
  for (const [name, s] of Object.entries(spec)) if (s.default !== undefined) flags[camel(name)] = s.default;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--') {
      rest.push(...argv.slice(i + 1));
      break;
    }
    if (!arg.startsWith('--')) {
      positional.push(arg);
      continue;
    }
    let name = arg.slice(2);
    let value: string | undefined;
    const eq = name.indexOf('=');
    if (eq >= 0) {
      value = name.slice(eq + 1);
      name = name.slice(0, eq);
    }
    const s = spec[name];
    if (!s) {
      const valid = Object.keys(spec).map((k) => `--${k}`).join(', ');
      throw new UsageError(`atscale ${command}: unknown flag --${name}. Valid flags: ${valid || '(none)'}`);
    }
    if (s.type === 'boolean') {
      flags[camel(name)] = value === undefined ? true : value !== 'false' && value !== '0';
      continue;
    }
    if (value === undefined) {
      value = argv[++i];
      if (value === undefined) throw new UsageError(`atscale ${command}: flag --${name} needs a value (${s.help})`);
    }
    if (s.type === 'number') {
      const n = Number(value);
      if (!Number.isFinite(n)) throw new UsageError(`atscale ${command}: flag --${name} expects a number, got '${value}'`);
      checkFlag(command, name, s, n);
      flags[camel(name)] = n;
    } else {
      checkFlag(command, name, s, value);
      flags[camel(name)] = value;
    }
  }
  return { flags, positional, rest };
}

export function formatHelp(command: string, summary: string, spec: Record<string, FlagSpec>): string {
  const lines = [`usage: atscale ${command} [flags]`, '', summary, ''];
  for (const [name, s] of Object.entries(spec)) {
    const arg = s.type === 'boolean' ? '' : s.type === 'number' ? ' N' : ' VALUE';
    // Strings are shown escaped, so a default of '\n' reads as "\n", not as a line break.
    const def = s.default === undefined ? '' : ` (default ${typeof s.default === 'string' && /[^\x20-\x7e]|^$/.test(s.default) ? JSON.stringify(s.default) : String(s.default)})`;
    const flag = `  --${name}${arg}`;
    lines.push(flag.padEnd(Math.max(30, flag.length + 2)) + s.help + def);
  }
  return lines.join('\n');
}
