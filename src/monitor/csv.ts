// CSV metrics as DeepSpeed's csv_monitor lays them out: one file per tag (slashes become
// underscores), a `step,<tag>` header, then one row per logged step. Spreadsheets and pandas
// read them without any TensorBoard tooling.
import { appendFileSync, existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';

export class CsvWriter {
  private readonly started = new Set<string>();

  constructor(readonly dir: string) {
    mkdirSync(dir, { recursive: true });
  }

  fileOf(tag: string): string {
    return join(this.dir, `${tag.replace(/[^A-Za-z0-9_.-]/g, '_')}.csv`);
  }

  append(tag: string, step: number, value: number): void {
    const file = this.fileOf(tag);
    // A resumed run appends to the files of the run it continues; the header is written once.
    if (!this.started.has(tag) && !existsSync(file)) appendFileSync(file, `step,${tag}\n`);
    this.started.add(tag);
    appendFileSync(file, `${step},${value}\n`);
  }
}
