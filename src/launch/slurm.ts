// Slurm's compressed list syntaxes, expanded here so the launcher needs no `scontrol` on PATH
// (compute nodes often lack it inside containers).

/**
 * Expands a Slurm hostlist such as `node[01-03,07],gpu-a[1-2]b[1-2],login1` into host names,
 * in order. Zero padding follows the start of each range (`01-03` gives 01 02 03); several
 * bracket groups in one name give their cartesian product, as Slurm does.
 */
export function expandNodelist(nodelist: string): string[] {
  const bad = (why: string) => new Error(`cannot parse Slurm nodelist '${nodelist}': ${why}`);
  const hosts: string[] = [];
  for (const item of splitTopLevel(nodelist, bad)) {
    if (item === '') throw bad('empty host name between commas');
    let names = [''];
    let i = 0;
    while (i < item.length) {
      const open = item.indexOf('[', i);
      const literal = item.slice(i, open < 0 ? item.length : open);
      if (literal.includes(']')) throw bad(`']' without '[' in '${item}'`);
      if (open < 0) {
        names = names.map((n) => n + literal);
        break;
      }
      const close = item.indexOf(']', open);
      if (close < 0) throw bad(`'[' without ']' in '${item}'`);
      const choices = expandRangeSet(item.slice(open + 1, close), bad);
      names = names.flatMap((n) => choices.map((c) => n + literal + c));
      i = close + 1;
    }
    hosts.push(...names);
  }
  return hosts;
}

/** Splits on commas that are not inside brackets. */
function splitTopLevel(s: string, bad: (why: string) => Error): string[] {
  const parts: string[] = [];
  let depth = 0;
  let start = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s[i];
    if (c === '[') {
      if (depth > 0) throw bad('nested brackets');
      depth++;
    } else if (c === ']') {
      depth--;
    } else if (c === ',' && depth === 0) {
      parts.push(s.slice(start, i));
      start = i + 1;
    }
  }
  parts.push(s.slice(start));
  return parts.map((p) => p.trim());
}

/** `01-03,07` -> ['01','02','03','07']. */
function expandRangeSet(body: string, bad: (why: string) => Error): string[] {
  const out: string[] = [];
  for (const part of body.split(',')) {
    const m = /^(\d+)(?:-(\d+))?$/.exec(part.trim());
    if (!m) throw bad(`'${part}' is not a number or a range like 01-03`);
    const from = Number(m[1]);
    const to = m[2] === undefined ? from : Number(m[2]);
    if (to < from) throw bad(`range '${part}' runs backwards`);
    if (to - from > 100_000) throw bad(`range '${part}' is implausibly large`);
    const width = m[1]!.length;
    for (let k = from; k <= to; k++) out.push(String(k).padStart(width, '0'));
  }
  return out;
}

/** Expands Slurm's tasks-per-node syntax, `2(x3),1` -> [2, 2, 2, 1]. */
export function expandTasksPerNode(value: string): number[] {
  const out: number[] = [];
  for (const part of value.split(',')) {
    const m = /^\s*(\d+)(?:\(x(\d+)\))?\s*$/.exec(part);
    if (!m) throw new Error(`cannot parse Slurm tasks-per-node '${value}': '${part}' is not like 4 or 4(x2)`);
    const repeat = m[2] === undefined ? 1 : Number(m[2]);
    for (let k = 0; k < repeat; k++) out.push(Number(m[1]));
  }
  return out;
}

/** The job-derived master port: every task of a job computes the same one, and concurrent jobs sharing a node rarely collide. */
export function slurmMasterPort(jobId: string | undefined): number {
  const id = Number(jobId);
  return Number.isInteger(id) && id >= 0 ? 20000 + (id % 20000) : 29500;
}
