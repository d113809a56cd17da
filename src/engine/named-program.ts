// Compiled programs called by name: inputs are a record keyed by the names the program's
// inputs were traced with, outputs a record keyed by the names given at compile time, so a
// caller never depends on an order that lives in a comment.
import type { Program } from '../ir/graph.js';
import type { HostValue } from '../ir/value.js';
import { compile, type Executable } from '../runtime/execute.js';
import type { ExecOptions } from '../runtime/session.js';

export type Named = Record<string, HostValue>;

export class NamedExecutable {
  private constructor(private readonly exe: Executable, readonly inputNames: string[], readonly outputNames: string[]) {}

  static async compile(program: Program, outputNames: string[], opts: ExecOptions): Promise<NamedExecutable> {
    if (outputNames.length !== program.outputs.length) throw new Error(`a program with ${program.outputs.length} outputs was given ${outputNames.length} names (${outputNames.join(', ')})`);
    const inputNames = program.inputs.map((id) => String(program.graph.node(id).attrs.name));
    return new NamedExecutable(await compile(program, opts), inputNames, outputNames);
  }

  async run(feeds: Named): Promise<Named> {
    for (const k of Object.keys(feeds)) if (!this.inputNames.includes(k)) throw new Error(`this program has no input '${k}'; its inputs are ${this.inputNames.join(', ')}`);
    const ordered = this.inputNames.map((n) => {
      const v = feeds[n];
      if (!v) throw new Error(`input '${n}' is missing; this program takes ${this.inputNames.join(', ')}`);
      return v;
    });
    const out = await this.exe.run(ordered);
    return Object.fromEntries(this.outputNames.map((n, i) => [n, out[i]!]));
  }
}
