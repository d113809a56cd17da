// One run directory as the dashboard sees it: metrics.jsonl read incrementally (only the new
// bytes on each poll, a partial last line kept until its newline arrives), each rank's step
// times (ranks/rank-R.jsonl), and the run's settings (run.json, else the checkpoint's meta.json).
// A line that is not a JSON object with a numeric iter is reported with its line number and
// skipped; the rest of the run still renders.
import { closeSync, existsSync, openSync, readFileSync, readSync, readdirSync, statSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';

export type Row = Record<string, number | null> & { iter: number };

export interface BadLine {
  file: string;
  line: number;
  error: string;
}

/** Bytes read from one file per poll: a huge file is taken in bounded pieces, never at once. */
const MAX_READ = 4 << 20;
/** A single line longer than this is not a metrics record; it is reported and skipped. */
const MAX_LINE = 64 << 10;
/** Bad lines kept per file (the count keeps going). */
const MAX_BAD = 50;

/** Follows one JSONL file by byte offset. */
export class JsonlTail {
  private offset = 0;
  private pending = Buffer.alloc(0);
  private lineNo = 0;
  readonly bad: BadLine[] = [];
  badCount = 0;

  constructor(readonly path: string, private readonly label: string) {}

  /** New rows since the last call; `reset` is true when the file shrank (rewritten) and the
   * caller must drop what it had. */
  poll(): { rows: Row[]; bad: BadLine[]; reset: boolean } {
    let size: number;
    try {
      size = statSync(this.path).size;
    } catch {
      return { rows: [], bad: [], reset: false };
    }
    let reset = false;
    if (size < this.offset) {
      this.offset = 0;
      this.pending = Buffer.alloc(0);
      this.lineNo = 0;
      this.bad.length = 0;
      this.badCount = 0;
      reset = true;
    }
    const rows: Row[] = [];
    const bad: BadLine[] = [];
    if (size === this.offset) return { rows, bad, reset };
    const n = Math.min(MAX_READ, size - this.offset);
    const buf = Buffer.alloc(n);
    const fd = openSync(this.path, 'r');
    try {
      readSync(fd, buf, 0, n, this.offset);
    } finally {
      closeSync(fd);
    }
    this.offset += n;
    let data = Buffer.concat([this.pending, buf]);
    let nl: number;
    while ((nl = data.indexOf(10)) >= 0) {
      this.parse(data.subarray(0, nl).toString('utf8'), rows, bad);
      data = data.subarray(nl + 1);
    }
    if (data.length > MAX_LINE) {
      this.report(bad, ++this.lineNo, `line longer than ${MAX_LINE} bytes`);
      data = Buffer.alloc(0);
    }
    this.pending = Buffer.from(data);
    return { rows, bad, reset };
  }

  private parse(text: string, rows: Row[], bad: BadLine[]): void {
    const line = ++this.lineNo;
    if (text.trim() === '') return;
    let rec: unknown;
    try {
      rec = JSON.parse(text);
    } catch (e) {
      this.report(bad, line, `not JSON (${(e as Error).message})`);
      return;
    }
    if (typeof rec !== 'object' || rec === null || Array.isArray(rec) || typeof (rec as Row).iter !== 'number') {
      this.report(bad, line, 'not a metrics record (a JSON object with a numeric "iter")');
      return;
    }
    const row: Row = { iter: (rec as Row).iter };
    for (const [k, v] of Object.entries(rec)) if (typeof v === 'number' || v === null) row[k] = v;
    rows.push(row);
  }

  private report(bad: BadLine[], line: number, error: string): void {
    this.badCount++;
    const b = { file: this.label, line, error };
    if (this.bad.length < MAX_BAD) this.bad.push(b);
    bad.push(b);
  }
}

export interface RunInfo {
  id: number;
  name: string;
  dir: string;
  /** Model and training settings, when the run wrote them. */
  settings: Record<string, unknown> | null;
}

export interface RunUpdate {
  run: number;
  reset: boolean;
  rows: Row[];
  /** rank -> new rows of ranks/rank-R.jsonl */
  ranks: Record<string, Row[]>;
  bad: BadLine[];
  /** Present when the run's info changed (its settings were found). */
  info?: RunInfo;
}

export class RunSource {
  readonly info: RunInfo;
  private readonly metrics: JsonlTail;
  private readonly ranks = new Map<string, JsonlTail>();
  /** Everything read so far, for clients that connect later. */
  private rows: Row[] = [];
  private rankRows: Record<string, Row[]> = {};

  constructor(id: number, dir: string, name = basename(resolve(dir))) {
    this.info = { id, name, dir: resolve(dir), settings: null };
    this.metrics = new JsonlTail(join(this.info.dir, 'metrics.jsonl'), 'metrics.jsonl');
  }

  /** Reads what is new; undefined when nothing changed. */
  poll(): RunUpdate | undefined {
    // Settings appear once the run has started (run.json); the update that finds them carries them.
    const found = this.info.settings === null && (this.info.settings = readSettings(this.info.dir)) !== null;
    const m = this.metrics.poll();
    if (m.reset) this.rows = [];
    this.rows.push(...m.rows);
    const ranks: Record<string, Row[]> = {};
    const bad = [...m.bad];
    const rankDir = join(this.info.dir, 'ranks');
    if (existsSync(rankDir)) {
      for (const f of readdirSync(rankDir)) {
        const r = /^rank-(\d{1,6})\.jsonl$/.exec(f);
        if (!r || this.ranks.has(r[1]!)) continue;
        if (this.ranks.size >= 4096) break;
        this.ranks.set(r[1]!, new JsonlTail(join(rankDir, f), `ranks/${f}`));
      }
    }
    for (const [rank, tail] of this.ranks) {
      const p = tail.poll();
      if (p.reset) this.rankRows[rank] = [];
      if (p.rows.length) {
        ranks[rank] = p.rows;
        (this.rankRows[rank] ??= []).push(...p.rows);
      }
      bad.push(...p.bad);
    }
    if (!found && !m.reset && !m.rows.length && !bad.length && !Object.keys(ranks).length) return undefined;
    return { run: this.info.id, reset: m.reset, rows: m.rows, ranks, bad, ...(found ? { info: this.info } : {}) };
  }

  /** The whole run so far, as one update that replaces whatever a client had. */
  snapshot(): RunUpdate & { info: RunInfo; badCount: number } {
    const bad = [...this.metrics.bad, ...[...this.ranks.values()].flatMap((t) => t.bad)];
    const badCount = this.metrics.badCount + [...this.ranks.values()].reduce((a, t) => a + t.badCount, 0);
    return { run: this.info.id, info: this.info, reset: true, rows: this.rows, ranks: this.rankRows, bad, badCount };
  }
}

/** run.json (written by atscale train at the start), else the checkpoint's meta.json. */
function readSettings(dir: string): Record<string, unknown> | null {
  for (const f of [join(dir, 'run.json'), join(dir, 'ckpt', 'meta.json')]) {
    try {
      const j = JSON.parse(readFileSync(f, 'utf8')) as Record<string, unknown>;
      if (typeof j === 'object' && j !== null) {
        const { config, hyper, seed, world, data, tokenizer } = j;
        return { config, hyper, seed, world, data, tokenizer };
      }
    } catch {
      // not there yet (a run that has just started) or not readable: try the next, then later
    }
  }
  return null;
}
