// Values in chat templates: Jinja's truthiness and printing (Python's True/None), member access
// with the string and dict methods templates call, and the filters and tests they use.

export type Value = unknown;

export const truthy = (v: Value): boolean => (Array.isArray(v) ? v.length > 0 : v !== null && typeof v === 'object' ? Object.keys(v).length > 0 : Boolean(v));

export function str(v: Value): string {
  if (v === undefined || v === null) return v === null ? 'None' : '';
  if (v === true) return 'True';
  if (v === false) return 'False';
  if (typeof v === 'object') return JSON.stringify(v);
  return String(v);
}

export function member(obj: Value, key: Value): Value {
  if (obj === undefined || obj === null) return undefined;
  if (Array.isArray(obj) && typeof key === 'number') return obj[key < 0 ? obj.length + key : key];
  if (typeof obj === 'string' && typeof key === 'number') return obj[key < 0 ? obj.length + key : key];
  if (typeof obj === 'object' && Object.prototype.hasOwnProperty.call(obj, key as string)) return (obj as Record<string, Value>)[key as string];
  return METHODS[key as string] ? (...args: Value[]) => METHODS[key as string]!(obj, args) : undefined;
}

const METHODS: Record<string, (self: Value, args: Value[]) => Value> = {
  strip: (s, a) => (a[0] === undefined ? String(s).trim() : String(s).replace(new RegExp(`^[${escape(String(a[0]))}]+|[${escape(String(a[0]))}]+$`, 'g'), '')),
  lstrip: (s) => String(s).trimStart(),
  rstrip: (s) => String(s).trimEnd(),
  startswith: (s, a) => String(s).startsWith(String(a[0])),
  endswith: (s, a) => String(s).endsWith(String(a[0])),
  split: (s, a) => (a[0] === undefined ? String(s).trim().split(/\s+/) : String(s).split(String(a[0]))),
  upper: (s) => String(s).toUpperCase(),
  lower: (s) => String(s).toLowerCase(),
  title: (s) => String(s).replace(/\w\S*/g, (w) => w[0]!.toUpperCase() + w.slice(1).toLowerCase()),
  replace: (s, a) => String(s).replaceAll(String(a[0]), String(a[1])),
  get: (d, a) => (d && typeof d === 'object' && (a[0] as string) in d ? (d as Record<string, Value>)[a[0] as string] : a[1] ?? null),
  items: (d) => Object.entries(d as object),
  keys: (d) => Object.keys(d as object),
  values: (d) => Object.values(d as object),
};

/** Python's json.dumps(x, ensure_ascii=False) (as transformers' tojson): ", " and ": " separators. */
function pyJson(v: Value, indent?: number, depth = 0): string {
  const pad = (d: number) => (indent === undefined ? '' : '\n' + ' '.repeat(indent * d));
  const sep = indent === undefined ? ', ' : ',';
  if (Array.isArray(v)) return v.length ? `[${pad(depth + 1)}${v.map((x) => pyJson(x, indent, depth + 1)).join(sep + pad(depth + 1))}${pad(depth)}]` : '[]';
  if (v !== null && typeof v === 'object') {
    const e = Object.entries(v).filter(([, x]) => x !== undefined);
    return e.length ? `{${pad(depth + 1)}${e.map(([k, x]) => `${JSON.stringify(k)}: ${pyJson(x, indent, depth + 1)}`).join(sep + pad(depth + 1))}${pad(depth)}}` : '{}';
  }
  return v === undefined ? 'null' : JSON.stringify(v);
}

const escape = (s: string) => s.replace(/[\\\]^-]/g, '\\$&');

export const FILTERS: Record<string, (v: Value, args: Value[]) => Value> = {
  trim: (v) => str(v).trim(),
  length: (v) => (Array.isArray(v) || typeof v === 'string' ? v.length : v && typeof v === 'object' ? Object.keys(v).length : 0),
  count: (v) => FILTERS['length']!(v, []),
  tojson: (v, a) => pyJson(v, typeof a[0] === 'number' ? a[0] : typeof (a[0] as { indent?: number })?.indent === 'number' ? (a[0] as { indent: number }).indent : undefined),
  upper: (v) => str(v).toUpperCase(),
  lower: (v) => str(v).toLowerCase(),
  capitalize: (v) => str(v).charAt(0).toUpperCase() + str(v).slice(1).toLowerCase(),
  string: (v) => str(v),
  first: (v) => (v as Value[])[0],
  last: (v) => (v as Value[]).at(-1),
  default: (v, a) => (v === undefined ? a[0] : v),
  join: (v, a) => (v as Value[]).map(str).join(a[0] === undefined ? '' : String(a[0])),
};

export const TESTS: Record<string, (v: Value) => boolean> = {
  defined: (v) => v !== undefined,
  undefined: (v) => v === undefined,
  none: (v) => v === null,
  string: (v) => typeof v === 'string',
  number: (v) => typeof v === 'number',
  integer: (v) => Number.isInteger(v),
  mapping: (v) => v !== null && typeof v === 'object' && !Array.isArray(v),
  sequence: (v) => Array.isArray(v) || typeof v === 'string',
  iterable: (v) => Array.isArray(v) || typeof v === 'string' || (v !== null && typeof v === 'object'),
  boolean: (v) => typeof v === 'boolean',
};

